//! Table-driven tests of the gate state machine with injected time: every behaviour of
//! docs/door-io.md, one table each. A step is (time in ms, operation, the events it must emit, as
//! printed by `Event`'s `Display`, in order).

use std::time::{Duration, Instant};

use palmgate_door::{
    Action, DoorConfig, DoorInput, DoorMode, DoorOutput, FailMode, FeedbackConfig, FireConfig,
    Gate, GateConfig, InputConfig, InputId, Level, LockConfig, LockState, LockdownScope, Refusal,
};

const DEBOUNCE_MS: u64 = 30;

#[derive(Debug, Clone, Copy)]
enum Pin {
    Fire,
    Contact(&'static str),
    Rex(&'static str),
    Tamper(&'static str),
    Passage(&'static str),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Raw sample of an input (true = active).
    In(Pin, bool),
    Tick,
    Grant(&'static str, Result<(), Refusal>),
    /// A grant with its own release time in ms (a remote unlock's `duration_s`).
    GrantFor(&'static str, u64, Result<(), Refusal>),
    Deny(&'static str),
    /// Gate-wide lockdown on or off.
    Lockdown(bool),
    /// One door's lockdown on or off.
    DoorLockdown(&'static str, bool),
    /// Assertion only: the commanded lock state.
    Lock(&'static str, LockState),
    /// Assertion only: a feedback output (green, red, buzzer) is on.
    Feedback(&'static str, DoorOutput, bool),
    /// Assertion only: the next deadline, in ms from the start.
    Deadline(Option<u64>),
}

use Op::*;
use Pin::*;

type Step = (u64, Op, &'static [&'static str]);

fn door(name: &str, first_pin: u8) -> DoorConfig {
    let mut door = DoorConfig::new(
        name,
        LockConfig {
            pin: first_pin,
            active: Level::High,
            fail_mode: FailMode::Secure,
        },
    );
    door.contact = Some(InputConfig {
        pin: first_pin + 1,
        active: Level::High,
    });
    door.rex = Some(InputConfig {
        pin: first_pin + 2,
        active: Level::Low,
    });
    door.tamper = Some(InputConfig {
        pin: first_pin + 3,
        active: Level::High,
    });
    door.feedback = FeedbackConfig {
        green_led: Some(first_pin + 4),
        red_led: Some(first_pin + 5),
        buzzer: Some(first_pin + 6),
        active: Level::High,
    };
    door.unlock = Duration::from_secs(5);
    door.relock_delay = Duration::from_millis(500);
    door.held_open_prealarm = Duration::from_secs(20);
    door.held_open_alarm = Duration::from_secs(30);
    door.debounce = Duration::from_millis(DEBOUNCE_MS);
    door
}

fn turnstile(name: &str, first_pin: u8) -> DoorConfig {
    let mut door = door(name, first_pin);
    door.mode = DoorMode::Turnstile;
    door.contact = None;
    door.passage = Some(InputConfig {
        pin: first_pin + 1,
        active: Level::Low,
    });
    door.unlock = Duration::from_secs(1);
    door.grant_window = Duration::from_secs(10);
    door
}

fn fire() -> Option<FireConfig> {
    Some(FireConfig {
        input: InputConfig {
            pin: 2,
            active: Level::Low,
        },
        debounce: Duration::from_millis(DEBOUNCE_MS),
    })
}

fn one_door() -> GateConfig {
    GateConfig {
        doors: vec![door("main", 10)],
        fire: fire(),
    }
}

fn input_id(gate: &Gate, pin: Pin) -> InputId {
    let id = |name| gate.door_id(name).expect("door exists");
    match pin {
        Fire => InputId::Fire,
        Contact(name) => InputId::Door(id(name), DoorInput::Contact),
        Rex(name) => InputId::Door(id(name), DoorInput::Rex),
        Tamper(name) => InputId::Door(id(name), DoorInput::Tamper),
        Passage(name) => InputId::Door(id(name), DoorInput::Passage),
    }
}

/// Runs the steps from power-on (no input sampled yet).
fn run_from_power_on(config: &GateConfig, steps: &[Step]) {
    let t0 = Instant::now();
    let mut gate = Gate::new(config, t0).expect("valid configuration");
    for (index, &(ms, op, expected)) in steps.iter().enumerate() {
        let now = t0 + Duration::from_millis(ms);
        match op {
            In(pin, active) => gate.sample(input_id(&gate, pin), active, now),
            Tick => gate.tick(now),
            Grant(name, result) => {
                let id = gate.door_id(name).expect("door exists");
                assert_eq!(
                    gate.grant(id, now),
                    result,
                    "step {index} at {ms} ms: grant {name}"
                );
            }
            GrantFor(name, unlock_ms, result) => {
                let id = gate.door_id(name).expect("door exists");
                assert_eq!(
                    gate.grant_for(id, Some(Duration::from_millis(unlock_ms)), now),
                    result,
                    "step {index} at {ms} ms: grant {name} for {unlock_ms} ms"
                );
            }
            Deny(name) => gate.deny(gate.door_id(name).expect("door exists"), now),
            Lockdown(on) => gate
                .set_lockdown(LockdownScope::Gate, on, now)
                .expect("gate-wide lockdown"),
            DoorLockdown(name, on) => {
                let id = gate.door_id(name).expect("door exists");
                gate.set_lockdown(LockdownScope::Door(id), on, now)
                    .expect("door lockdown");
            }
            Lock(name, state) => {
                let id = gate.door_id(name).expect("door exists");
                assert_eq!(
                    gate.lock_state(id),
                    Some(state),
                    "step {index} at {ms} ms: lock of {name}"
                );
            }
            Feedback(name, output, on) => {
                let id = gate.door_id(name).expect("door exists");
                assert_eq!(
                    gate.feedback_state(id, output),
                    Some(on),
                    "step {index} at {ms} ms: {output:?} of {name}"
                );
            }
            Deadline(expected) => {
                let expected = expected.map(|ms| t0 + Duration::from_millis(ms));
                assert_eq!(
                    gate.next_deadline(),
                    expected,
                    "step {index} at {ms} ms: next deadline"
                );
            }
        }
        let events: Vec<String> = gate
            .take_actions()
            .into_iter()
            .filter_map(|action| match action {
                Action::Event(event) => Some(event.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(events, expected, "step {index} at {ms} ms: {op:?}");
    }
}

/// Power-on with every input at rest, then the steps (which start after `doors.ready` at 30 ms).
fn run(config: &GateConfig, steps: &[Step]) {
    let mut all = Vec::new();
    let mut pins = Vec::new();
    if config.fire.is_some() {
        pins.push(Fire);
    }
    for door in &config.doors {
        let name: &'static str = Box::leak(door.name.clone().into_boxed_str());
        for (role, _) in door.inputs() {
            pins.push(match role {
                DoorInput::Contact => Contact(name),
                DoorInput::Rex => Rex(name),
                DoorInput::Tamper => Tamper(name),
                DoorInput::Passage => Passage(name),
            });
        }
    }
    for pin in pins {
        all.push((0, In(pin, false), &[][..]));
    }
    all.push((DEBOUNCE_MS, Tick, &["doors.ready"][..]));
    all.extend_from_slice(steps);
    run_from_power_on(config, &all);
}

#[test]
fn grant_unlocks_for_unlock_time_and_relocks_at_timeout() {
    run(
        &one_door(),
        &[
            (1000, Lock("main", LockState::Secured), &[]),
            (
                1000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (1000, Feedback("main", DoorOutput::GreenLed, true), &[]),
            (1000, Feedback("main", DoorOutput::Buzzer, true), &[]),
            (1000, Deadline(Some(1150)), &[]),
            (1150, Tick, &[]),
            (1150, Feedback("main", DoorOutput::Buzzer, false), &[]),
            (1150, Deadline(Some(6000)), &[]),
            (5999, Tick, &[]),
            (5999, Lock("main", LockState::Released), &[]),
            (6000, Tick, &["door.locked door=main"]),
            (6000, Feedback("main", DoorOutput::GreenLed, false), &[]),
            (6000, Deadline(None), &[]),
        ],
    );
}

#[test]
fn a_grant_with_its_own_time_releases_for_that_time_instead_of_unlock() {
    run(
        &one_door(),
        &[
            (
                1000,
                GrantFor("main", 20_000, Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (1150, Tick, &[]),
            // Past the door's own unlock time (5 s): still released.
            (6000, Tick, &[]),
            (6000, Lock("main", LockState::Released), &[]),
            (6000, Deadline(Some(21_000)), &[]),
            (21_000, Tick, &["door.locked door=main"]),
            // Shorter than unlock: relocks after 2 s.
            (
                22_000,
                GrantFor("main", 2_000, Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (22_150, Tick, &[]),
            (24_000, Tick, &["door.locked door=main"]),
        ],
    );
}

#[test]
fn door_closing_relocks_after_the_relock_delay() {
    run(
        &one_door(),
        &[
            (
                1000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (2000, In(Contact("main"), true), &[]),
            (2030, Tick, &["door.opened door=main how=Released"]),
            (3000, In(Contact("main"), false), &[]),
            (3030, Tick, &["door.closed door=main"]),
            (3529, Tick, &[]),
            (3530, Tick, &["door.locked door=main"]),
            (3530, Deadline(None), &[]),
        ],
    );
}

#[test]
fn reopening_during_the_relock_delay_keeps_the_door_released() {
    run(
        &one_door(),
        &[
            (
                1000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (2000, In(Contact("main"), true), &[]),
            (2030, Tick, &["door.opened door=main how=Released"]),
            (3000, In(Contact("main"), false), &[]),
            (3030, Tick, &["door.closed door=main"]),
            (3100, In(Contact("main"), true), &[]),
            (3130, Tick, &["door.opened door=main how=Released"]),
            (3600, Tick, &[]),
            (3600, Lock("main", LockState::Released), &[]),
            (6000, Tick, &["door.locked door=main"]),
        ],
    );
}

#[test]
fn opening_a_secured_door_is_forced() {
    run(
        &one_door(),
        &[
            (1000, In(Contact("main"), true), &[]),
            (
                1030,
                Tick,
                &["door.opened door=main how=Forced", "door.forced door=main"],
            ),
            (1030, Lock("main", LockState::Secured), &[]),
            (1030, Feedback("main", DoorOutput::RedLed, true), &[]),
            (1030, Feedback("main", DoorOutput::Buzzer, true), &[]),
            (2000, In(Contact("main"), false), &[]),
            (2030, Tick, &["door.closed door=main"]),
            (2030, Feedback("main", DoorOutput::RedLed, false), &[]),
            (2030, Feedback("main", DoorOutput::Buzzer, false), &[]),
        ],
    );
}

#[test]
fn a_door_open_at_timeout_relocks_and_reopening_later_is_forced() {
    run(
        &one_door(),
        &[
            (
                1000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (2000, In(Contact("main"), true), &[]),
            (2030, Tick, &["door.opened door=main how=Released"]),
            (6000, Tick, &["door.locked door=main"]),
            (7000, In(Contact("main"), false), &[]),
            (7030, Tick, &["door.closed door=main"]),
            (8000, In(Contact("main"), true), &[]),
            (
                8030,
                Tick,
                &["door.opened door=main how=Forced", "door.forced door=main"],
            ),
        ],
    );
}

#[test]
fn door_held_open_gives_prealarm_then_alarm() {
    run(
        &one_door(),
        &[
            (
                1000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (1970, In(Contact("main"), true), &[]),
            (2000, Tick, &["door.opened door=main how=Released"]),
            (6000, Tick, &["door.locked door=main"]),
            (6000, Deadline(Some(22_000)), &[]),
            (21_999, Tick, &[]),
            (22_000, Tick, &["door.held_open door=main stage=PreAlarm"]),
            (22_000, Feedback("main", DoorOutput::Buzzer, true), &[]),
            (22_000, Feedback("main", DoorOutput::RedLed, false), &[]),
            (32_000, Tick, &["door.held_open door=main stage=Alarm"]),
            (32_000, Feedback("main", DoorOutput::RedLed, true), &[]),
            (40_000, In(Contact("main"), false), &[]),
            (40_030, Tick, &["door.closed door=main"]),
            (40_030, Feedback("main", DoorOutput::RedLed, false), &[]),
            (40_030, Feedback("main", DoorOutput::Buzzer, false), &[]),
        ],
    );
}

#[test]
fn a_long_gap_between_ticks_reports_both_held_open_stages() {
    run(
        &one_door(),
        &[
            (
                1000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (1970, In(Contact("main"), true), &[]),
            (2000, Tick, &["door.opened door=main how=Released"]),
            (
                60_000,
                Tick,
                &[
                    "door.held_open door=main stage=PreAlarm",
                    "door.held_open door=main stage=Alarm",
                    "door.locked door=main",
                ],
            ),
        ],
    );
}

#[test]
fn grant_during_held_open_releases_without_clearing_the_alarm() {
    run(
        &one_door(),
        &[
            (
                1000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (1970, In(Contact("main"), true), &[]),
            (2000, Tick, &["door.opened door=main how=Released"]),
            (6000, Tick, &["door.locked door=main"]),
            (22_000, Tick, &["door.held_open door=main stage=PreAlarm"]),
            (
                25_000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (25_000, Feedback("main", DoorOutput::Buzzer, true), &[]),
            (29_000, In(Contact("main"), false), &[]),
            (29_030, Tick, &["door.closed door=main"]),
            (29_530, Tick, &["door.locked door=main"]),
            (29_530, Feedback("main", DoorOutput::Buzzer, false), &[]),
            (29_530, Deadline(None), &[]),
        ],
    );
}

#[test]
fn grant_during_held_open_that_lasts_past_the_alarm_still_alarms() {
    run(
        &one_door(),
        &[
            (1000, In(Contact("main"), true), &[]),
            (
                1030,
                Tick,
                &["door.opened door=main how=Forced", "door.forced door=main"],
            ),
            (21_030, Tick, &["door.held_open door=main stage=PreAlarm"]),
            (
                22_000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (27_000, Tick, &["door.locked door=main"]),
            (31_030, Tick, &["door.held_open door=main stage=Alarm"]),
        ],
    );
}

#[test]
fn rex_unlocks_once_per_press_and_is_logged() {
    run(
        &one_door(),
        &[
            (1000, In(Rex("main"), true), &[]),
            (
                1030,
                Tick,
                &["door.rex door=main", "door.unlocked door=main cause=Rex"],
            ),
            // Held down: no second request.
            (3000, In(Rex("main"), true), &[]),
            (6029, Tick, &[]),
            (6030, Tick, &["door.locked door=main"]),
            (7000, In(Rex("main"), false), &[]),
            (7030, Tick, &[]),
            (8000, In(Rex("main"), true), &[]),
            (
                8030,
                Tick,
                &["door.rex door=main", "door.unlocked door=main cause=Rex"],
            ),
            (8100, In(Contact("main"), true), &[]),
            (8130, Tick, &["door.opened door=main how=Released"]),
            (8200, In(Contact("main"), false), &[]),
            (8230, Tick, &["door.closed door=main"]),
            (8730, Tick, &["door.locked door=main"]),
        ],
    );
}

#[test]
fn bouncing_inputs_count_once_and_spikes_not_at_all() {
    run(
        &one_door(),
        &[
            // A 10 ms spike on the contact: nothing.
            (1000, In(Contact("main"), true), &[]),
            (1010, In(Contact("main"), false), &[]),
            (1100, Tick, &[]),
            // A REX press that bounces for 8 ms counts once.
            (2000, In(Rex("main"), true), &[]),
            (2002, In(Rex("main"), false), &[]),
            (2004, In(Rex("main"), true), &[]),
            (2006, In(Rex("main"), false), &[]),
            (2008, In(Rex("main"), true), &[]),
            (2037, Tick, &[]),
            (
                2038,
                Tick,
                &["door.rex door=main", "door.unlocked door=main cause=Rex"],
            ),
            (2100, In(Rex("main"), false), &[]),
            (2105, In(Rex("main"), true), &[]),
            (2110, In(Rex("main"), false), &[]),
            (2200, Tick, &[]),
            // The door opens with contact bounce: one opening.
            (3000, In(Contact("main"), true), &[]),
            (3005, In(Contact("main"), false), &[]),
            (3010, In(Contact("main"), true), &[]),
            (3040, Tick, &["door.opened door=main how=Released"]),
            (3041, In(Contact("main"), false), &[]),
            (3042, In(Contact("main"), true), &[]),
            (3200, Tick, &[]),
        ],
    );
}

#[test]
fn fire_releases_every_door_while_active_and_suppresses_door_alarms() {
    let config = GateConfig {
        doors: vec![door("a", 10), door("b", 20)],
        fire: fire(),
    };
    run(
        &config,
        &[
            (1000, In(Fire, true), &[]),
            (
                1030,
                Tick,
                &[
                    "fire.active",
                    "door.unlocked door=a cause=Fire",
                    "door.unlocked door=b cause=Fire",
                ],
            ),
            (1030, Feedback("a", DoorOutput::GreenLed, true), &[]),
            (2000, In(Contact("a"), true), &[]),
            (2030, Tick, &["door.opened door=a how=Released"]),
            // No held-open alarm during fire, however long.
            (100_000, Tick, &[]),
            (100_000, Feedback("a", DoorOutput::Buzzer, false), &[]),
            // A grant or REX during fire is acknowledged but does not outlive the fire.
            (100_500, Grant("b", Ok(())), &[]),
            (100_500, In(Rex("b"), true), &[]),
            (100_530, Tick, &["door.rex door=b"]),
            (101_000, In(Fire, false), &[]),
            // a is open: relocked, held-open timing starts now.
            (
                101_030,
                Tick,
                &["fire.cleared", "door.locked door=a", "door.locked door=b"],
            ),
            (121_030, Tick, &["door.held_open door=a stage=PreAlarm"]),
        ],
    );
}

#[test]
fn lockdown_refuses_grants_and_rex_but_never_overrides_fire() {
    run(
        &one_door(),
        &[
            (
                1000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            // Lockdown cuts the grant short.
            (
                2000,
                Lockdown(true),
                &["lockdown.on door=main", "door.locked door=main"],
            ),
            (2000, Feedback("main", DoorOutput::RedLed, true), &[]),
            (
                3000,
                Grant("main", Err(Refusal::Lockdown)),
                &["grant.refused door=main reason=\"lockdown\""],
            ),
            (4000, In(Rex("main"), true), &[]),
            (4030, Tick, &["door.rex door=main refused=\"lockdown\""]),
            (4100, In(Rex("main"), false), &[]),
            // Fire during lockdown releases.
            (5000, In(Fire, true), &[]),
            (
                5030,
                Tick,
                &["fire.active", "door.unlocked door=main cause=Fire"],
            ),
            (
                5100,
                Grant("main", Err(Refusal::Lockdown)),
                &["grant.refused door=main reason=\"lockdown\""],
            ),
            (5100, Lock("main", LockState::Released), &[]),
            (6000, In(Fire, false), &[]),
            (6030, Tick, &["fire.cleared", "door.locked door=main"]),
            (7000, Lockdown(false), &["lockdown.off door=main"]),
            (7000, Lockdown(false), &[]),
            (
                8000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
        ],
    );
}

#[test]
fn lockdown_may_leave_request_to_exit_working() {
    let mut config = one_door();
    config.doors[0].lockdown_blocks_rex = false;
    run(
        &config,
        &[
            (1000, Lockdown(true), &["lockdown.on door=main"]),
            (2000, In(Rex("main"), true), &[]),
            (
                2030,
                Tick,
                &["door.rex door=main", "door.unlocked door=main cause=Rex"],
            ),
            (
                3000,
                Grant("main", Err(Refusal::Lockdown)),
                &["grant.refused door=main reason=\"lockdown\""],
            ),
            (7030, Tick, &["door.locked door=main"]),
        ],
    );
}

#[test]
fn lockdown_of_one_door_leaves_the_other_doors_and_turnstiles_working() {
    let config = GateConfig {
        doors: vec![door("a", 10), door("b", 20), turnstile("t", 30)],
        fire: fire(),
    };
    run(
        &config,
        &[
            (
                1000,
                Grant("a", Ok(())),
                &["door.unlocked door=a cause=Grant"],
            ),
            (
                1500,
                Grant("t", Ok(())),
                &["door.unlocked door=t cause=Grant"],
            ),
            // Only a's release is cut short; the turnstile's pulse runs on.
            (
                2000,
                DoorLockdown("a", true),
                &["lockdown.on door=a", "door.locked door=a"],
            ),
            (2000, DoorLockdown("a", true), &[]),
            (2000, Lock("t", LockState::Released), &[]),
            (2000, Feedback("a", DoorOutput::RedLed, true), &[]),
            (2000, Feedback("b", DoorOutput::RedLed, false), &[]),
            (2000, Feedback("t", DoorOutput::RedLed, false), &[]),
            (2500, Tick, &["door.locked door=t"]),
            (
                3000,
                Grant("a", Err(Refusal::Lockdown)),
                &["grant.refused door=a reason=\"lockdown\""],
            ),
            (
                3000,
                Grant("b", Ok(())),
                &["door.unlocked door=b cause=Grant"],
            ),
            (
                3000,
                Grant("t", Ok(())),
                &["door.unlocked door=t cause=Grant"],
            ),
            // REX: refused on a (lockdown_blocks_rex), working on b.
            (4000, In(Rex("a"), true), &["door.locked door=t"]),
            (4030, Tick, &["door.rex door=a refused=\"lockdown\""]),
            (4100, In(Rex("a"), false), &[]),
            (8000, Tick, &["door.locked door=b"]),
            (8100, In(Rex("b"), true), &[]),
            (
                8130,
                Tick,
                &["door.rex door=b", "door.unlocked door=b cause=Rex"],
            ),
            (8200, In(Rex("b"), false), &[]),
            // Releasing a door that is not locked down changes nothing; releasing a lifts a only.
            (9000, DoorLockdown("b", false), &[]),
            (10_000, DoorLockdown("a", false), &["lockdown.off door=a"]),
            (10_000, Feedback("a", DoorOutput::RedLed, false), &[]),
            (
                10_100,
                Grant("a", Ok(())),
                &["door.unlocked door=a cause=Grant"],
            ),
        ],
    );
}

#[test]
fn gate_wide_lockdown_sets_every_door_and_a_door_release_lifts_only_that_door() {
    let config = GateConfig {
        doors: vec![door("a", 10), door("b", 20)],
        fire: fire(),
    };
    run(
        &config,
        &[
            (500, DoorLockdown("a", true), &["lockdown.on door=a"]),
            // Gate-wide: only the doors that change report.
            (1000, Lockdown(true), &["lockdown.on door=b"]),
            (
                1100,
                Grant("b", Err(Refusal::Lockdown)),
                &["grant.refused door=b reason=\"lockdown\""],
            ),
            // Releasing b during the gate-wide lockdown: b works, a stays locked down.
            (2000, DoorLockdown("b", false), &["lockdown.off door=b"]),
            (
                2100,
                Grant("b", Ok(())),
                &["door.unlocked door=b cause=Grant"],
            ),
            (
                2100,
                Grant("a", Err(Refusal::Lockdown)),
                &["grant.refused door=a reason=\"lockdown\""],
            ),
            (
                3000,
                DoorLockdown("b", true),
                &["lockdown.on door=b", "door.locked door=b"],
            ),
            (3000, Lockdown(true), &[]),
            // Gate-wide release lifts every door.
            (
                4000,
                Lockdown(false),
                &["lockdown.off door=a", "lockdown.off door=b"],
            ),
            (4000, Lockdown(false), &[]),
            (
                4100,
                Grant("a", Ok(())),
                &["door.unlocked door=a cause=Grant"],
            ),
            (
                4100,
                Grant("b", Ok(())),
                &["door.unlocked door=b cause=Grant"],
            ),
        ],
    );
}

#[test]
fn lockdown_of_a_door_the_gate_does_not_have_is_refused_and_changes_nothing() {
    let t0 = Instant::now();
    let bigger = Gate::new(
        &GateConfig {
            doors: vec![door("main", 10), door("other", 20)],
            fire: None,
        },
        t0,
    )
    .expect("valid configuration");
    let other = bigger.door_id("other").expect("door exists");
    let mut config = one_door();
    config.fire = None;
    let mut gate = Gate::new(&config, t0).expect("valid configuration");
    gate.tick(t0);
    gate.take_actions();
    let main = gate.door_id("main").expect("door exists");
    for on in [true, false] {
        assert_eq!(
            gate.set_lockdown(LockdownScope::Door(other), on, t0),
            Err(Refusal::UnknownDoor)
        );
        assert_eq!(gate.take_actions(), []);
    }
    assert_eq!(gate.is_lockdown(main), Some(false));
    assert_eq!(gate.is_lockdown(other), None);
    assert_eq!(gate.grant(main, t0), Ok(()));
}

#[test]
fn power_on_with_the_door_open_is_not_forced_but_is_timed() {
    run_from_power_on(
        &one_door(),
        &[
            (0, In(Fire, false), &[]),
            (0, In(Contact("main"), true), &[]),
            (0, In(Rex("main"), false), &[]),
            (0, In(Tamper("main"), false), &[]),
            (
                0,
                Grant("main", Err(Refusal::Starting)),
                &["grant.refused door=main reason=\"door inputs not read yet (starting)\""],
            ),
            (
                30,
                Tick,
                &["doors.ready", "door.opened door=main how=AtStartup"],
            ),
            (30, Lock("main", LockState::Secured), &[]),
            (30, Feedback("main", DoorOutput::RedLed, true), &[]),
            (1030, Tick, &[]),
            (1030, Feedback("main", DoorOutput::RedLed, false), &[]),
            (20_030, Tick, &["door.held_open door=main stage=PreAlarm"]),
            (21_000, In(Contact("main"), false), &[]),
            (21_030, Tick, &["door.closed door=main"]),
        ],
    );
}

#[test]
fn fail_safe_lock_is_released_until_start_up_then_locks_unless_fire() {
    let mut config = one_door();
    config.doors[0].lock.fail_mode = FailMode::Safe;
    run_from_power_on(
        &config,
        &[
            (0, Lock("main", LockState::Released), &[]),
            (0, In(Fire, false), &[]),
            (29, Tick, &[]),
            (29, Lock("main", LockState::Released), &[]),
            (30, Tick, &["doors.ready", "door.locked door=main"]),
        ],
    );
    run_from_power_on(
        &config,
        &[
            (0, In(Fire, true), &[]),
            (30, Tick, &["doors.ready", "fire.active"]),
            (30, Lock("main", LockState::Released), &[]),
            (1000, In(Fire, false), &[]),
            (1030, Tick, &["fire.cleared", "door.locked door=main"]),
        ],
    );
}

#[test]
fn interlocked_doors_never_release_together_except_in_fire() {
    let mut config = GateConfig {
        doors: vec![door("outer", 10), door("inner", 20)],
        fire: fire(),
    };
    config.doors[0].interlock_with = Some("inner".into());
    run(
        &config,
        &[
            (
                1000,
                Grant("outer", Ok(())),
                &["door.unlocked door=outer cause=Grant"],
            ),
            // The interlock works both ways although only `outer` names it.
            (
                1100,
                Grant("inner", Err(Refusal::Interlock)),
                &["grant.refused door=inner reason=\"interlocked door is open or released\""],
            ),
            (1200, In(Rex("inner"), true), &[]),
            (
                1230,
                Tick,
                &["door.rex door=inner refused=\"interlocked door is open or released\""],
            ),
            (1300, In(Rex("inner"), false), &[]),
            (2000, In(Contact("outer"), true), &[]),
            (2030, Tick, &["door.opened door=outer how=Released"]),
            (3000, In(Contact("outer"), false), &[]),
            (3030, Tick, &["door.closed door=outer"]),
            (3530, Tick, &["door.locked door=outer"]),
            (
                4000,
                Grant("inner", Ok(())),
                &["door.unlocked door=inner cause=Grant"],
            ),
            (4100, In(Contact("inner"), true), &[]),
            (4130, Tick, &["door.opened door=inner how=Released"]),
            (9100, Tick, &["door.locked door=inner"]),
            // Inner still open: outer refused although inner is locked.
            (
                9200,
                Grant("outer", Err(Refusal::Interlock)),
                &["grant.refused door=outer reason=\"interlocked door is open or released\""],
            ),
            (9300, In(Fire, true), &[]),
            (
                9330,
                Tick,
                &[
                    "fire.active",
                    "door.unlocked door=outer cause=Fire",
                    "door.unlocked door=inner cause=Fire",
                ],
            ),
            (9400, Grant("outer", Ok(())), &[]),
        ],
    );
}

#[test]
fn turnstile_pulses_once_per_grant_counts_passages_and_expires_unused_grants() {
    let config = GateConfig {
        doors: vec![turnstile("gate", 10)],
        fire: fire(),
    };
    run(
        &config,
        &[
            (
                1000,
                Grant("gate", Ok(())),
                &["door.unlocked door=gate cause=Grant"],
            ),
            (2000, Tick, &["door.locked door=gate"]),
            (2500, In(Passage("gate"), true), &[]),
            (
                2530,
                Tick,
                &["turnstile.passage door=gate authorised=true count=1"],
            ),
            (2600, In(Passage("gate"), false), &[]),
            // A grant nobody uses.
            (
                3000,
                Grant("gate", Ok(())),
                &["door.unlocked door=gate cause=Grant"],
            ),
            (4000, Tick, &["door.locked door=gate"]),
            (12_999, Tick, &[]),
            (13_000, Tick, &["grant.expired door=gate"]),
            // A passage without a grant.
            (14_000, In(Passage("gate"), true), &[]),
            (
                14_030,
                Tick,
                &["turnstile.passage door=gate authorised=false count=2"],
            ),
            (14_030, Feedback("gate", DoorOutput::RedLed, true), &[]),
            (14_100, In(Passage("gate"), false), &[]),
            // Two grants in a row: two pulses separated by the pulse gap.
            (
                20_000,
                Grant("gate", Ok(())),
                &["door.unlocked door=gate cause=Grant"],
            ),
            (20_100, Grant("gate", Ok(())), &[]),
            (21_000, Tick, &["door.locked door=gate"]),
            (21_000, Deadline(Some(21_250)), &[]),
            (21_249, Tick, &[]),
            (21_250, Tick, &["door.unlocked door=gate cause=Grant"]),
            (22_250, Tick, &["door.locked door=gate"]),
            (22_300, In(Passage("gate"), true), &[]),
            (
                22_330,
                Tick,
                &["turnstile.passage door=gate authorised=true count=3"],
            ),
            (22_400, In(Passage("gate"), false), &[]),
            (22_430, Tick, &[]),
            (22_500, In(Passage("gate"), true), &[]),
            (
                22_530,
                Tick,
                &["turnstile.passage door=gate authorised=true count=4"],
            ),
            (22_600, In(Passage("gate"), false), &[]),
            // Lockdown cancels pending grants.
            (
                23_000,
                Grant("gate", Ok(())),
                &["door.unlocked door=gate cause=Grant"],
            ),
            (
                23_100,
                Lockdown(true),
                &[
                    "lockdown.on door=gate",
                    "grant.cancelled door=gate",
                    "door.locked door=gate",
                ],
            ),
        ],
    );
}

#[test]
fn tamper_is_reported_and_lights_red() {
    run(
        &one_door(),
        &[
            (1000, In(Tamper("main"), true), &[]),
            (1030, Tick, &["door.tamper door=main"]),
            (1030, Feedback("main", DoorOutput::RedLed, true), &[]),
            (1030, Lock("main", LockState::Secured), &[]),
            (2000, In(Tamper("main"), false), &[]),
            (2030, Tick, &["door.tamper_cleared door=main"]),
            (2030, Feedback("main", DoorOutput::RedLed, false), &[]),
        ],
    );
}

#[test]
fn deny_gives_red_and_buzzer_feedback_only() {
    run(
        &one_door(),
        &[
            (1000, Deny("main"), &[]),
            (1000, Feedback("main", DoorOutput::RedLed, true), &[]),
            (1000, Feedback("main", DoorOutput::Buzzer, true), &[]),
            (1000, Lock("main", LockState::Secured), &[]),
            (1500, Tick, &[]),
            (1500, Feedback("main", DoorOutput::Buzzer, false), &[]),
            (2000, Tick, &[]),
            (2000, Feedback("main", DoorOutput::RedLed, false), &[]),
        ],
    );
}

#[test]
fn time_going_backwards_counts_as_no_time() {
    run(
        &one_door(),
        &[
            (
                1000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (500, Tick, &[]),
            (500, Lock("main", LockState::Released), &[]),
            (6000, Tick, &["door.locked door=main"]),
        ],
    );
}

#[test]
fn a_door_without_contact_relocks_only_at_timeout() {
    let mut config = one_door();
    config.doors[0].contact = None;
    run(
        &config,
        &[
            (
                1000,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
            (5999, Tick, &[]),
            (6000, Tick, &["door.locked door=main"]),
        ],
    );
}

#[test]
fn a_gate_without_fire_input_starts_at_once() {
    let mut config = one_door();
    config.fire = None;
    run_from_power_on(
        &config,
        &[
            (0, Tick, &["doors.ready"]),
            (
                10,
                Grant("main", Ok(())),
                &["door.unlocked door=main cause=Grant"],
            ),
        ],
    );
}

#[test]
fn turnstile_rex_allowed_in_lockdown_pulses() {
    let mut config = GateConfig {
        doors: vec![turnstile("gate", 10)],
        fire: fire(),
    };
    config.doors[0].lockdown_blocks_rex = false;
    run(
        &config,
        &[
            (1000, Lockdown(true), &["lockdown.on door=gate"]),
            (
                1000,
                Grant("gate", Err(Refusal::Lockdown)),
                &["grant.refused door=gate reason=\"lockdown\""],
            ),
            (2000, In(Rex("gate"), true), &[]),
            (
                2030,
                Tick,
                &["door.rex door=gate", "door.unlocked door=gate cause=Rex"],
            ),
            (3030, Tick, &["door.locked door=gate"]),
        ],
    );
}
