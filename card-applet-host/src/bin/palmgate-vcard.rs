//! `palmgate-vcard`: the palmgate applet as a virtual smart card behind the real PC/SC stack
//! (pcscd with vsmartcard's vpcd driver).
//!
//! ```text
//! palmgate-vcard [--vpcd HOST:PORT] --state FILE [--durable] [--store-delay-ms N] [--applet-version 1.4]
//! ```
//! `--state FILE` holds the card's persistent state; it is created in the factory state when
//! missing and replaced atomically (temporary file + rename) after every change, before the card
//! answers. That survives the card being pulled (the process killed); `--durable` also waits for
//! the disk on every write, to survive a host crash (~8 ms per write here). `--store-delay-ms` pauses after each state
//! write, like slow card memory (tests use it to pull the card in the middle of VERIFY PALM).
//! `--applet-version 1.4` answers as applet 1.4 did, before the profile floor (a card issued before
//! it; [`palmgate_card::host::older_applet`]); no other version is emulated.
//! Exits cleanly on SIGTERM / SIGINT; reconnects when vpcd drops the connection.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use palmgate_card::host::older_applet::{self, AppletBeforeProfileFloor};
use palmgate_card::host::platform::{FileStorage, open_file_applet};
use palmgate_card::host::vpcd::{Shutdown, VpcdEvent, serve};

const USAGE: &str = "usage: palmgate-vcard [--vpcd HOST:PORT] --state FILE [--durable] \
     [--store-delay-ms N] [--applet-version 1.4]";

struct Args {
    vpcd: String,
    state: PathBuf,
    durable: bool,
    store_delay: Duration,
    /// Answer as applet 1.4 did.
    before_profile_floor: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut vpcd = "127.0.0.1:35963".to_owned();
    let mut state = None;
    let mut store_delay = Duration::ZERO;
    let mut durable = false;
    let mut before_profile_floor = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--vpcd" => vpcd = value("--vpcd")?,
            "--state" => state = Some(PathBuf::from(value("--state")?)),
            "--durable" => durable = true,
            "--store-delay-ms" => {
                let text = value("--store-delay-ms")?;
                let ms = text
                    .parse::<u64>()
                    .map_err(|_| format!("--store-delay-ms: not a number: {text}"))?;
                store_delay = Duration::from_millis(ms);
            }
            "--applet-version" => {
                let text = value("--applet-version")?;
                let (major, minor) = older_applet::VERSION;
                if text != format!("{major}.{minor}") {
                    return Err(format!(
                        "--applet-version: only {major}.{minor} is emulated, not {text:?}"
                    ));
                }
                before_profile_floor = true;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let state = state.ok_or_else(|| format!("--state FILE is required\n{USAGE}"))?;
    Ok(Args {
        vpcd,
        state,
        durable,
        store_delay,
        before_profile_floor,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };

    // Block SIGTERM and SIGINT in every thread; one thread waits for them synchronously.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    if let Err(error) = signals.thread_block() {
        eprintln!("palmgate-vcard: cannot block signals: {error}");
        return ExitCode::FAILURE;
    }

    let mut storage = FileStorage::new(&args.state);
    storage.delay_after_store = args.store_delay;
    storage.durable = args.durable;
    let mut applet = match open_file_applet(storage) {
        Ok(applet) => applet,
        Err(error) => {
            let source = std::error::Error::source(&error)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            eprintln!("palmgate-vcard: {error}{source}");
            return ExitCode::FAILURE;
        }
    };

    let shutdown = Shutdown::new();
    let signal_shutdown = shutdown.clone();
    let waiter = std::thread::spawn(move || {
        if let Ok(signal) = signals.wait() {
            eprintln!("palmgate-vcard: {signal}, shutting down");
        }
        signal_shutdown.trigger();
    });

    eprintln!(
        "palmgate-vcard: card {:?}, connecting to vpcd at {}",
        applet.identity().lifecycle,
        args.vpcd
    );
    let on_event = |event: VpcdEvent<'_>| match event {
        VpcdEvent::Connected => eprintln!("palmgate-vcard: connected to vpcd"),
        VpcdEvent::Disconnected(error) => {
            eprintln!("palmgate-vcard: vpcd connection lost ({error}), reconnecting")
        }
    };
    if args.before_profile_floor {
        eprintln!("palmgate-vcard: answering as applet 1.4 (before the profile floor)");
        let mut older = AppletBeforeProfileFloor::new(applet);
        serve(&args.vpcd, &mut older, &shutdown, on_event);
    } else {
        serve(&args.vpcd, &mut applet, &shutdown, on_event);
    }
    let _ = waiter.join();
    ExitCode::SUCCESS
}
