//! NACK scheduling: which missing packets to ask for, and when to ask again.
//!
//! A no-drop player never gives up on a packet, so the scheduler has no "lost for good" state:
//! it re-NACKs every retry interval (about one RTT, so that a retransmission that is merely in
//! flight is not requested twice) until the packet arrives or the session re-pulls.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Lower bound of the retry interval: below this the server would see duplicate requests for
/// retransmissions that are still on the wire even on loopback.
pub const MIN_RETRY: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy)]
struct Missing {
    /// When this packet was first found missing.
    since: Instant,
    /// When it is next due for a NACK.
    due: Instant,
    /// NACKs sent for it so far.
    sent: u32,
}

/// Missing packets of one RTP stream (one SSRC), keyed by extended sequence number.
#[derive(Debug, Default)]
pub struct NackScheduler {
    missing: BTreeMap<u64, Missing>,
    /// Current retry interval (smoothed RTT, clamped to [`MIN_RETRY`]).
    retry: Duration,
    nacks_sent: u64,
    first_nacks: u64,
    recovered: u64,
    recovery_time_total: Duration,
}

impl NackScheduler {
    /// A scheduler that re-NACKs every `initial_rtt` until an RTT measurement replaces it.
    pub fn new(initial_rtt: Duration) -> Self {
        Self {
            retry: initial_rtt.max(MIN_RETRY),
            ..Self::default()
        }
    }

    /// Feed an RTT estimate (from RTCP or the STUN/DTLS round trips).
    pub fn set_rtt(&mut self, rtt: Duration) {
        // Retry a little after one RTT: the retransmission needs the NACK's and its own trip.
        self.retry = (rtt + rtt / 4).max(MIN_RETRY);
    }

    /// Current retry interval.
    pub fn retry_interval(&self) -> Duration {
        self.retry
    }

    /// Marks `seq` missing (idempotent). It is due for a NACK at once: a gap behind a later
    /// packet has proven it was sent, so waiting cannot help.
    pub fn mark_missing(&mut self, seq: u64, now: Instant) {
        self.expect(seq, now, now);
    }

    /// Expects `seq` by `due` (a frame's tail named by frame-seq-range, normally a few
    /// milliseconds behind in the same burst). If it has not arrived by then it is NACKed; if it
    /// arrives first, nothing was missing. An earlier `due` for the same packet wins.
    pub fn expect(&mut self, seq: u64, now: Instant, due: Instant) {
        let m = self.missing.entry(seq).or_insert(Missing {
            since: now,
            due,
            sent: 0,
        });
        if m.sent == 0 && due < m.due {
            m.due = due;
        }
    }

    /// Whether `seq` is currently awaited.
    pub fn is_missing(&self, seq: u64) -> bool {
        self.missing.contains_key(&seq)
    }

    /// A packet arrived. Returns `true` when it had been NACKed (a recovery).
    pub fn received(&mut self, seq: u64, now: Instant) -> bool {
        match self.missing.remove(&seq) {
            Some(m) if m.sent > 0 => {
                self.recovered += 1;
                self.recovery_time_total += now.saturating_duration_since(m.since);
                true
            }
            _ => false,
        }
    }

    /// Forget everything below `seq` (the session jumped, e.g. after a re-pull).
    pub fn forget_below(&mut self, seq: u64) {
        self.missing = self.missing.split_off(&seq);
    }

    /// Sequence numbers due for a NACK at `now`; schedules each one's next retry.
    pub fn poll(&mut self, now: Instant) -> Vec<u64> {
        let mut due = Vec::new();
        for (seq, m) in self.missing.iter_mut() {
            if m.due <= now {
                if m.sent == 0 {
                    self.first_nacks += 1;
                }
                due.push(*seq);
                m.sent += 1;
                m.due = now + self.retry;
            }
        }
        self.nacks_sent += due.len() as u64;
        due
    }

