//! Durations are written in the config as integer milliseconds under keys ending in `_ms`.
//!
//! Integers avoid a unit-parsing mini-language ("1m30s") and make environment overrides trivial
//! (`RTMLIVE_TIMEOUTS__ICE_CONSENT_MS=30000`); the `_ms` suffix keeps the unit in the key name.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    // Config durations are far below u64::MAX milliseconds; saturate instead of failing.
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// `Option<Duration>` as optional integer milliseconds (absent key = `None`).
pub mod optional {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        u64::deserialize(d).map(|ms| Some(Duration::from_millis(ms)))
    }
}
