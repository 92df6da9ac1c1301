//! Property test of the lock invariant (docs/door-io.md, "The invariant"), through the driver on
//! the simulated backend with injected time.
//!
//! For any wiring (fail modes, active levels, timings) and any sequence of raw input changes,
//! grants, denials and lockdown changes (gate-wide and per door), after every step:
//! 1. every output pin is driven, at the level that encodes the commanded state;
//! 2. before start-up is complete a lock is in its unpowered state;
//! 3. after start-up a released lock is justified by the inputs and commands themselves (not by
//!    the machine's own bookkeeping): the raw fire input was active within the fire debounce, or a
//!    grant made outside that door's lockdown, or a REX press allowed by it, happened recently
//!    enough (door: `unlock`; turnstile: `grant_window + unlock`) with no lockdown of that door
//!    started since;
//! 4. the two interlocked doors are never released together outside fire;
//! 5. a fire input active for its whole debounce time releases every lock, lockdown or not.

use std::time::{Duration, Instant};

use palmgate_door::{
    DoorConfig, DoorMode, DoorOutput, FailMode, FeedbackConfig, FireConfig, GateConfig, GateDriver,
    InputConfig, Level, LockConfig, LockState, SimulatedGpio,
};
use proptest::prelude::*;

const DOORS: [&str; 3] = ["outer", "inner", "turn"];

/// Raw inputs: (door index or None for fire, role, pin).
const INPUTS: [(Option<usize>, &str, u8); 8] = [
    (None, "fire", 2),
    (Some(0), "contact", 11),
    (Some(0), "rex", 12),
    (Some(0), "tamper", 13),
    (Some(1), "contact", 21),
    (Some(1), "rex", 22),
    (Some(2), "passage", 31),
    (Some(2), "rex", 32),
];
const FIRE: usize = 0;

#[derive(Debug, Clone)]
struct Wiring {
    fail_modes: [FailMode; 3],
    lock_active: [Level; 3],
    input_active: [Level; 8],
    feedback_active: Level,
    blocks_rex: [bool; 3],
    unlock_ms: [u64; 3],
    relock_delay_ms: u64,
    debounce_ms: u64,
    fire_debounce_ms: u64,
    grant_window_ms: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Wait(u64),
    Set(usize, bool),
    Grant(usize),
    Deny(usize),
    /// Lockdown on or off: of one door, or of the whole gate (`None`).
    Lockdown(Option<usize>, bool),
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![Just(Level::Low), Just(Level::High)]
}

fn fail_mode() -> impl Strategy<Value = FailMode> {
    prop_oneof![Just(FailMode::Secure), Just(FailMode::Safe)]
}

