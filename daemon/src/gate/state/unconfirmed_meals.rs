//! The cards whose answer to a meal was lost at this gate (`meal_not_confirmed`: the card may have
//! counted the meal, the gate did not hear it). The receipt the card keeps is read back and
//! published at the card's next meal here; kept in the state directory so that a restart between
//! the two does not lose the meal's evidence. Written durably whenever the set changes, read at
//! start-up. A damaged file is set aside (renamed, not deleted) and reported; the gate starts
//! without it rather than refuse to serve the canteen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::durable::{Record, StateFileError, read_record, write_record};
use crate::access::MealRequest;
use crate::event::CardId;

/// File name in the state directory.
pub const FILE_NAME: &str = "unconfirmed-meals.json";

/// What the file is, in messages.
const FILE: &str = "unconfirmed meals file";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u32,
    meals: Vec<StoredMeal>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredMeal {
    card: CardId,
    period: u32,
    allowance: u8,
    gate_time: u64,
}

impl Record for Stored {
    const VERSION: u32 = 1;
    fn version(&self) -> u32 {
        self.version
    }
}

/// The unconfirmed-meals file of a gate.
#[derive(Debug, Clone)]
pub struct UnconfirmedMealsFile {
    path: PathBuf,
}

impl UnconfirmedMealsFile {
    /// The file in `state_dir`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(FILE_NAME),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The meals kept; none when the file does not exist.
    ///
    /// # Errors
    /// The file cannot be read or is damaged.
    pub fn load(&self) -> Result<BTreeMap<CardId, MealRequest>, StateFileError> {
        let stored: Option<Stored> = read_record(FILE, &self.path)?;
        Ok(stored
            .map(|stored| stored.meals)
            .unwrap_or_default()
            .into_iter()
            .map(|meal| {
                let request = MealRequest {
                    period: meal.period,
                    allowance: meal.allowance,
                    gate_time: meal.gate_time,
                };
                (meal.card, request)
            })
            .collect())
    }

    /// Where [`Self::set_aside`] moves a damaged file (`<file>.damaged`).
    pub fn set_aside_path(&self) -> PathBuf {
        let mut aside = self.path.clone().into_os_string();
        aside.push(".damaged");
        PathBuf::from(aside)
    }

    /// Moves a damaged file aside (to `<file>.damaged`, replacing an older one), so that the
    /// next save does not overwrite what an operator may still read; returns where it went.
    ///
    /// # Errors
    /// The rename fails.
    pub fn set_aside(&self) -> Result<PathBuf, StateFileError> {
        let aside = self.set_aside_path();
        std::fs::rename(&self.path, &aside).map_err(|source| StateFileError::Io {
            file: FILE,
            path: self.path.clone(),
            source,
        })?;
        Ok(aside)
    }

    /// Records `meals` (durably: see [`super::durable`]).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, meals: &BTreeMap<CardId, MealRequest>) -> Result<(), StateFileError> {
        let stored = Stored {
            version: Stored::VERSION,
            meals: meals
                .iter()
                .map(|(card, request)| StoredMeal {
                    card: card.clone(),
                    period: request.period,
                    allowance: request.allowance,
                    gate_time: request.gate_time,
                })
                .collect(),
        };
        write_record(FILE, &self.path, &stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meals(entries: &[(u8, u32)]) -> BTreeMap<CardId, MealRequest> {
        entries
            .iter()
            .map(|&(card, period)| {
                let request = MealRequest {
                    period,
                    allowance: 2,
                    gate_time: 1_765_000_000 + u64::from(period),
                };
                (CardId::new(&[card; 16]).expect("card id"), request)
            })
            .collect()
    }

    #[test]
    fn saved_meals_load_back_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = UnconfirmedMealsFile::in_state_dir(dir.path());
        assert_eq!(file.load().expect("no file"), meals(&[]));
        file.save(&meals(&[(1, 7), (2, 8)])).expect("save");
        assert_eq!(file.load().expect("load"), meals(&[(1, 7), (2, 8)]));
        file.save(&meals(&[])).expect("save");
        assert_eq!(file.load().expect("load"), meals(&[]));
    }

    /// Damage in general is [`super::super::durable::read_record`]'s (tested there); here a card
    /// id that is not one, and that the damaged file is set aside whole.
    #[test]
    fn a_damaged_file_is_an_error_and_is_set_aside_whole() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = UnconfirmedMealsFile::in_state_dir(dir.path());
        let text =
            r#"{"version":1,"meals":[{"card":"zz","period":1,"allowance":1,"gate_time":1}]}"#;
        std::fs::write(file.path(), text).expect("write");
        let error = file.load().expect_err("not a card id");
        assert!(matches!(error, StateFileError::Invalid { .. }), "{error}");
        assert!(error.to_string().contains(FILE_NAME), "{error}");
        let aside = file.set_aside().expect("set aside");
        assert_eq!(std::fs::read_to_string(&aside).expect("read"), text);
        assert_eq!(file.load().expect("gone"), meals(&[]));
    }
}
