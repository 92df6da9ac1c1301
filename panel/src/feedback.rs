//! The reader's LED and buzzer as the panel commands them.
//!
//! In panel mode the panel owns the feedback (it decides grant or denial), so OSDP `osdp_LED` and
//! `osdp_BUZ` commands drive the reader's outputs: [`ReaderFeedback`] keeps the LED's permanent and
//! temporary states and the buzzer's cycles with injected time and says what the outputs show at
//! any moment; [`FeedbackPins`] writes that onto a green LED, a red LED (amber = both) and a
//! buzzer.

use std::time::{Duration, Instant};

use palmgate_door::{GpioError, Level, OutputPin};

use crate::osdp::command::{BuzzerCommand, Color, LedCommand, LedPattern, Temporary};

const TICK: Duration = Duration::from_millis(100);

/// What the outputs show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// The LED colour.
    pub color: Color,
    /// The buzzer sounds.
    pub buzzer: bool,
}

#[derive(Debug, Clone, Copy)]
struct Running<T> {
    what: T,
    since: Instant,
}

/// The LED and buzzer states (I/O-free, injected time).
#[derive(Debug, Clone)]
pub struct ReaderFeedback {
    permanent: Running<LedPattern>,
    temporary: Option<(Running<LedPattern>, Instant)>,
    buzzer: Option<Running<BuzzerCommand>>,
}

fn steady(color: Color) -> LedPattern {
    LedPattern {
        on: 0,
        off: 0,
        on_color: color,
        off_color: color,
    }
}

fn ticks(count: u8) -> Duration {
    TICK * u32::from(count)
}

impl ReaderFeedback {
    /// LED off, buzzer silent.
    pub fn new(now: Instant) -> Self {
        Self {
            permanent: Running {
                what: steady(Color::Off),
                since: now,
            },
            temporary: None,
            buzzer: None,
        }
    }

    /// Applies an LED record.
    pub fn led(&mut self, command: &LedCommand, now: Instant) {
        if let Some(pattern) = command.permanent {
            self.permanent = Running {
                what: pattern,
                since: now,
            };
        }
        match command.temporary {
            Temporary::NoChange => {}
            Temporary::Cancel => self.temporary = None,
            Temporary::Set { pattern, timer } => {
                let until = now + TICK * u32::from(timer);
                self.temporary = Some((
                    Running {
                        what: pattern,
                        since: now,
                    },
                    until,
                ));
            }
        }
    }

    /// Applies a buzzer record.
    pub fn buzzer(&mut self, command: &BuzzerCommand, now: Instant) {
        self.buzzer = (!command.is_off()).then_some(Running {
            what: *command,
            since: now,
        });
    }

    fn pattern_color(running: &Running<LedPattern>, now: Instant) -> Color {
        let pattern = running.what;
        if pattern.off == 0 && pattern.on > 0 {
            return pattern.on_color;
        }
        if pattern.on == 0 {
            return pattern.off_color;
        }
        let period = ticks(pattern.on) + ticks(pattern.off);
        let phase = now.saturating_duration_since(running.since).as_nanos() % period.as_nanos();
        if phase < ticks(pattern.on).as_nanos() {
            pattern.on_color
        } else {
            pattern.off_color
        }
    }

    /// What the outputs show at `now`.
    pub fn shown(&self, now: Instant) -> Shown {
        let color = match &self.temporary {
            Some((running, until)) if now < *until => Self::pattern_color(running, now),
            _ => Self::pattern_color(&self.permanent, now),
        };
        let buzzer = self.buzzer.as_ref().is_some_and(|running| {
            let command = running.what;
            let period = ticks(command.on) + ticks(command.off);
            let elapsed = now.saturating_duration_since(running.since);
            let cycle = elapsed.as_nanos() / period.as_nanos().max(1);
            let within_count = command.count == 0 || cycle < u128::from(command.count);
            within_count
                && elapsed.as_nanos() % period.as_nanos().max(1) < ticks(command.on).as_nanos()
        });
        Shown { color, buzzer }
    }

    /// When the outputs may next change (the caller re-reads [`ReaderFeedback::shown`] then).
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        let temporary_running = self
            .temporary
            .as_ref()
            .is_some_and(|(_, until)| now < *until);
        let blinking = |pattern: &LedPattern| pattern.on > 0 && pattern.off > 0;
        let led_moves = match &self.temporary {
            Some((running, _)) if temporary_running => blinking(&running.what),
            _ => blinking(&self.permanent.what),
        };
        let buzzer_moves = self.buzzer.is_some();
        let mut next = None::<Instant>;
        if led_moves || buzzer_moves {
            // Every state change falls on a 100 ms boundary of its own start; re-reading each
            // 100 ms after the latest start is exact enough for a human-facing light.
            next = Some(now + TICK);
        }
        if let Some((_, until)) = &self.temporary
            && now < *until
        {
            next = Some(next.map_or(*until, |at| at.min(*until)));
        }
        next
    }
}