fn wiring() -> impl Strategy<Value = Wiring> {
    (
        [fail_mode(), fail_mode(), fail_mode()],
        [level(), level(), level()],
        proptest::array::uniform8(level()),
        level(),
        any::<[bool; 3]>(),
        [200..3000u64, 200..3000u64, 200..2000u64],
        0..1000u64,
        1..60u64,
        1..150u64,
        1000..8000u64,
    )
        .prop_map(
            |(
                fail_modes,
                lock_active,
                input_active,
                feedback_active,
                blocks_rex,
                unlock_ms,
                relock_delay_ms,
                debounce_ms,
                fire_debounce_ms,
                grant_window_ms,
            )| Wiring {
                fail_modes,
                lock_active,
                input_active,
                feedback_active,
                blocks_rex,
                unlock_ms,
                relock_delay_ms,
                debounce_ms,
                fire_debounce_ms,
                grant_window_ms,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop_oneof![0..20u64, 0..200u64, 0..4000u64].prop_map(Op::Wait),
        5 => (0..INPUTS.len(), any::<bool>()).prop_map(|(input, active)| Op::Set(input, active)),
        2 => (0..DOORS.len()).prop_map(Op::Grant),
        1 => (0..DOORS.len()).prop_map(Op::Deny),
        1 => (proptest::option::of(0..DOORS.len()), any::<bool>())
            .prop_map(|(door, on)| Op::Lockdown(door, on)),
    ]
}

fn gate_config(wiring: &Wiring) -> GateConfig {
    let input = |index: usize| InputConfig {
        pin: INPUTS[index].2,
        active: wiring.input_active[index],
    };
    let doors = (0..3)
        .map(|door| {
            let base = 10 * (door as u8 + 1);
            let lock = LockConfig {
                pin: base,
                active: wiring.lock_active[door],
                fail_mode: wiring.fail_modes[door],
            };
            let mut config = DoorConfig::new(DOORS[door], lock);
            config.feedback = FeedbackConfig {
                green_led: Some(base + 5),
                red_led: Some(base + 6),
                buzzer: Some(base + 7),
                active: wiring.feedback_active,
            };
            config.unlock = Duration::from_millis(wiring.unlock_ms[door]);
            config.relock_delay = Duration::from_millis(wiring.relock_delay_ms);
            config.held_open_prealarm = Duration::from_secs(3);
            config.held_open_alarm = Duration::from_secs(6);
            config.debounce = Duration::from_millis(wiring.debounce_ms);
            config.grant_window = Duration::from_millis(wiring.grant_window_ms);
            config.lockdown_blocks_rex = wiring.blocks_rex[door];
            config
        })
        .collect::<Vec<_>>();
    let mut config = GateConfig {
        doors,
        fire: Some(FireConfig {
            input: input(FIRE),
            debounce: Duration::from_millis(wiring.fire_debounce_ms),
        }),
    };
    config.doors[0].contact = Some(input(1));
    config.doors[0].rex = Some(input(2));
    config.doors[0].tamper = Some(input(3));
    config.doors[0].interlock_with = Some("inner".to_string());
    config.doors[1].contact = Some(input(4));
    config.doors[1].rex = Some(input(5));
    config.doors[2].mode = DoorMode::Turnstile;
    config.doors[2].passage = Some(input(6));
    config.doors[2].rex = Some(input(7));
    config
}

/// The world as the test drove it, after one step.
#[derive(Debug, Clone)]
struct Snapshot {
    op_index: usize,
    at: Instant,
    raw: [bool; 8],
    /// Per door.
    lockdown: [bool; 3],
}

struct Grant {
    op_index: usize,
    at: Instant,
    door: usize,
    /// The door's lockdown when the grant was made.
    lockdown: bool,
}

fn rex_input(door: usize) -> usize {
    [2, 5, 7][door]
}

fn check_invariant(wiring: Wiring, initial: [bool; 8], ops: Vec<Op>) -> Result<(), TestCaseError> {
    let config = gate_config(&wiring);
    let mut gpio = SimulatedGpio::new();
    let t0 = Instant::now();
    let mut now = t0;
    let mut raw = initial;
    let set_raw = |gpio: &SimulatedGpio, index: usize, active: bool| {
        let level = if active {
            wiring.input_active[index]
        } else {
            !wiring.input_active[index]
        };
        gpio.set_input(INPUTS[index].2, level);
    };
    for (index, &active) in raw.iter().enumerate() {
        set_raw(&gpio, index, active);
    }
    gpio.set_now(now);
    let mut driver = GateDriver::start(&config, &mut gpio, now).expect("valid configuration");
    let mut snapshots: Vec<Snapshot> = Vec::new();
    let mut grants: Vec<Grant> = Vec::new();
    // (op index, door) of every lockdown start.
    let mut lockdown_starts: Vec<(usize, usize)> = Vec::new();
    let mut lockdown = [false; 3];
    let fire_debounce = Duration::from_millis(wiring.fire_debounce_ms);
    // When the raw fire input last became active (None while inactive).
    let mut fire_active_since = raw[FIRE].then_some(t0);

    for (op_index, op) in std::iter::once(Op::Wait(0)).chain(ops).enumerate() {
        match op {
            Op::Wait(ms) => now += Duration::from_millis(ms),
            Op::Set(input, active) => {
                if input == FIRE && active != raw[FIRE] {
                    fire_active_since = active.then_some(now);
                }
                raw[input] = active;
                set_raw(&gpio, input, active);
            }
            Op::Grant(door) => {
                grants.push(Grant {
                    op_index,
                    at: now,
                    door,
                    lockdown: lockdown[door],
                });
                let _ = driver.grant(DOORS[door], now);
            }
            Op::Deny(door) => driver.deny(DOORS[door], now).expect("deny"),
            Op::Lockdown(scope, on) => {
                let doors = match scope {
                    Some(door) => door..door + 1,
                    None => 0..DOORS.len(),
                };
                for door in doors {
                    if on && !lockdown[door] {
                        lockdown_starts.push((op_index, door));
                    }
                    lockdown[door] = on;
                }
                let name = scope.map(|door| DOORS[door]);
                driver.set_lockdown(name, on, now).expect("lockdown");
            }
        }
        gpio.set_now(now);
        driver.step(now).expect("step");
        snapshots.push(Snapshot {
            op_index,
            at: now,
            raw,
            lockdown,
        });

        let gate = driver.gate();
        // Raw fire active at some instant of (now - fire debounce, now]: snapshot i's value holds
        // until the next snapshot.
        let fire_recent = snapshots.iter().enumerate().any(|(i, snapshot)| {
            snapshot.raw[FIRE]
                && snapshots
                    .get(i + 1)
                    .is_none_or(|next| next.at + fire_debounce > now)
        });
        let fire_settled =
            fire_active_since.is_some_and(|since| now.duration_since(since) >= fire_debounce);
        let no_lockdown_since = |door: usize, op_index: usize| {
            lockdown_starts
                .iter()
                .all(|&(start, locked)| locked != door || start <= op_index)
        };

        for (door, door_config) in config.doors.iter().enumerate() {
            let id = gate.door_id(DOORS[door]).expect("door");
            let lock = gate.lock_state(id).expect("lock state");
            // 1. Outputs defined and consistent with the commanded state.
            prop_assert_eq!(
                gpio.output_level(door_config.lock.pin),
                Some(door_config.lock.level_for(lock))
            );
            for (output, pin) in [
                (DoorOutput::GreenLed, door_config.feedback.green_led),
                (DoorOutput::RedLed, door_config.feedback.red_led),
                (DoorOutput::Buzzer, door_config.feedback.buzzer),
            ] {
                let on = gate.feedback_state(id, output).expect("feedback state");
                let pin = pin.expect("wired");
                prop_assert_eq!(
                    gpio.output_level(pin),
                    Some(door_config.feedback.level_for(on)),
                    "{:?}",
                    output
                );
            }
            // 2. Before start-up: unpowered.
            if !gate.is_started() {
                prop_assert_eq!(lock, door_config.lock.unpowered_state());
                continue;
            }
            // 5. Fire releases, whatever else holds.
            if fire_settled {
                prop_assert_eq!(
                    lock,
                    LockState::Released,
                    "fire active for its debounce time: {} released",
                    DOORS[door]
                );
            }
            // 3. A release is justified.
            if lock == LockState::Released && !fire_recent {
                let unlock = Duration::from_millis(wiring.unlock_ms[door]);
                let window = match door_config.mode {
                    DoorMode::Door => unlock,
                    DoorMode::Turnstile => unlock + Duration::from_millis(wiring.grant_window_ms),
                };
                let by_grant = grants.iter().any(|grant| {
                    grant.door == door
                        && !grant.lockdown
                        && now.duration_since(grant.at) < window
                        && no_lockdown_since(door, grant.op_index)
                });
                let by_rex = snapshots.iter().any(|snapshot| {
                    snapshot.raw[rex_input(door)]
                        && now.duration_since(snapshot.at) < window
                        && (!snapshot.lockdown[door] || !wiring.blocks_rex[door])
                        && no_lockdown_since(door, snapshot.op_index)
                });
                prop_assert!(
                    by_grant || by_rex,
                    "{} released at {:?} without cause",
                    DOORS[door],
                    now - t0
                );
            }
        }
        // 4. Interlock.
        let released =
            |name| gate.lock_state(gate.door_id(name).expect("door")) == Some(LockState::Released);
        if gate.is_started() && !fire_recent {
            prop_assert!(
                !(released("outer") && released("inner")),
                "interlocked doors both released"
            );
        }
    }
    driver.shutdown().expect("shutdown");
    for door in &config.doors {
        prop_assert_eq!(
            gpio.output_level(door.lock.pin),
            Some(door.lock.safe_level())
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn lock_released_only_by_grant_rex_or_fire(
        wiring in wiring(),
        initial in any::<[bool; 8]>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        check_invariant(wiring, initial, ops)?;
    }
}

/// A long scripted run with the fire input forced on during lockdown, checked by the same code
/// (so that the fire-over-lockdown path is certainly exercised, not only by chance).
#[test]
fn fire_during_lockdown_is_checked_by_the_invariant() {
    let wiring = Wiring {
        fail_modes: [FailMode::Secure, FailMode::Safe, FailMode::Secure],
        lock_active: [Level::High, Level::Low, Level::High],
        input_active: [
            Level::Low,
            Level::High,
            Level::Low,
            Level::High,
            Level::High,
            Level::Low,
            Level::Low,
            Level::Low,
        ],
        feedback_active: Level::High,
        blocks_rex: [true, false, true],
        unlock_ms: [1000, 1000, 500],
        relock_delay_ms: 100,
        debounce_ms: 20,
        fire_debounce_ms: 50,
        grant_window_ms: 2000,
    };
    let ops = vec![
        Op::Wait(100),
        Op::Grant(0),
        Op::Wait(50),
        Op::Lockdown(None, true),
        Op::Grant(1),
        Op::Set(FIRE, true),
        Op::Wait(10),
        Op::Wait(40),
        Op::Wait(10),
        Op::Set(5, true),
        Op::Wait(30),
        Op::Set(FIRE, false),
        Op::Wait(60),
        Op::Wait(2000),
        Op::Lockdown(Some(1), false),
        Op::Grant(1),
        Op::Lockdown(None, false),
        Op::Grant(2),
        Op::Wait(600),
    ];
    check_invariant(wiring, [false; 8], ops).expect("invariant holds");
}
