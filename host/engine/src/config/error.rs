use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration problem, located as precisely as the source allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the YAML parser knew them.
    pub position: Option<(usize, usize)>,
    /// Dotted path of the offending field, e.g. `scenarios.browse.vus`.
    pub field: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &Path, field: Option<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            position: None,
            field,
            message: message.into(),
        }
    }

    pub(super) fn from_serde(
        file: &Path,
        err: serde_path_to_error::Error<serde_yaml::Error>,
    ) -> Self {
        // Syntax errors leave `?` for the segments the parser never reached.
        let mut path = err.path().to_string();
        while let Some(stripped) = path.strip_suffix(".?") {
            path.truncate(stripped.len());
        }
        if path == "?" {
            path.clear();
        }
        let inner = err.into_inner();
        let position = inner.location().map(|l| (l.line(), l.column()));
        // serde_yaml prefixes its own "path: " and appends "at line X column Y";
        // both are reported separately, so keep only the message itself.
        let mut message = inner.to_string();
        if let Some(idx) = message.find(" at line ") {
            message.truncate(idx);
        }
        if let Some((prefix, rest)) = message.split_once(": ")
            && !prefix.contains(' ')
            && path.starts_with(prefix)
        {
            message = rest.to_owned();
        }
        let field = (path != "." && !path.is_empty()).then_some(path);
        ConfigError {
            file: file.to_owned(),
            position,
            field,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}
