//! Illumination bands (protocol 1.1): what light a frame was taken under.

/// One illumination band of a sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Band {
    /// All LEDs off: only the ambient light.
    Ambient = 1,
    /// Near-infrared LEDs, 850 nm.
    Nir850 = 2,
    /// Near-infrared LEDs, 940 nm.
    Nir940 = 3,
    /// Visible (white) LEDs.
    Visible = 4,
}

impl Band {
    /// Every band, in code order.
    pub const ALL: [Band; 4] = [Band::Ambient, Band::Nir850, Band::Nir940, Band::Visible];

    /// The band for a code byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|band| *band as u8 == byte)
    }

    /// The `Bands` bitmask bit of this band.
    pub fn bit(self) -> u8 {
        1 << (self as u8 - 1)
    }

    /// The `Bands` bitmask of a set of bands.
    pub fn mask(bands: &[Band]) -> u8 {
        bands.iter().fold(0, |mask, band| mask | band.bit())
    }

    /// The bands of a `Bands` bitmask (unknown bits are ignored).
    pub fn from_mask(mask: u8) -> Vec<Band> {
        Self::ALL
            .into_iter()
            .filter(|band| mask & band.bit() != 0)
            .collect()
    }

    /// The band's name in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ambient => "ambient",
            Self::Nir850 => "nir850",
            Self::Nir940 => "nir940",
            Self::Visible => "visible",
        }
    }
}

impl std::fmt::Display for Band {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Band {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|band| band.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!("unknown band {text:?} (expected ambient, nir850, nir940 or visible)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_masks_and_names_round_trip() {
        for band in Band::ALL {
            assert_eq!(Band::from_byte(band as u8), Some(band));
            assert_eq!(band.name().parse::<Band>(), Ok(band));
        }
        assert_eq!(Band::from_byte(0), None);
        assert_eq!(Band::from_byte(5), None);
        assert_eq!(Band::mask(&[Band::Ambient, Band::Visible]), 0b1001);
        assert_eq!(Band::from_mask(0xF6), vec![Band::Nir850, Band::Nir940]);
        assert!("uv".parse::<Band>().is_err());
    }
}
