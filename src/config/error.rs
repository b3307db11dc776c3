//! Configuration errors, each with where the offending value came from.
//!
//! The message formats are part of the interface (documented in `docs/operations.md` and asserted
//! by `tests/config_errors.rs`): scripts and humans both read them.

use std::fmt;
use std::path::PathBuf;

/// A key in the configuration tree, e.g. `origins.upstreams[1].urls[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPath(pub Vec<Seg>);

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl KeyPath {
    /// Parses a dotted path of bare keys (`limits.max_sessions`); used for literals in the code.
    pub fn dotted(path: &str) -> Self {
        KeyPath(path.split('.').map(|k| Seg::Key(k.to_owned())).collect())
    }

    pub fn key(mut self, k: impl Into<String>) -> Self {
        self.0.push(Seg::Key(k.into()));
        self
    }

    pub fn index(mut self, i: usize) -> Self {
        self.0.push(Seg::Index(i));
        self
    }

    pub fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

fn is_bare(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare(k) {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A position in the config file (1-based line and column of the value).
    File {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    /// The file is in use, but the key is not in it: the default value applies.
    FileDefault { path: PathBuf },
    /// An `RTMLIVE_…` environment variable.
    Env { var: String },
    /// No config file: built-in defaults.
    Default,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, line, column } => {
                write!(f, "{}:{line}:{column}", path.display())
            }
            Location::FileDefault { path } => write!(f, "{}", path.display()),
            Location::Env { var } => write!(f, "environment variable {var}"),
            Location::Default => f.write_str("built-in defaults"),
        }
    }
}

/// How bad a finding is: errors stop the server, warnings are logged at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One validation finding, formatted as `LOCATION: KEY: PROBLEM; expected EXPECTED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub location: Location,
    pub key: KeyPath,
    /// What is wrong.
    pub problem: String,
    /// What would be accepted.
    pub expected: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        write!(
            f,
            "{}: {}: {}; expected {}",
            self.location, self.key, self.problem, self.expected
        )
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `PATH: cannot read config file: IO ERROR`
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax error, wrong type or unknown key: `LOCATION: MESSAGE`.
    #[error("{location}: {message}")]
    Parse { location: Location, message: String },
    /// One or more validation errors, one per line.
    #[error("{}", display_lines(.0))]
    Invalid(Vec<Problem>),
}

fn display_lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_path_display() {
        let k = KeyPath::dotted("origins.upstreams")
            .index(1)
            .key("urls")
            .index(0);
        assert_eq!(k.to_string(), "origins.upstreams[1].urls[0]");
        let k = KeyPath::dotted("auth.ingest_keys").key("live/demo");
        assert_eq!(k.to_string(), "auth.ingest_keys.\"live/demo\"");
    }

    #[test]
    fn line_column_counts_from_one() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_column(t, 0), (1, 1));
        assert_eq!(line_column(t, 6), (2, 1));
        assert_eq!(line_column(t, t.find('=').unwrap()), (1, 3));
        assert_eq!(line_column(t, t.rfind('2').unwrap()), (2, 6));
        assert_eq!(line_column(t, 999), (3, 1));
    }
}
