//! Bounds of the per-stream caches.
//!
//! Two bounds exist because they answer different questions. The **GOP cache** bound says how
//! much a late joiner may be handed at once (and so how long its first burst is); the **ring**
//! bound says how much history the stream keeps for retransmission and for subscribers that
//! fall behind. The ring must be able to hold the current GOP *and* the previous one (a NACK
//! for the tail of the previous GOP arrives after the next keyframe), so [`HubConfig::validate`]
//! insists that each ring bound is at least twice the matching GOP bound.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Bounds of one ring (packets or frames): whichever is reached first evicts the oldest items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RingLimits {
    /// Hard cap on the number of items (bounds the slot memory even for tiny items).
    pub max_items: usize,
    /// Sum of item sizes (RTP packet bytes, or frame payload bytes).
    pub max_bytes: usize,
    /// Time span between the oldest and the newest item (by DTS, milliseconds).
    pub max_duration_ms: u64,
}

/// Bounds of the GOP cache: the span from the newest keyframe to the newest item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GopLimits {
    pub max_bytes: usize,
    pub max_duration_ms: u64,
}

/// Configuration of every stream in a [`crate::hub::Hub`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Retransmission ring of RTP packets (also what subscribers read from).
    pub packet_ring: RingLimits,
    /// GOP cache bound of the packet ring.
    pub packet_gop: GopLimits,
    /// Ring of frames for HTTP-FLV out and cascading.
    pub frame_ring: RingLimits,
    /// GOP cache bound of the frame ring.
    pub frame_gop: GopLimits,
    /// A subscriber more than this far (in DTS milliseconds) behind the newest item is jumped
    /// to the newest keyframe even though its backlog is still in the ring. `None`: only a
    /// subscriber whose position was evicted is jumped (pure no-drop: serve the backlog).
    pub max_lag_ms: Option<u64>,
    /// How long a stream with no subscriber at all stays in the hub before
    /// [`crate::hub::Hub::sweep_idle`] removes it.
    #[serde(with = "millis")]
    pub linger: Duration,
}

impl Default for RingLimits {
    fn default() -> Self {
        // 2 GOPs of an 8 Mbps stream with 10 s GOPs at most; typical streams use far less and
        // the ring only allocates what it holds.
        RingLimits {
            max_items: 65_536,
            max_bytes: 24 << 20,
            max_duration_ms: 20_000,
        }
    }
}

impl Default for GopLimits {
    fn default() -> Self {
        GopLimits {
            max_bytes: 12 << 20,
            max_duration_ms: 10_000,
        }
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            packet_ring: RingLimits::default(),
            packet_gop: GopLimits::default(),
            frame_ring: RingLimits {
                max_items: 4_096,
                ..RingLimits::default()
            },
            frame_gop: GopLimits::default(),
            max_lag_ms: None,
            linger: Duration::from_secs(10),
        }
    }
}

/// A configuration that cannot give the guarantees the hub documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubConfigError {
    #[error("{ring} ring: every bound must be non-zero")]
    ZeroBound { ring: &'static str },
    #[error("{ring} ring: max_bytes {ring_bytes} is less than twice the GOP max_bytes {gop_bytes}")]
    RingBytesBelowTwoGops {
        ring: &'static str,
        ring_bytes: usize,
        gop_bytes: usize,
    },
    #[error(
        "{ring} ring: max_duration_ms {ring_ms} is less than twice the GOP max_duration_ms {gop_ms}"
    )]
    RingDurationBelowTwoGops {
        ring: &'static str,
        ring_ms: u64,
        gop_ms: u64,
    },
}

impl HubConfig {
    /// Checks that each ring can hold the current and the previous GOP at their bounds.
    pub fn validate(&self) -> Result<(), HubConfigError> {
        check("packet", &self.packet_ring, &self.packet_gop)?;
        check("frame", &self.frame_ring, &self.frame_gop)
    }
}

fn check(ring: &'static str, r: &RingLimits, g: &GopLimits) -> Result<(), HubConfigError> {
    if r.max_items == 0
        || r.max_bytes == 0
        || r.max_duration_ms == 0
        || g.max_bytes == 0
        || g.max_duration_ms == 0
    {
        return Err(HubConfigError::ZeroBound { ring });
    }
    if r.max_bytes < g.max_bytes.saturating_mul(2) {
        return Err(HubConfigError::RingBytesBelowTwoGops {
            ring,
            ring_bytes: r.max_bytes,
            gop_bytes: g.max_bytes,
        });
    }
    if r.max_duration_ms < g.max_duration_ms.saturating_mul(2) {
        return Err(HubConfigError::RingDurationBelowTwoGops {
            ring,
            ring_ms: r.max_duration_ms,
            gop_ms: g.max_duration_ms,
        });
    }
    Ok(())
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        HubConfig::default().validate().unwrap();
    }

    #[test]
    fn ring_must_hold_two_gops() {
        let mut c = HubConfig::default();
        c.packet_ring.max_bytes = c.packet_gop.max_bytes * 2 - 1;
        assert!(matches!(
            c.validate(),
            Err(HubConfigError::RingBytesBelowTwoGops { ring: "packet", .. })
        ));
        let mut c = HubConfig::default();
        c.frame_ring.max_duration_ms = 1;
        assert!(matches!(
            c.validate(),
            Err(HubConfigError::RingDurationBelowTwoGops { ring: "frame", .. })
        ));
        let mut c = HubConfig::default();
        c.packet_ring.max_items = 0;
        assert!(matches!(
            c.validate(),
            Err(HubConfigError::ZeroBound { .. })
        ));
    }

    #[test]
    fn toml_round_trip() {
        let c = HubConfig::default();
        let s = toml::to_string(&c).unwrap();
        let back: HubConfig = toml::from_str(&s).unwrap();
        assert_eq!(back, c);
    }
}
