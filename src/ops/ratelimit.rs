//! Rate-limited logging for per-packet problems.
//!
//! A malformed packet flood must not turn into a log flood (disk, CPU, and the log pipeline are
//! side work that must not take the media path down). [`LogLimiter::check`] allows at most
//! `limit` messages per key per interval and counts the rest; the first message of the next
//! interval reports how many were suppressed. Keys hash into a fixed table of slots (collisions
//! share a budget, which only makes the limiter stricter); the check is a few relaxed atomics,
//! no lock, no allocation. Time is passed in (`now`), as everywhere in protocol code.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const SLOTS: usize = 256;

struct Slot {
    /// Interval number (since `epoch`) this slot's count belongs to.
    window: AtomicU64,
    count: AtomicU64,
    suppressed: AtomicU64,
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Log it; `suppressed` messages of this key were dropped since the last one logged.
    Log { suppressed: u64 },
    /// Drop it (counted).
    Suppress,
}

/// At most `limit` messages per key per `interval`.
pub struct LogLimiter {
    epoch: Instant,
    interval_ms: u64,
    limit: u64,
    slots: Box<[Slot]>,
    suppressed_total: AtomicU64,
}

impl LogLimiter {
    pub fn new(limit: u32, interval: Duration, epoch: Instant) -> Self {
        LogLimiter {
            epoch,
            interval_ms: u64::try_from(interval.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            limit: u64::from(limit),
            slots: (0..SLOTS)
                .map(|_| Slot {
                    window: AtomicU64::new(0),
                    count: AtomicU64::new(0),
                    suppressed: AtomicU64::new(0),
                })
                .collect(),
            suppressed_total: AtomicU64::new(0),
        }
    }

    /// A limiter with `log.per_packet_limit` per `log.per_packet_interval_ms`.
    pub fn from_config(log: &crate::config::LogConfig, epoch: Instant) -> Self {
        Self::new(log.per_packet_limit, log.per_packet_interval, epoch)
    }

    /// Decides whether a message with `key` may be logged at `now`.
    pub fn check(&self, key: &str, now: Instant) -> Permit {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let Some(slot) = self.slots.get((h.finish() as usize) % SLOTS) else {
            return Permit::Suppress;
        };
        let elapsed = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        // +1 so that window 0 means "never used".
        let window = elapsed / self.interval_ms + 1;
        let seen = slot.window.load(Relaxed);
        if seen != window
            && slot
                .window
                .compare_exchange(seen, window, Relaxed, Relaxed)
                .is_ok()
        {
            slot.count.store(0, Relaxed);
        }
        if slot.count.fetch_add(1, Relaxed) < self.limit {
            Permit::Log {
                suppressed: slot.suppressed.swap(0, Relaxed),
            }
        } else {
            slot.suppressed.fetch_add(1, Relaxed);
            self.suppressed_total.fetch_add(1, Relaxed);
            Permit::Suppress
        }
    }

    /// Messages suppressed since creation (all keys).
    pub fn suppressed_total(&self) -> u64 {
        self.suppressed_total.load(Relaxed)
    }
}

/// Logs through `tracing` at `$level` if `$limiter` permits `$key` at `$now`, adding a
/// `suppressed` field when earlier messages were dropped.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use rtmlive::ops::ratelimit::LogLimiter;
/// let limiter = LogLimiter::new(10, Duration::from_secs(10), Instant::now());
/// rtmlive::rate_limited!(limiter, "srtp.unprotect", Instant::now(), tracing::Level::WARN,
///     peer = "192.0.2.1:5000", "SRTP authentication failed");
/// ```
#[macro_export]
macro_rules! rate_limited {
    ($limiter:expr, $key:expr, $now:expr, $level:expr, $($arg:tt)+) => {
        if let $crate::ops::ratelimit::Permit::Log { suppressed } = $limiter.check($key, $now) {
            if suppressed > 0 {
                ::tracing::event!($level, suppressed, $($arg)+);
            } else {
                ::tracing::event!($level, $($arg)+);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_interval_and_reports_suppressed() {
        let t0 = Instant::now();
        let l = LogLimiter::new(2, Duration::from_secs(1), t0);
        assert_eq!(l.check("a", t0), Permit::Log { suppressed: 0 });
        assert_eq!(l.check("a", t0), Permit::Log { suppressed: 0 });
        assert_eq!(l.check("a", t0), Permit::Suppress);
        assert_eq!(
            l.check("a", t0 + Duration::from_millis(999)),
            Permit::Suppress
        );
        let next = t0 + Duration::from_millis(1000);
        assert_eq!(l.check("a", next), Permit::Log { suppressed: 2 });
        assert_eq!(l.suppressed_total(), 2);
    }

    #[test]
    fn keys_have_separate_budgets() {
        let t0 = Instant::now();
        let l = LogLimiter::new(1, Duration::from_secs(1), t0);
        // Find a second key that lands in another slot (the table is a hash of the key).
        assert_eq!(l.check("dtls", t0), Permit::Log { suppressed: 0 });
        let other = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                k.hash(&mut h);
                let mut h2 = std::collections::hash_map::DefaultHasher::new();
                "dtls".hash(&mut h2);
                h.finish() as usize % SLOTS != h2.finish() as usize % SLOTS
            })
            .unwrap();
        assert_eq!(l.check(&other, t0), Permit::Log { suppressed: 0 });
        assert_eq!(l.check("dtls", t0), Permit::Suppress);
    }

    #[test]
    fn macro_compiles_and_suppresses() {
        let t0 = Instant::now();
        let l = LogLimiter::new(1, Duration::from_secs(1), t0);
        for _ in 0..3 {
            crate::rate_limited!(l, "x", t0, tracing::Level::WARN, n = 1, "bad packet");
        }
        assert_eq!(l.suppressed_total(), 2);
    }
}
