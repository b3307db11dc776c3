//! [`RtpReceiver`]: the receive side of one inbound RTP stream (a WHIP publisher's track).
//!
//! Sans-IO, like the rest of the transport: packets and `now` in, in-order packets, NACK lists
//! and report blocks out. It
//!
//! * puts packets back in sequence order (a bounded reorder buffer),
//! * asks for the missing ones (generic NACK, RFC 4585) as soon as a gap shows, and again every
//!   [`ReceiverConfig::nack_interval`] up to [`ReceiverConfig::nack_tries`] times,
//! * gives up on a gap after [`ReceiverConfig::max_wait`] (or when the buffer is full) and
//!   delivers what follows: the consumer sees the sequence gap and resynchronises on a
//!   keyframe,
//! * keeps the RFC 3550 reception statistics (loss, extended highest sequence number,
//!   interarrival jitter, LSR/DLSR) for receiver reports.
//!
//! Retransmissions that arrive as RTX (RFC 4588) are unwrapped by the session before they get
//! here, so this type only ever sees the original stream.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::rtcp::{ReportBlock, ntp_mid32};
use crate::rtp::clock::SeqUnwrapper;

/// Timers and bounds of a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// How long a gap may hold back later packets before it is given up.
    pub max_wait: Duration,
    /// Interval between NACKs of the same missing packet.
    pub nack_interval: Duration,
    /// NACKs per missing packet.
    pub nack_tries: u8,
    /// Packets held behind a gap; beyond this the gap is given up at once.
    pub max_buffered: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_millis(500),
            nack_interval: Duration::from_millis(60),
            nack_tries: 6,
            max_buffered: 2048,
        }
    }
}

/// A jump of more sequence numbers than this is a sender restart, not loss.
const MAX_GAP: u64 = 1000;

#[derive(Debug, Clone, Copy)]
struct Missing {
    since: Instant,
    next_nack: Instant,
    tries: u8,
}

/// Counters of one receiver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    pub packets: u64,
    pub duplicates: u64,
    /// Packets that arrived after their gap was given up.
    pub late: u64,
    pub nacked: u64,
    /// Sequence numbers given up on (never recovered).
    pub lost: u64,
    pub recovered: u64,
}

/// The receive side of one RTP stream (one SSRC).
#[derive(Debug)]
pub struct RtpReceiver {
    config: ReceiverConfig,
    clock_rate: u32,
    ssrc: Option<u32>,
    unwrap: SeqUnwrapper,
    /// Extended sequence numbers: first seen, highest seen, next to deliver.
    base: Option<u64>,
    highest: u64,
    next: u64,
    buffer: BTreeMap<u64, Bytes>,
    missing: BTreeMap<u64, Missing>,
    // RFC 3550 A.3 / A.8 state.
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    transit: Option<u32>,
    jitter: u64,
    anchor: Option<Instant>,
    last_sr: Option<(u32, Instant)>,
    stats: ReceiverStats,
}

impl RtpReceiver {
    pub fn new(config: ReceiverConfig, clock_rate: u32) -> Self {
        Self {
            config,
            clock_rate: clock_rate.max(1),
            ssrc: None,
            unwrap: SeqUnwrapper::new(),
            base: None,
            highest: 0,
            next: 0,
            buffer: BTreeMap::new(),
            missing: BTreeMap::new(),
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0,
            anchor: None,
            last_sr: None,
            stats: ReceiverStats::default(),
        }
    }

