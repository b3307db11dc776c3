//! A shard's session deadlines, so that finding the due sessions does not walk all of them.
//!
//! Every session has at most one deadline at a time (its [`ViewerSession::poll_timeout`]: ICE
//! consent, DTLS retransmission, the next sender report). A shard with thousands of sessions
//! wakes every couple of milliseconds, and asking each session for its deadline on every wake
//! costs far more than the media it sends (it was the largest item in the load profile, see
//! `docs/benchmarks.md`). So the shard asks a session only when something happened to it (a
//! datagram, a timeout, a close) and files the answer here.
//!
//! A binary heap with lazy deletion: re-arming a session pushes a new entry and leaves the old
//! one behind; an entry is live only while it matches what the shard recorded for that slot
//! (same generation, same deadline), so stale entries are skipped when they surface. Sessions
//! that push their deadline back often (consent refreshes move it by seconds) would let stale
//! entries pile up, so the heap is rebuilt from the live deadlines when it grows past twice
//! their number.
//!
//! [`ViewerSession::poll_timeout`]: super::session::ViewerSession::poll_timeout

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// One filed deadline: when, and which session (slot and its generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    pub at: Instant,
    pub slot: u32,
    pub generation: u32,
}

/// The deadline queue of one shard.
#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<Deadline>>,
}

/// Stale entries tolerated before a rebuild, beyond twice the live ones.
const SLACK: usize = 64;

impl TimerQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Files `d`. The caller records `d.at` for `d.slot` so that [`Self::pop_due`]'s caller can
    /// tell this entry from older ones for the same slot.
    pub fn push(&mut self, d: Deadline) {
        self.heap.push(Reverse(d));
    }

    /// The earliest filed deadline, live or stale. A stale one only makes the worker wake early
    /// once, and [`Self::pop_due`] then discards it.
    pub fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(d)| d.at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Deadline> {
        match self.heap.peek() {
            Some(Reverse(d)) if d.at <= now => self.heap.pop().map(|Reverse(d)| d),
            _ => None,
        }
    }

    /// Entries filed, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Whether enough stale entries accumulated that [`Self::rebuild`] pays off.
    pub fn needs_rebuild(&self, live: usize) -> bool {
        self.heap.len() > live.saturating_mul(2) + SLACK
    }

    /// Replaces the contents with `live` (one entry per armed session): O(n), and keeps the heap
    /// within a constant factor of the session count however often deadlines move.
    pub fn rebuild(&mut self, live: impl IntoIterator<Item = Deadline>) {
        let mut v = std::mem::take(&mut self.heap).into_vec();
        v.clear();
        v.extend(live.into_iter().map(Reverse));
        self.heap = BinaryHeap::from(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn d(t0: Instant, ms: u64, slot: u32) -> Deadline {
        Deadline {
            at: t0 + Duration::from_millis(ms),
            slot,
            generation: 0,
        }
    }

    #[test]
    fn pops_due_entries_in_deadline_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.push(d(t0, 30, 3));
        q.push(d(t0, 10, 1));
        q.push(d(t0, 20, 2));
        assert_eq!(q.peek(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(q.pop_due(t0 + Duration::from_millis(5)), None);
        let now = t0 + Duration::from_millis(25);
        assert_eq!(q.pop_due(now).map(|d| d.slot), Some(1));
        assert_eq!(q.pop_due(now).map(|d| d.slot), Some(2));
        assert_eq!(q.pop_due(now), None);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn equal_deadlines_all_pop() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        for slot in 0..5 {
            q.push(d(t0, 10, slot));
        }
        let mut slots: Vec<u32> = std::iter::from_fn(|| q.pop_due(t0 + Duration::from_secs(1)))
            .map(|d| d.slot)
            .collect();
        slots.sort_unstable();
        assert_eq!(slots, [0, 1, 2, 3, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn rebuild_keeps_only_live_entries() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        for i in 0..200 {
            q.push(d(t0, i, 7));
        }
        assert!(q.needs_rebuild(1));
        q.rebuild([d(t0, 500, 7)]);
        assert_eq!(q.len(), 1);
        assert!(!q.needs_rebuild(1));
        assert_eq!(q.peek(), Some(t0 + Duration::from_millis(500)));
    }
}
