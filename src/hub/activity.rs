//! A process-wide count of hub wake-ups: the cheapest possible "has anything new arrived?"
//! for pollers that would otherwise visit every subscription on every tick.
//!
//! A shard worker ticks every couple of milliseconds, but a 2 Mbit/s stream pushes only about
//! 80 batches a second (one per video frame, one per audio packet). Visiting each viewer's
//! subscription on every tick to find nothing costs a few cache misses per viewer per tick,
//! which at 1,000 viewers was a fifth of the shard's CPU. With this counter a shard skips the
//! visit when no stream anywhere in the process has been woken since its last pass.
//!
//! One global counter rather than one per stream: it is a hint, so sharing it can only cause
//! a pass that finds nothing (as every pass did before), never a missed packet. The counter is
//! bumped after the ring's head is published, so a poller that sees a new value also sees the
//! packets behind it, and one that sees the old value will see the new one on its next pass.

use std::sync::atomic::{AtomicU64, Ordering};

static EPOCH: AtomicU64 = AtomicU64::new(0);

/// The current value: changes whenever any stream in the process got packets or was closed.
/// Meant to be handed to the transport as a `fn() -> u64` (see
/// [`crate::transport::socket::DriverConfig::media_epoch`]).
pub fn media_epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

/// Called by a stream after it made new items (or its end) visible to subscribers.
pub(crate) fn bump() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_changes_the_epoch() {
        let before = media_epoch();
        bump();
        assert_ne!(media_epoch(), before);
    }
}