/// The feedback outputs of a reader.
pub struct FeedbackPins {
    green: Box<dyn OutputPin>,
    red: Box<dyn OutputPin>,
    buzzer: Box<dyn OutputPin>,
    active: Level,
}

impl std::fmt::Debug for FeedbackPins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackPins")
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl FeedbackPins {
    /// The pins, driven off at once.
    pub fn new(
        green: Box<dyn OutputPin>,
        red: Box<dyn OutputPin>,
        buzzer: Box<dyn OutputPin>,
        active: Level,
    ) -> Result<Self, GpioError> {
        let mut pins = Self {
            green,
            red,
            buzzer,
            active,
        };
        pins.show(Shown {
            color: Color::Off,
            buzzer: false,
        })?;
        Ok(pins)
    }

    /// Writes what is shown: green and red LEDs (amber lights both), the buzzer.
    pub fn show(&mut self, shown: Shown) -> Result<(), GpioError> {
        let (green, red) = match shown.color {
            Color::Green => (true, false),
            Color::Red => (false, true),
            Color::Amber => (true, true),
            _ => (false, false),
        };
        let level = |on: bool, active: Level| match (on, active) {
            (true, level) => level,
            (false, Level::High) => Level::Low,
            (false, Level::Low) => Level::High,
        };
        self.green.set(level(green, self.active))?;
        self.red.set(level(red, self.active))?;
        self.buzzer.set(level(shown.buzzer, self.active))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(on: u8, off: u8, on_color: Color) -> LedPattern {
        LedPattern {
            on,
            off,
            on_color,
            off_color: Color::Off,
        }
    }

    /// A feedback that received one LED record at `t0`.
    fn after_led(t0: Instant, temporary: Temporary, permanent: LedPattern) -> ReaderFeedback {
        let mut feedback = ReaderFeedback::new(t0);
        let command = LedCommand {
            reader: 0,
            led: 0,
            temporary,
            permanent: Some(permanent),
        };
        feedback.led(&command, t0);
        feedback
    }

    #[test]
    fn a_temporary_red_shows_for_its_timer_then_the_permanent_green() {
        let t0 = Instant::now();
        let temporary = Temporary::Set {
            pattern: pattern(1, 0, Color::Red),
            timer: 10,
        };
        let feedback = after_led(t0, temporary, pattern(1, 0, Color::Green));
        assert_eq!(feedback.shown(t0).color, Color::Red);
        assert_eq!(feedback.next_change(t0), Some(t0 + Duration::from_secs(1)));
        assert_eq!(
            feedback.shown(t0 + Duration::from_millis(999)).color,
            Color::Red
        );
        assert_eq!(
            feedback.shown(t0 + Duration::from_secs(1)).color,
            Color::Green
        );
    }

    #[test]
    fn a_blink_alternates_on_its_100ms_units() {
        let t0 = Instant::now();
        let feedback = after_led(t0, Temporary::NoChange, pattern(2, 3, Color::Amber));
        let at = |ms| feedback.shown(t0 + Duration::from_millis(ms)).color;
        assert_eq!(
            [at(0), at(199), at(200), at(499), at(500)],
            [
                Color::Amber,
                Color::Amber,
                Color::Off,
                Color::Off,
                Color::Amber
            ]
        );
    }

    #[test]
    fn the_buzzer_beeps_count_times_then_stops() {
        let t0 = Instant::now();
        let mut feedback = ReaderFeedback::new(t0);
        feedback.buzzer(
            &BuzzerCommand {
                reader: 0,
                tone: 2,
                on: 1,
                off: 1,
                count: 2,
            },
            t0,
        );
        let at = |ms| feedback.shown(t0 + Duration::from_millis(ms)).buzzer;
        assert_eq!(
            [at(0), at(150), at(250), at(350), at(450)],
            [true, false, true, false, false]
        );
        let _ = at;
        feedback.buzzer(
            &BuzzerCommand {
                reader: 0,
                tone: 1,
                on: 0,
                off: 0,
                count: 0,
            },
            t0,
        );
        assert!(!feedback.shown(t0).buzzer);
    }

    #[test]
    fn pins_show_colours_and_buzzer() {
        use palmgate_door::{Backend, SimulatedGpio};
        let mut gpio = SimulatedGpio::new();
        let mut pins = FeedbackPins::new(
            gpio.output(20, Level::Low).expect("green"),
            gpio.output(21, Level::Low).expect("red"),
            gpio.output(22, Level::Low).expect("buzzer"),
            Level::High,
        )
        .expect("pins");
        pins.show(Shown {
            color: Color::Amber,
            buzzer: true,
        })
        .expect("show");
        assert_eq!(
            [20, 21, 22].map(|pin| gpio.output_level(pin)),
            [Some(Level::High); 3]
        );
        pins.show(Shown {
            color: Color::Red,
            buzzer: false,
        })
        .expect("show");
        assert_eq!(
            [20, 21, 22].map(|pin| gpio.output_level(pin)),
            [Some(Level::Low), Some(Level::High), Some(Level::Low)]
        );
    }
}