    /// When [`Self::poll`] next has something to return.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.missing.values().map(|m| m.due).min()
    }

    /// The packets currently awaited (extended sequence numbers, ascending).
    pub fn missing(&self) -> Vec<u64> {
        self.missing.keys().copied().collect()
    }

    /// Number of packets currently awaited.
    pub fn outstanding(&self) -> usize {
        self.missing.len()
    }

    /// Packets NACKed and still missing after `age`: lost for good as far as a viewer can tell
    /// (packets still inside their recovery window at the end of a session are not counted).
    pub fn unrecovered(&self, now: Instant, age: Duration) -> usize {
        self.missing
            .values()
            .filter(|m| m.sent > 0 && now.saturating_duration_since(m.since) >= age)
            .count()
    }

    /// Sequence numbers NACKed so far (each retry counts).
    pub fn nacks_sent(&self) -> u64 {
        self.nacks_sent
    }

    /// Distinct packets NACKed at least once: the loss seen before recovery.
    pub fn packets_nacked(&self) -> u64 {
        self.first_nacks
    }

    /// NACKed packets that later arrived.
    pub fn recovered(&self) -> u64 {
        self.recovered
    }

    /// Mean time from "found missing" to arrival, over recovered packets.
    pub fn mean_recovery_time(&self) -> Option<Duration> {
        (self.recovered > 0).then(|| self.recovery_time_total / self.recovered as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nacks_at_once_then_every_retry_interval() {
        let t0 = Instant::now();
        let mut s = NackScheduler::new(Duration::from_millis(50));
        s.mark_missing(10, t0);
        s.mark_missing(11, t0);
        assert_eq!(s.poll(t0), vec![10, 11]);
        assert!(s.poll(t0 + Duration::from_millis(49)).is_empty());
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(50)));
        assert_eq!(s.poll(t0 + Duration::from_millis(50)), vec![10, 11]);
        assert!(s.received(10, t0 + Duration::from_millis(60)));
        assert!(!s.received(10, t0 + Duration::from_millis(61)), "duplicate");
        assert_eq!(s.poll(t0 + Duration::from_millis(100)), vec![11]);
        assert_eq!(s.nacks_sent(), 5);
        assert_eq!(s.recovered(), 1);
        assert_eq!(s.mean_recovery_time(), Some(Duration::from_millis(60)));
    }

    #[test]
    fn expected_tail_that_arrives_in_time_is_not_nacked() {
        let t0 = Instant::now();
        let mut s = NackScheduler::new(Duration::from_millis(50));
        let ms = Duration::from_millis;
        s.expect(5, t0, t0 + ms(10));
        s.expect(6, t0, t0 + ms(10));
        assert!(s.poll(t0 + ms(5)).is_empty());
        assert!(
            !s.received(5, t0 + ms(6)),
            "arrived before its deadline: no recovery"
        );
        assert_eq!(s.poll(t0 + ms(10)), vec![6]);
        assert_eq!(s.packets_nacked(), 1);
        assert!(s.received(6, t0 + ms(30)));
    }

    #[test]
    fn never_gives_up() {
        let t0 = Instant::now();
        let mut s = NackScheduler::new(Duration::ZERO);
        s.mark_missing(1, t0);
        for i in 0..1000u64 {
            let now = t0 + MIN_RETRY * i as u32;
            assert_eq!(s.poll(now), vec![1], "retry {i}");
        }
    }

    #[test]
    fn rtt_sets_retry_with_floor() {
        let mut s = NackScheduler::new(Duration::from_millis(100));
        s.set_rtt(Duration::from_millis(1));
        assert_eq!(s.retry_interval(), MIN_RETRY);
        s.set_rtt(Duration::from_millis(80));
        assert_eq!(s.retry_interval(), Duration::from_millis(100));
    }

    #[test]
    fn forget_below_drops_old_entries() {
        let t0 = Instant::now();
        let mut s = NackScheduler::new(Duration::from_millis(10));
        for q in 0..10 {
            s.mark_missing(q, t0);
        }
        s.forget_below(5);
        assert_eq!(s.poll(t0), vec![5, 6, 7, 8, 9]);
    }
}
