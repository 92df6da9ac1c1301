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

    /// Where [`Self::set_aside`] would move a damaged file now: `<file>.damaged`, or when an
    /// earlier one is still there (nobody has settled it yet), `<file>.damaged.2`, `.3`, …
    pub fn set_aside_path(&self) -> PathBuf {
        (1u32..)
            .map(|n| self.aside_candidate(n))
            .find(|candidate| !candidate.exists())
            .unwrap_or_else(|| self.aside_candidate(1))
    }

    /// The damaged files set aside earlier and still there, in the order they were set aside.
    ///
    /// # Errors
    /// The state directory cannot be listed.
    pub fn set_aside_files(&self) -> Result<Vec<PathBuf>, StateFileError> {
        let io = |source| StateFileError::Io {
            file: FILE,
            path: self.path.clone(),
            source,
        };
        let directory = self.path.parent().unwrap_or(Path::new("."));
        let entries = match std::fs::read_dir(directory) {
            Ok(entries) => entries,
            // No state directory yet: nothing was set aside.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io(error)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(io)?.path();
            if let Some(n) = self.aside_number(&path) {
                files.push((n, path));
            }
        }
        files.sort_by_key(|(n, _)| *n);
        Ok(files.into_iter().map(|(_, path)| path).collect())
    }

    /// Which set-aside name `path` is (1 for `<file>.damaged`, `n` for `<file>.damaged.n`), if any.
    fn aside_number(&self, path: &Path) -> Option<u32> {
        let first = self.aside_candidate(1);
        if path.parent() != first.parent() {
            return None;
        }
        let name = path.file_name()?.to_str()?;
        let rest = name.strip_prefix(first.file_name()?.to_str()?)?;
        if rest.is_empty() {
            return Some(1);
        }
        rest.strip_prefix('.')?
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 1 && self.aside_candidate(n) == path)
    }

    /// The `n`-th name for a damaged file (`<file>.damaged`, then `<file>.damaged.2`, …).
    fn aside_candidate(&self, n: u32) -> PathBuf {
        let mut aside = self.path.clone().into_os_string();
        aside.push(".damaged");
        if n > 1 {
            aside.push(format!(".{n}"));
        }
        PathBuf::from(aside)
    }

    /// Moves a damaged file aside (to [`Self::set_aside_path`]: never over an earlier one an
    /// operator may not have read), so that the next save does not overwrite it; returns where it
    /// went.
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

    #[test]
    fn a_second_damaged_file_is_set_aside_beside_the_first_not_over_it() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = UnconfirmedMealsFile::in_state_dir(dir.path());
        let mut kept = Vec::new();
        for text in ["{\"version\":1,", "{\"meals\":"] {
            std::fs::write(file.path(), text).expect("write");
            assert!(file.load().is_err());
            let aside = file.set_aside().expect("set aside");
            kept.push((aside, text));
        }
        assert_ne!(kept[0].0, kept[1].0);
        for (aside, text) in &kept {
            assert_eq!(&std::fs::read_to_string(aside).expect("read"), text);
        }
        let listed: Vec<PathBuf> = kept.iter().map(|(aside, _)| aside.clone()).collect();
        assert_eq!(file.set_aside_files().expect("listed"), listed);
        let missing = UnconfirmedMealsFile::in_state_dir(&dir.path().join("not-yet"));
        assert_eq!(
            missing.set_aside_files().expect("none"),
            Vec::<PathBuf>::new()
        );
    }
}
