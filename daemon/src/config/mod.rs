//! Layered configuration, validated into [`Settings`].
//!
//! Layers, lowest first: the built-in defaults (`defaults.toml`, embedded), the main file
//! (`/etc/palmgate/palmgate.toml` or `--config FILE`), the drop-ins `conf.d/*.toml` beside it in
//! name order, and `PALMGATE__SECTION__KEY` environment variables. Each file is first checked on its
//! own (syntax, unknown keys, types), so that a problem names the file that has it; the merge is then
//! validated once (ranges, pins used twice, files that must exist, URLs, topics). Every problem is
//! reported, one line each, as `SOURCE: KEY: reason`; loading never panics.
//!
//! Every file the configuration names (and the configuration files themselves) must be a regular
//! file of bounded size, checked without blocking ([`files`]); strings and numbers have limits.
//!
//! Layout: [`raw`] (the keys as written), [`settings`] (validated), [`validate`] (raw to
//! settings), [`files`] (bounded, non-blocking reads of named files).

pub mod files;
mod raw;
mod settings;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use settings::*;

use raw::RawConfig;

/// Where the daemon looks for its configuration by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/palmgate/palmgate.toml";

/// Prefix of environment variables that override keys: `PALMGATE__MQTT__URL`.
pub const ENV_PREFIX: &str = "PALMGATE";

const DEFAULTS_TOML: &str = include_str!("defaults.toml");
const DEFAULTS_ORIGIN: &str = "built-in defaults";
const ENV_ORIGIN: &str = "environment";

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or `environment`, `built-in defaults`) the problem comes from.
    pub source: String,
    /// Dotted key, empty when the problem concerns the whole source.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.source, self.key, self.reason)
        }
    }
}

/// Every problem found while loading a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in the order they were found (never empty).
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn single(
        source: impl Into<String>,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            problems: vec![Problem {
                source: source.into(),
                key: key.into(),
                reason: reason.into(),
            }],
        }
    }
}

/// Loads the configuration rooted at `main` with this process's environment.
pub fn load(main: &Path) -> Result<Settings, ConfigError> {
    load_with_env(main, std::env::vars())
}

/// Loads the configuration rooted at `main`, taking `PALMGATE__…` overrides from `env`
/// (other variables are ignored).
pub fn load_with_env(
    main: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let main = std::path::absolute(main).unwrap_or_else(|_| main.to_path_buf());
    let files = layer_files(&main)?;

    // Each file on its own first: syntax, unknown keys and types name the file at fault.
    let mut problems = Vec::new();
    for file in &files {
        if let Err(mut file_problems) = check_file(file) {
            problems.append(&mut file_problems);
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }

    let env: HashMap<String, String> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(&format!("{ENV_PREFIX}__")))
        .collect();
    let mut builder = config::Config::builder().add_source(config::File::from_str(
        DEFAULTS_TOML,
        config::FileFormat::Toml,
    ));
    for file in &files {
        builder =
            builder.add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("card.issuer_keys")
            .with_list_parse_key("mqtt.operator_keys")
            .source(Some(env.into_iter().collect())),
    );
    let merged = builder
        .build()
        .map_err(|error| ConfigError::single(main.display().to_string(), "", error.to_string()))?;

    let origins = Origins {
        merged: &merged,
        main: main.display().to_string(),
        files: &files,
    };
    let raw: RawConfig = serde_path_to_error::deserialize(merged.clone()).map_err(|error| {
        let key = error.path().to_string();
        ConfigError::single(
            origins.source_of(&key),
            key,
            clean_serde_message(error.inner()),
        )
    })?;
    validate::validate(raw, &origins)
}

/// The main file and the `conf.d/*.toml` drop-ins beside it, in layering order.
fn layer_files(main: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    if !main.is_file() {
        return Err(ConfigError::single(
            main.display().to_string(),
            "",
            "cannot read the configuration file: it does not exist or is not a file",
        ));
    }
    let mut files = vec![main.to_path_buf()];
    let dropin_dir = main.parent().unwrap_or(Path::new("/")).join("conf.d");
    if dropin_dir.is_dir() {
        let entries = std::fs::read_dir(&dropin_dir).map_err(|error| {
            ConfigError::single(
                dropin_dir.display().to_string(),
                "",
                format!("cannot list: {error}"),
            )
        })?;
        let mut dropins: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
            .collect();
        dropins.sort();
        files.extend(dropins);
    }
    Ok(files)
}

