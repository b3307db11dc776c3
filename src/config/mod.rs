//! Configuration: one TOML file, environment overrides, validation with located messages.
//!
//! Loading order: built-in defaults → the file (if any) → `RTMLIVE_<SECTION>__<KEY>` variables
//! → validation. Every problem names where the value came from (`file:line:column`, or the
//! environment variable), what is wrong and what is expected. The reference for every key is
//! `docs/operations.md`.

mod duration;
pub mod env;
pub mod error;
pub mod model;
pub mod validate;

use std::ops::Range;
use std::path::{Path, PathBuf};

pub use error::{ConfigError, KeyPath, Location, Problem, Seg, Severity};
pub use model::*;

use toml::de::{DeTable, DeValue};

/// A validated configuration and its warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Non-fatal findings (e.g. open mode, no public address); log them at start-up.
    pub warnings: Vec<Problem>,
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
}

/// Loads `path` (or the standalone defaults when `None`), applies the process environment and
/// validates.
pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
    load_with_env(path, std::env::vars())
}

/// [`load`] with an explicit environment (tests, embedding).
pub fn load_with_env(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    match path {
        None => build(None, env),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_owned(),
                source,
            })?;
            build(Some((p, &text)), env)
        }
    }
}

/// Parses `text` as if it were the file `path` (no I/O except checking `demo.fixture`).
pub fn from_toml_str(
    path: &Path,
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    build(Some((path, text)), env)
}

fn build(
    file: Option<(&Path, &str)>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let mut config = match file {
        None => Config::default(),
        Some((path, text)) => toml::from_str::<Config>(text).map_err(|e| {
            let message = e.message().trim_end();
            let Some(span) = e.span() else {
                return ConfigError::Parse {
                    location: Location::FileDefault {
                        path: path.to_owned(),
                    },
                    message: message.to_owned(),
                };
            };
            // Name the key when the document parses (type errors, unknown keys).
            let key = DeTable::parse(text)
                .ok()
                .and_then(|d| key_at(d.get_ref(), span.start, &KeyPath::default()));
            ConfigError::Parse {
                location: file_location(path, text, span),
                message: match key {
                    Some(k) => format!("{k}: {message}"),
                    None => message.to_owned(),
                },
            }
        })?,
    };

    let overrides = env::overrides(env).map_err(|var| ConfigError::Parse {
        location: Location::Env { var },
        message: "empty key segment; expected RTMLIVE_<SECTION>__<KEY>".to_owned(),
    })?;
    if !overrides.is_empty() {
        config = apply_overrides(&config, &overrides)?;
    }

    let base_dir = file.and_then(|(p, _)| p.parent()).map(Path::to_path_buf);
    if let (Some(dir), Some(fixture)) = (&base_dir, &mut config.demo.fixture)
        && fixture.is_relative()
        && !dir.as_os_str().is_empty()
    {
        *fixture = dir.join(&*fixture);
    }

    let doc = file.and_then(|(_, text)| DeTable::parse(text).ok());
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for f in validate::check(&config, None) {
        let mut location = locate(&f.key, file, doc.as_ref(), &overrides);
        if let (Location::FileDefault { .. }, Some(related)) = (&location, &f.related) {
            // The key itself was not written; point at the one that was (e.g. the other half
            // of an ordering rule).
            let other = locate(related, file, doc.as_ref(), &overrides);
            if !matches!(other, Location::FileDefault { .. }) {
                location = other;
            }
        }
        let problem = Problem {
            severity: f.severity,
            location,
            key: f.key,
            problem: f.problem,
            expected: f.expected,
        };
        match problem.severity {
            Severity::Error => errors.push(problem),
            Severity::Warning => warnings.push(problem),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigError::Invalid(errors));
    }
    Ok(Loaded {
        config,
        warnings,
        file: file.map(|(p, _)| p.to_owned()),
    })
}

fn file_location(path: &Path, text: &str, span: Range<usize>) -> Location {
    let (line, column) = error::line_column(text, span.start);
    Location::File {
        path: path.to_owned(),
        line,
        column,
    }
}

/// Applies overrides one at a time, so a bad value is blamed on its own variable.
fn apply_overrides(config: &Config, overrides: &[env::Override]) -> Result<Config, ConfigError> {
    let env_error = |o: &env::Override, message: String| ConfigError::Parse {
        location: Location::Env { var: o.var.clone() },
        message: format!("{}: {message}", o.key),
    };
    let mut table = match toml::Value::try_from(config) {
        Ok(toml::Value::Table(t)) => t,
        // The model always serializes to a table; anything else is a programming error.
        other => {
            return Err(ConfigError::Parse {
                location: Location::Default,
                message: format!("cannot apply environment overrides: {other:?}"),
            });
        }
    };
    let mut result = config.clone();
    for o in overrides {
        let typed = env::literal(&o.raw);
        let mut attempts = Vec::with_capacity(2);
        if let Some(v) = typed.clone() {
            attempts.push(v);
        }
        if !matches!(typed, Some(toml::Value::String(_))) {
            attempts.push(toml::Value::String(o.raw.clone()));
        }
        let mut first_error = None;
        let mut applied = false;
        for value in attempts {
            let mut candidate = table.clone();
            env::set(&mut candidate, &o.key, value).map_err(|m| env_error(o, m))?;
            match toml::Value::Table(candidate.clone()).try_into::<Config>() {
                Ok(c) => {
                    table = candidate;
                    result = c;
                    applied = true;
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| e.message().trim_end().to_owned());
                }
            }
        }
        if !applied {
            return Err(env_error(o, first_error.unwrap_or_default()));
        }
    }
    Ok(result)
}

fn locate(
    key: &KeyPath,
    file: Option<(&Path, &str)>,
    doc: Option<&toml::Spanned<DeTable<'_>>>,
    overrides: &[env::Override],
) -> Location {
    if let Some(o) = overrides.iter().rev().find(|o| key.starts_with(&o.key)) {
        return Location::Env { var: o.var.clone() };
    }
    let Some((path, text)) = file else {
        return Location::Default;
    };
    match doc.and_then(|d| span_of(d.get_ref(), key)) {
        Some(span) => file_location(path, text, span),
        None => Location::FileDefault {
            path: path.to_owned(),
        },
    }
}

/// The span of the value at `key` in a parsed document.
fn span_of(root: &DeTable<'_>, key: &KeyPath) -> Option<Range<usize>> {
    let mut segs = key.0.iter();
    let Some(Seg::Key(first)) = segs.next() else {
        return None;
    };
    let mut value = root.get(first.as_str())?;
    for seg in segs {
        value = match (seg, value.get_ref()) {
            (Seg::Key(k), DeValue::Table(t)) => t.get(k.as_str())?,
            (Seg::Index(i), DeValue::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(value.span())
}

/// The key whose name or scalar value covers byte `offset`.
fn key_at(table: &DeTable<'_>, offset: usize, base: &KeyPath) -> Option<KeyPath> {
    for (k, v) in table.iter() {
        let path = base.clone().key(k.get_ref().to_string());
        if let Some(found) = value_key_at(v, offset, &path) {
            return Some(found);
        }
        if k.span().contains(&offset) {
            return Some(path);
        }
    }
    None
}

fn value_key_at(v: &toml::Spanned<DeValue<'_>>, offset: usize, path: &KeyPath) -> Option<KeyPath> {
    match v.get_ref() {
        DeValue::Table(t) => key_at(t, offset, path),
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, item)| value_key_at(item, offset, &path.clone().index(i)))
            .or_else(|| v.span().contains(&offset).then(|| path.clone())),
        _ => v.span().contains(&offset).then(|| path.clone()),
    }
}