    /// The sender's SSRC, once a packet arrived.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    /// Feeds one packet (`ssrc`, `seq`, `timestamp` from its header); appends the packets that
    /// are now in order to `out`. A new SSRC restarts the stream (sender restart).
    pub fn push(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        packet: Bytes,
        out: &mut Vec<Bytes>,
    ) {
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                self.flush_all(out);
            }
            *self = Self::new(self.config, self.clock_rate);
            self.ssrc = Some(ssrc);
        }
        self.update_jitter(now, timestamp);
        let s = self.unwrap.unwrap(seq);
        let Some(_) = self.base else {
            self.base = Some(s);
            self.highest = s;
            self.received = 1;
            self.stats.packets += 1;
            out.push(packet);
            self.next = s + 1;
            return;
        };
        if s < self.next {
            if self.buffer.contains_key(&s) {
                self.stats.duplicates += 1;
            } else {
                self.stats.late += 1;
            }
            return;
        }
        if self.buffer.contains_key(&s) {
            self.stats.duplicates += 1;
            return;
        }
        self.received += 1;
        self.stats.packets += 1;
        if s > self.highest {
            if s - self.highest > MAX_GAP {
                // A restart of the sequence space: deliver what we hold and resynchronise.
                self.flush_all(out);
                self.next = s;
            } else {
                for m in self.highest + 1..s {
                    self.missing.insert(
                        m,
                        Missing {
                            since: now,
                            next_nack: now,
                            tries: 0,
                        },
                    );
                }
            }
            self.highest = s;
        } else if self.missing.remove(&s).is_some() {
            self.stats.recovered += 1;
        }
        self.buffer.insert(s, packet);
        self.drain(out);
        if self.buffer.len() > self.config.max_buffered {
            self.give_up_head(out);
        }
    }

    fn update_jitter(&mut self, now: Instant, timestamp: u32) {
        let anchor = *self.anchor.get_or_insert(now);
        let arrival = (now.saturating_duration_since(anchor).as_micros()
            * u128::from(self.clock_rate)
            / 1_000_000) as u32;
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(prev) = self.transit {
            // RFC 3550 A.8, in 1/16 units; wrapping arithmetic follows timestamp wraps.
            let d = u64::from((transit.wrapping_sub(prev) as i32).unsigned_abs());
            self.jitter = (self.jitter + d).saturating_sub((self.jitter + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    fn drain(&mut self, out: &mut Vec<Bytes>) {
        while let Some(p) = self.buffer.remove(&self.next) {
            out.push(p);
            self.next += 1;
        }
    }

    /// Gives up the gap in front of the buffer: skips to the first held packet.
    fn give_up_head(&mut self, out: &mut Vec<Bytes>) {
        let Some((&first, _)) = self.buffer.first_key_value() else {
            return;
        };
        let skipped = self.missing.range(..first).count() as u64;
        self.missing.retain(|&k, _| k > first);
        self.stats.lost += skipped;
        self.next = first;
        self.drain(out);
    }

    fn flush_all(&mut self, out: &mut Vec<Bytes>) {
        self.stats.lost += self.missing.len() as u64;
        self.missing.clear();
        out.extend(std::mem::take(&mut self.buffer).into_values());
    }

    /// When [`Self::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let head = self
            .missing
            .first_key_value()
            .map(|(_, m)| m.since + self.config.max_wait);
        let nack = self
            .missing
            .values()
            .filter(|m| m.tries < self.config.nack_tries)
            .map(|m| m.next_nack)
            .min();
        head.into_iter().chain(nack).min()
    }

    /// Gives up gaps that waited too long; appends the packets that follow them to `out`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        while let Some((_, m)) = self.missing.first_key_value() {
            if now < m.since + self.config.max_wait {
                break;
            }
            self.give_up_head(out);
        }
    }

    /// The sequence numbers (16-bit) due for a NACK at `now`; marks them asked.
    pub fn due_nacks(&mut self, now: Instant, out: &mut Vec<u16>) {
        for (&s, m) in self.missing.iter_mut() {
            if m.tries < self.config.nack_tries && m.next_nack <= now {
                m.tries += 1;
                m.next_nack = now + self.config.nack_interval;
                out.push(s as u16);
                self.stats.nacked += 1;
            }
        }
    }

    /// Records a sender report of this stream (for LSR/DLSR).
    pub fn on_sender_report(&mut self, now: Instant, ntp: u64) {
        self.last_sr = Some((ntp_mid32(ntp), now));
    }

    /// The report block about this stream (RFC 3550 §6.4.1, A.3); `None` before any packet.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let base = self.base?;
        let expected = self.highest - base + 1;
        let lost = expected.saturating_sub(self.received);
        let expected_interval = expected - self.expected_prior.min(expected);
        let received_interval = self.received - self.received_prior.min(self.received);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at);
                (lsr, (d.as_micros() * 65536 / 1_000_000) as u32)
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            total_lost: lost.min(0x7F_FFFF) as u32,
            highest_seq: self.highest as u32,
            jitter: (self.jitter >> 4) as u32,
            lsr,
            dlsr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16) -> Bytes {
        Bytes::from(seq.to_be_bytes().to_vec())
    }

    fn seqs(out: &[Bytes]) -> Vec<u16> {
        out.iter()
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect()
    }

    #[test]
    fn reorders_nacks_and_recovers() {
        let t0 = Instant::now();
        let mut r = RtpReceiver::new(ReceiverConfig::default(), 90_000);
        let mut out = Vec::new();
        for s in [65534u16, 65535, 1, 2] {
            r.push(t0, 7, s, 0, pkt(s), &mut out);
        }
        assert_eq!(seqs(&out), [65534, 65535]);
        let mut nacks = Vec::new();
        r.due_nacks(t0, &mut nacks);
        assert_eq!(nacks, [0]);
        nacks.clear();
        r.due_nacks(t0, &mut nacks);
        assert!(nacks.is_empty(), "not again before the interval");
        r.push(t0, 7, 0, 0, pkt(0), &mut out);
        assert_eq!(seqs(&out), [65534, 65535, 0, 1, 2]);
        assert_eq!(r.stats().recovered, 1);
        let b = r.report_block(t0).unwrap();
        assert_eq!((b.ssrc, b.total_lost, b.highest_seq), (7, 0, 65536 + 2));
    }

    #[test]
    fn gives_up_a_gap_after_max_wait() {
        let t0 = Instant::now();
        let cfg = ReceiverConfig::default();
        let mut r = RtpReceiver::new(cfg, 48_000);
        let mut out = Vec::new();
        for s in [10u16, 12, 13] {
            r.push(t0, 1, s, 0, pkt(s), &mut out);
        }
        assert_eq!(seqs(&out), [10]);
        assert_eq!(r.poll_timeout(), Some(t0));
        r.handle_timeout(t0 + cfg.max_wait / 2, &mut out);
        assert_eq!(seqs(&out), [10]);
        r.handle_timeout(t0 + cfg.max_wait, &mut out);
        assert_eq!(seqs(&out), [10, 12, 13]);
        assert_eq!(r.stats().lost, 1);
        r.push(t0, 1, 11, 0, pkt(11), &mut out);
        assert_eq!(r.stats().late, 1);
        let b = r.report_block(t0).unwrap();
        assert_eq!(b.total_lost, 1);
        assert!(b.fraction_lost > 0);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn duplicates_and_restarts() {
        let t0 = Instant::now();
        let mut r = RtpReceiver::new(ReceiverConfig::default(), 90_000);
        let mut out = Vec::new();
        r.push(t0, 1, 5, 0, pkt(5), &mut out);
        r.push(t0, 1, 5, 0, pkt(5), &mut out);
        assert_eq!(r.stats().duplicates + r.stats().late, 1);
        r.push(t0, 1, 30_000, 0, pkt(30_000), &mut out);
        assert_eq!(seqs(&out), [5, 30_000], "a huge jump resynchronises");
        r.push(t0, 2, 9, 0, pkt(9), &mut out);
        assert_eq!(r.ssrc(), Some(2));
        assert_eq!(seqs(&out), [5, 30_000, 9]);
    }

    #[test]
    fn full_buffer_gives_up_the_head_gap() {
        let t0 = Instant::now();
        let cfg = ReceiverConfig {
            max_buffered: 4,
            ..ReceiverConfig::default()
        };
        let mut r = RtpReceiver::new(cfg, 90_000);
        let mut out = Vec::new();
        r.push(t0, 1, 0, 0, pkt(0), &mut out);
        for s in 2..=6u16 {
            r.push(t0, 1, s, 0, pkt(s), &mut out);
        }
        assert_eq!(seqs(&out), [0, 2, 3, 4, 5, 6]);
    }
}
