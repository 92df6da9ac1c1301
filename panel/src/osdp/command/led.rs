//! `osdp_LED` (0x69): reader LED control, one or more 14-byte records:
//!
//! ```text
//! reader | led | temp: control on off on_color off_color timer(LSB MSB) | perm: control on off on_color off_color
//! ```
//! Times in units of 100 ms. Temporary control: 0 no change, 1 cancel (show the permanent
//! state), 2 set and start the timer. Permanent control: 0 no change, 1 set.

/// Command code.
pub const CODE: u8 = 0x69;
/// Bytes per record.
pub const RECORD_LEN: usize = 14;

/// LED colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Color {
    /// Off (black).
    Off,
    /// Red.
    Red,
    /// Green.
    Green,
    /// Amber.
    Amber,
    /// Blue.
    Blue,
    /// Any other colour code (magenta, cyan, white, vendor).
    Other(u8),
}

impl Color {
    /// From the protocol's colour code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Off,
            1 => Self::Red,
            2 => Self::Green,
            3 => Self::Amber,
            4 => Self::Blue,
            other => Self::Other(other),
        }
    }

    /// The protocol's colour code.
    pub fn code(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::Red => 1,
            Self::Green => 2,
            Self::Amber => 3,
            Self::Blue => 4,
            Self::Other(code) => code,
        }
    }
}

/// One LED state: on colour for `on` × 100 ms, off colour for `off` × 100 ms, repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedPattern {
    /// On time, 100 ms units (0 with `off` 0: steady `off_color`).
    pub on: u8,
    /// Off time, 100 ms units (0: steady `on_color`).
    pub off: u8,
    /// Colour while on.
    pub on_color: Color,
    /// Colour while off.
    pub off_color: Color,
}

/// The temporary part of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporary {
    /// Leave the temporary state as it is.
    NoChange,
    /// Cancel it: show the permanent state.
    Cancel,
    /// Show `pattern` for `timer` × 100 ms, then the permanent state.
    Set {
        /// The pattern.
        pattern: LedPattern,
        /// Duration, 100 ms units.
        timer: u16,
    },
}

/// One LED record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedCommand {
    /// Reader number (0: this reader).
    pub reader: u8,
    /// LED number.
    pub led: u8,
    /// Temporary state.
    pub temporary: Temporary,
    /// New permanent state (`None`: no change).
    pub permanent: Option<LedPattern>,
}

impl LedCommand {
    /// Decodes every record of the command's data.
    pub fn decode_all(data: &[u8]) -> Result<Vec<Self>, super::CommandError> {
        if data.is_empty() || !data.len().is_multiple_of(RECORD_LEN) {
            return Err(super::CommandError::Length {
                code: CODE,
                len: data.len(),
            });
        }
        Ok(data.chunks_exact(RECORD_LEN).map(Self::decode).collect())
    }

    fn decode(record: &[u8]) -> Self {
        let pattern = |at: usize| LedPattern {
            on: record[at + 1],
            off: record[at + 2],
            on_color: Color::from_code(record[at + 3]),
            off_color: Color::from_code(record[at + 4]),
        };
        let temporary = match record[2] {
            1 => Temporary::Cancel,
            2 => Temporary::Set {
                pattern: pattern(2),
                timer: u16::from_le_bytes([record[7], record[8]]),
            },
            _ => Temporary::NoChange,
        };
        let permanent = (record[9] == 1).then(|| pattern(9));
        Self {
            reader: record[0],
            led: record[1],
            temporary,
            permanent,
        }
    }

    /// Encodes one record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.reader, self.led];
        let put = |out: &mut Vec<u8>, control: u8, pattern: Option<&LedPattern>| {
            out.push(control);
            match pattern {
                Some(p) => {
                    out.extend_from_slice(&[p.on, p.off, p.on_color.code(), p.off_color.code()])
                }
                None => out.extend_from_slice(&[0, 0, 0, 0]),
            }
        };
        match &self.temporary {
            Temporary::NoChange => {
                put(&mut out, 0, None);
                out.extend_from_slice(&[0, 0]);
            }
            Temporary::Cancel => {
                put(&mut out, 1, None);
                out.extend_from_slice(&[0, 0]);
            }
            Temporary::Set { pattern, timer } => {
                put(&mut out, 2, Some(pattern));
                out.extend_from_slice(&timer.to_le_bytes());
            }
        }
        match &self.permanent {
            Some(pattern) => put(&mut out, 1, Some(pattern)),
            None => put(&mut out, 0, None),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permanent_green_record_decodes() {
        // reader 0, LED 0, temporary no-op, permanent set: on 1, off 0, green, off colour black.
        let bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 2, 0];
        let commands = LedCommand::decode_all(&bytes).expect("one record");
        assert_eq!(
            commands,
            vec![LedCommand {
                reader: 0,
                led: 0,
                temporary: Temporary::NoChange,
                permanent: Some(LedPattern {
                    on: 1,
                    off: 0,
                    on_color: Color::Green,
                    off_color: Color::Off
                }),
            }]
        );
        assert_eq!(commands[0].encode(), bytes.to_vec());
    }

    #[test]
    fn a_temporary_red_blink_with_timer_decodes() {
        let bytes = [0, 0, 2, 5, 5, 1, 0, 0x2C, 0x01, 0, 0, 0, 0, 0];
        let command = LedCommand::decode_all(&bytes).expect("one")[0];
        assert_eq!(
            command.temporary,
            Temporary::Set {
                pattern: LedPattern {
                    on: 5,
                    off: 5,
                    on_color: Color::Red,
                    off_color: Color::Off
                },
                timer: 300
            }
        );
        assert_eq!(command.permanent, None);
        assert!(LedCommand::decode_all(&bytes[..13]).is_err());
    }
}
