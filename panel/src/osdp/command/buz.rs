//! `osdp_BUZ` (0x6A): reader buzzer control, 5-byte records:
//! `reader | tone | on | off | count`. Tone 0 or 1: off; 2: the default tone. Times in 100 ms
//! units; count 0 repeats until told otherwise.

/// Command code.
pub const CODE: u8 = 0x6A;
/// Bytes per record.
pub const RECORD_LEN: usize = 5;

/// One buzzer record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuzzerCommand {
    /// Reader number.
    pub reader: u8,
    /// Tone code (0/1 off, 2 default tone).
    pub tone: u8,
    /// On time, 100 ms units.
    pub on: u8,
    /// Off time, 100 ms units.
    pub off: u8,
    /// Number of cycles (0: until changed).
    pub count: u8,
}

impl BuzzerCommand {
    /// Whether this record switches the buzzer off.
    pub fn is_off(&self) -> bool {
        self.tone < 2 || self.on == 0
    }

    /// Decodes every record of the command's data.
    pub fn decode_all(data: &[u8]) -> Result<Vec<Self>, super::CommandError> {
        if data.is_empty() || !data.len().is_multiple_of(RECORD_LEN) {
            return Err(super::CommandError::Length {
                code: CODE,
                len: data.len(),
            });
        }
        Ok(data
            .chunks_exact(RECORD_LEN)
            .map(|r| Self {
                reader: r[0],
                tone: r[1],
                on: r[2],
                off: r[3],
                count: r[4],
            })
            .collect())
    }

    /// Encodes one record.
    pub fn encode(&self) -> Vec<u8> {
        vec![self.reader, self.tone, self.on, self.off, self.count]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_beeps_decode() {
        let bytes = [0, 2, 2, 1, 2];
        let command = BuzzerCommand::decode_all(&bytes).expect("one")[0];
        assert_eq!(
            command,
            BuzzerCommand {
                reader: 0,
                tone: 2,
                on: 2,
                off: 1,
                count: 2
            }
        );
        assert!(!command.is_off());
        assert_eq!(command.encode(), bytes.to_vec());
        assert!(BuzzerCommand::decode_all(&[0, 1, 0, 0]).is_err());
    }
}