/// Checks one file alone: readable, TOML, known keys, right types.
fn check_file(file: &Path) -> Result<(), Vec<Problem>> {
    let source = file.display().to_string();
    let problem = |key: String, reason: String| {
        vec![Problem {
            source: source.clone(),
            key,
            reason,
        }]
    };
    let text = files::read_bounded_to_string(file, files::MAX_CONFIG_FILE_BYTES)
        .map_err(|error| problem(String::new(), error.to_string()))?;
    let deserializer = toml::Deserializer::parse(&text)
        .map_err(|error| problem(String::new(), toml_syntax_message(&text, &error)))?;
    serde_path_to_error::deserialize::<_, RawConfig>(deserializer)
        .map(drop)
        .map_err(|error| {
            let key = error.path().to_string();
            problem(key, clean_serde_message(error.inner().message()))
        })?;
    // The TOML reader takes integers up to 2^64-1, the layer merge only signed 64-bit ones
    // (and would then fail without naming the key): name it here.
    let deserializer = toml::Deserializer::parse(&text)
        .map_err(|error| problem(String::new(), toml_syntax_message(&text, &error)))?;
    let value: serde_json::Value = serde::Deserialize::deserialize(deserializer)
        .map_err(|error| problem(String::new(), error.message().trim().to_string()))?;
    match integer_too_large(&value, "") {
        Some((key, number)) => Err(problem(
            key,
            format!("{number} is too large (at most {})", i64::MAX),
        )),
        None => Ok(()),
    }
}

/// The first integer above `i64::MAX` in `value`, with its dotted key.
fn integer_too_large(value: &serde_json::Value, key: &str) -> Option<(String, u64)> {
    match value {
        serde_json::Value::Number(number) => number
            .as_u64()
            .filter(|n| i64::try_from(*n).is_err())
            .map(|n| (key.to_string(), n)),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| integer_too_large(item, &format!("{key}[{index}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(name, item)| {
            let key = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
            integer_too_large(item, &key)
        }),
        _ => None,
    }
}

fn toml_syntax_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, str::len) + 1;
            format!("invalid TOML at line {line}, column {column}: {message}")
        }
        None => format!("invalid TOML: {message}"),
    }
}

/// serde's messages, shortened to what an installer needs.
fn clean_serde_message(message: impl fmt::Display) -> String {
    let message = message.to_string();
    let message = message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    // "unknown field `x`, expected one of `a`, `b`" -> keep the first part: the key names the field.
    match message.split_once(", expected one of") {
        Some((head, _)) if head.starts_with("unknown field") => "unknown key".to_string(),
        _ if message.starts_with("unknown field") => "unknown key".to_string(),
        _ => message,
    }
}

/// Finds which layer gave a key its value.
pub(crate) struct Origins<'a> {
    merged: &'a config::Config,
    /// Where a missing key should be added: the main file.
    pub(crate) main: String,
    /// The configuration files, as given.
    files: &'a [PathBuf],
}

impl Origins<'_> {
    /// The file (or other layer) that set `key`; the main file when no layer set it (that is where
    /// the installer adds it).
    pub(crate) fn source_of(&self, key: &str) -> String {
        let Some(value) = self.value_of(key) else {
            return self.main.clone();
        };
        match value.origin() {
            Some("the environment") => ENV_ORIGIN.to_string(),
            Some(origin) => self.file_named(origin),
            None => DEFAULTS_ORIGIN.to_string(),
        }
    }

    /// The config crate records file origins relative to the working directory; name the file
    /// as we were given it.
    fn file_named(&self, origin: &str) -> String {
        let cwd = std::env::current_dir().unwrap_or_default();
        let canonical = std::fs::canonicalize(cwd.join(origin)).ok();
        self.files
            .iter()
            .find(|file| canonical.is_some() && std::fs::canonicalize(file).ok() == canonical)
            .map_or_else(|| origin.to_string(), |file| file.display().to_string())
    }

    /// The merged value at a dotted key (`a.b`, `a.list[2]`), with its origin. (`Config::get`
    /// would deserialise the value and lose the origin; tables hand out the stored values.)
    fn value_of(&self, key: &str) -> Option<config::Value> {
        let (parent, last) = key.rsplit_once('.')?;
        let (name, index) = match last.split_once('[') {
            Some((name, rest)) => (name, Some(rest.strip_suffix(']')?.parse::<usize>().ok()?)),
            None => (last, None),
        };
        let value = self.merged.get_table(parent).ok()?.remove(name)?;
        match index {
            Some(index) => value.into_array().ok()?.into_iter().nth(index),
            None => Some(value),
        }
    }

    /// The directory relative paths set by `key` are resolved against: the directory of the file
    /// that set it, or the working directory for the environment.
    pub(crate) fn base_dir_of(&self, key: &str) -> PathBuf {
        let source = self.source_of(key);
        let path = Path::new(&source);
        if path.is_absolute() {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            std::env::current_dir().unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests;
