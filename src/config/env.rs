//! Environment overrides for containers: `RTMLIVE_<SECTION>__<KEY>=value`.
//!
//! The part after `RTMLIVE_` is split on double underscores into a key path and lower-cased:
//! `RTMLIVE_LISTEN__MEDIA__BIND` sets `listen.media.bind`. Single underscores stay inside a key
//! (`RTMLIVE_LIMITS__MAX_SESSIONS`). Variables without `__` (e.g. `RTMLIVE_CONFIG`) are not
//! overrides. The value is read as a TOML literal (`8000`, `true`, `["a:1", "b:2"]`,
//! `[{app="live", urls=["http://o/{stream}.flv"]}]`); if it is not a valid literal, or the literal
//! does not fit the key's type, the raw text is used as a string.

use super::error::{KeyPath, Seg};

/// The prefix of every override variable.
pub const ENV_PREFIX: &str = "RTMLIVE_";
/// The separator between key path segments.
pub const ENV_SEPARATOR: &str = "__";

/// One `RTMLIVE_…__…` variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub var: String,
    pub key: KeyPath,
    pub raw: String,
}

/// Picks the override variables from `vars`, sorted by name so the result does not depend on the
/// environment's order. Returns the names of malformed ones (an empty segment) as errors.
pub fn overrides(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Override>, String> {
    let mut out = Vec::new();
    for (var, raw) in vars {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains(ENV_SEPARATOR) {
            continue;
        }
        let segs: Vec<String> = rest
            .split(ENV_SEPARATOR)
            .map(str::to_ascii_lowercase)
            .collect();
        if segs.iter().any(String::is_empty) {
            return Err(var);
        }
        out.push(Override {
            key: KeyPath(segs.into_iter().map(Seg::Key).collect()),
            var,
            raw,
        });
    }
    out.sort_by(|a, b| a.var.cmp(&b.var));
    Ok(out)
}

/// The value as a TOML literal, or `None` when it is not one.
pub fn literal(raw: &str) -> Option<toml::Value> {
    let doc = format!("v = {raw}");
    let mut table: toml::Table = toml::from_str(&doc).ok()?;
    table.remove("v")
}

/// Sets `key` in `root`, creating intermediate tables. Fails when an intermediate value exists
/// but is not a table.
pub fn set(root: &mut toml::Table, key: &KeyPath, value: toml::Value) -> Result<(), String> {
    let mut names = Vec::with_capacity(key.0.len());
    for seg in &key.0 {
        match seg {
            Seg::Key(k) => names.push(k.as_str()),
            Seg::Index(_) => return Err(format!("{key} indexes an array")),
        }
    }
    let Some((last, parents)) = names.split_last() else {
        return Err("empty key".to_owned());
    };
    let mut table = root;
    let mut walked = KeyPath::default();
    for name in parents {
        walked = walked.key(*name);
        let entry = table
            .entry((*name).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("`{walked}` is not a table")),
        };
    }
    table.insert((*last).to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn names_map_to_key_paths() {
        let o = overrides(vars(&[
            ("RTMLIVE_LIMITS__MAX_SESSIONS", "5"),
            ("RTMLIVE_CONFIG", "/x"),
            ("PATH", "/bin"),
            ("RTMLIVE_LISTEN__MEDIA__BIND", "0.0.0.0:1"),
        ]))
        .unwrap();
        let keys: Vec<String> = o.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(keys, ["limits.max_sessions", "listen.media.bind"]);
        assert_eq!(
            overrides(vars(&[("RTMLIVE_A____B", "1")])),
            Err("RTMLIVE_A____B".into())
        );
    }

    #[test]
    fn literals_and_strings() {
        assert_eq!(literal("8000"), Some(toml::Value::Integer(8000)));
        assert_eq!(literal("true"), Some(toml::Value::Boolean(true)));
        assert_eq!(literal("0.0.0.0:8000"), None);
        assert_eq!(literal("\"x\""), Some(toml::Value::String("x".into())));
        assert!(literal("[\"a\", \"b\"]").unwrap().is_array());
    }

    #[test]
    fn set_creates_tables_and_refuses_scalars() {
        let mut t = toml::Table::new();
        set(&mut t, &KeyPath::dotted("a.b.c"), toml::Value::Integer(1)).unwrap();
        assert_eq!(t["a"]["b"]["c"].as_integer(), Some(1));
        let err = set(&mut t, &KeyPath::dotted("a.b.c.d"), toml::Value::Integer(1)).unwrap_err();
        assert_eq!(err, "`a.b.c` is not a table");
    }
}
