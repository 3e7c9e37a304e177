//! Configuration errors that name the file, the key and the reason.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration the server refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file (or `<defaults>`).
    pub file: PathBuf,
    /// Dotted key path, e.g. `component[0].server`; empty for whole-file errors.
    pub key: String,
    /// What is wrong and, where useful, what to write instead.
    pub reason: String,
    /// The further errors found after this one, each on its own line.
    pub more: Vec<ConfigError>,
}

impl ConfigError {
    /// This error with `more` after it.
    pub fn with_more(mut self, more: Vec<ConfigError>) -> ConfigError {
        self.more = more;
        self
    }

    /// How many errors this reports.
    pub fn count(&self) -> usize {
        1 + self.more.len()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.reason)?;
        } else {
            write!(
                f,
                "{}: key `{}`: {}",
                self.file.display(),
                self.key,
                self.reason
            )?;
        }
        for e in &self.more {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Where a piece of configuration came from: for errors and for resolving
/// relative paths against the config file's folder.
#[derive(Debug, Clone)]
pub struct ConfigContext {
    file: PathBuf,
    base_dir: PathBuf,
}

impl ConfigContext {
    /// Context for a config file; relative paths resolve against its folder.
    pub fn for_file(file: &Path) -> Self {
        let base_dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        ConfigContext {
            file: file.to_path_buf(),
            base_dir,
        }
    }

    /// Context for the embedded defaults; relative paths resolve against the
    /// working directory.
    pub fn defaults() -> Self {
        ConfigContext {
            file: PathBuf::from("<defaults>"),
            base_dir: PathBuf::from("."),
        }
    }

    /// The file this context describes.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// An error at `key`.
    pub fn error(&self, key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            key: key.into(),
            reason: reason.into(),
            more: Vec::new(),
        }
    }

    /// `p` resolved against the config file's folder.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// A path that must name an existing, readable file.
    pub fn existing_file(&self, key: &str, p: &Path) -> Result<PathBuf, ConfigError> {
        let full = self.path(p);
        match std::fs::metadata(&full) {
            Ok(m) if m.is_file() => Ok(full),
            Ok(_) => Err(self.error(key, format!("{} is not a file", full.display()))),
            Err(e) => Err(self.error(key, format!("cannot read {}: {e}", full.display()))),
        }
    }

    /// Deserializes a provider's TOML table into its raw settings struct,
    /// turning serde's message into an error at `key`.
    pub fn deserialize<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        table: toml::Table,
    ) -> Result<T, ConfigError> {
        T::deserialize(toml::Value::Table(table))
            .map_err(|e| self.error(key, super::suggest::with_suggestion(e.message().trim())))
    }
}

/// A secret from the configuration: never printed, compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}
