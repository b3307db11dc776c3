//! The no-drop jitter buffer: per track, packets in, whole frames out in decode order.
//!
//! Live playback protects smoothness, not latency: a frame is never skipped. A missing packet
//! is NACKed at once (as soon as a gap or the frame-seq-range extension proves it was sent) and
//! re-NACKed every retry interval until it arrives; everything behind it waits. The only way out
//! is the one production players take: when the buffered media exceeds a limit (default 3 s),
//! [`TrackBuffer::insert`] fails with [`JitterError::Overflow`] and the session re-pulls the
//! stream. Frames discarded by a re-pull are the only frames ever counted as dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rtmlive::media::{FrameKind, TrackKind};

use crate::nack::NackScheduler;
use crate::packet::{RtpIn, clock_rate};
use crate::seq::SeqUnwrapper;

/// Largest forward sequence jump treated as loss. Beyond it the stream is discontinuous (or the
/// input hostile): NACKing tens of thousands of packets would be absurd, so the session re-pulls.
pub const MAX_GAP: u64 = 4096;

/// Largest span (in packets) between the next frame to release and the newest packet. Bounds
/// the buffer's and the NACK list's memory whatever the input: beyond it the session re-pulls.
pub const MAX_WINDOW: u64 = 8192;

/// Largest frame (in packets) a frame-seq-range may announce; bounds what a hostile range can
/// make us wait for. 4096 × 1200 B ≈ 4.9 MB, beyond any sane live keyframe.
pub const MAX_FRAME_PACKETS: u64 = 4096;

/// Tuning of the jitter buffer.
#[derive(Debug, Clone, Copy)]
pub struct JitterConfig {
    /// Buffered media beyond which the session reports an error and re-pulls.
    pub max_buffered: Duration,
    /// RTT assumed for NACK retries before a measurement exists.
    pub initial_rtt: Duration,
    /// RTP clock rate of the audio track (for streams without the DTS extension).
    pub audio_clock: u32,
    /// How long a frame's tail, named by frame-seq-range, may lag its first packet before it is
    /// NACKed. A frame is sent as one burst, so this is a reordering allowance, not an RTT.
    pub tail_wait: Duration,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            max_buffered: Duration::from_secs(3),
            initial_rtt: Duration::from_millis(100),
            audio_clock: 48_000,
            tail_wait: Duration::from_millis(15),
        }
    }
}

/// Why a track buffer gave up; the session answers every variant by re-pulling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JitterError {
    #[error("jitter buffer holds {buffered:?} of media, over the {limit:?} limit")]
    Overflow { buffered: Duration, limit: Duration },
    #[error("sequence number jumped by {0} packets")]
    SequenceJump(u64),
}

/// A whole frame, all its packets present, released in decode order.
#[derive(Debug, Clone)]
pub struct AssembledFrame {
    pub track: TrackKind,
    /// Extended sequence number of the frame's first packet.
    pub first_seq: u64,
    /// The frame's packets in sequence order (payloads for a depacketizer).
    pub packets: Vec<RtpIn>,
    pub kind: FrameKind,
    /// Decoding timestamp, ms (the DTS extension, else the RTP timestamp on the track clock).
    pub dts_ms: i64,
    /// Composition offset, ms (zero without the CTS extension).
    pub cts_ms: i32,
    /// RTP timestamp (presentation time on the track clock).
    pub rtp_timestamp: u32,
    /// When the frame's last missing packet arrived.
    pub completed_at: Instant,
    /// Packets of this frame that arrived as retransmissions (were NACKed first).
    pub recovered_packets: u32,
}

impl AssembledFrame {
    /// Presentation timestamp in ms.
    pub fn pts_ms(&self) -> i64 {
        self.dts_ms + i64::from(self.cts_ms)
    }
}

/// Counters of one track buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JitterStats {
    pub packets_received: u64,
    pub duplicates: u64,
    /// Packets that had been NACKed and then arrived (retransmissions, or late originals).
    pub retransmits_received: u64,
    /// Distinct packets NACKed at least once: the loss seen before recovery.
    pub packets_missing: u64,
    /// NACK requests sent (each retry of each packet counts).
    pub nacks_sent: u64,
    pub frames_released: u64,
    /// Frames discarded when the buffer was reset for a re-pull.
    pub frames_dropped: u64,
    /// Released frames whose DTS went backwards (must stay 0).
    pub out_of_order_releases: u64,
}

#[derive(Debug, Clone)]
struct Slot {
    pkt: RtpIn,
    arrived: Instant,
    media_ms: i64,
    recovered: bool,
}

/// Reassembly and no-drop buffering of one track (one SSRC / sequence space).
#[derive(Debug)]
pub struct TrackBuffer {
    track: TrackKind,
    config: JitterConfig,
    unwrap: SeqUnwrapper,
    slots: BTreeMap<u64, Slot>,
    /// Frame bounds learnt from frame-seq-range: first → last extended sequence number.
    ranges: BTreeMap<u64, u64>,
    /// First sequence number of the next frame to release.
    next: Option<u64>,
    nack: NackScheduler,
    last_released_dts: Option<i64>,
    stats: JitterStats,
}

impl TrackBuffer {
    pub fn new(track: TrackKind, config: JitterConfig) -> Self {
        Self {
            track,
            config,
            unwrap: SeqUnwrapper::new(),
            slots: BTreeMap::new(),
            ranges: BTreeMap::new(),
            next: None,
            nack: NackScheduler::new(config.initial_rtt),
            last_released_dts: None,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        JitterStats {
            packets_missing: self.stats.packets_missing + self.nack.packets_nacked(),
            nacks_sent: self.stats.nacks_sent + self.nack.nacks_sent(),
            ..self.stats
        }
    }

    pub fn nack(&self) -> &NackScheduler {
        &self.nack
    }

    pub fn set_rtt(&mut self, rtt: Duration) {
        self.nack.set_rtt(rtt);
    }

    /// Media time held in the buffer: newest buffered packet minus the oldest one.
    pub fn buffered(&self) -> Duration {
        let mut it = self.slots.values().map(|s| s.media_ms);
        let Some(first) = it.next() else {
            return Duration::ZERO;
        };
        let (lo, hi) = it.fold((first, first), |(lo, hi), m| (lo.min(m), hi.max(m)));
        Duration::from_millis(u64::try_from(hi - lo).unwrap_or(0))
    }

    fn media_ms(&self, pkt: &RtpIn) -> i64 {
        pkt.meta.dts_ms.unwrap_or_else(|| {
            i64::from(pkt.timestamp) * 1000
                / i64::from(clock_rate(self.track, self.config.audio_clock))
        })
    }

    /// Accepts one packet. Newly found gaps are marked missing (NACKed at the next
    /// [`Self::poll_nacks`]). Fails when the session must re-pull.
    pub fn insert(&mut self, pkt: RtpIn, now: Instant) -> Result<(), JitterError> {
        self.stats.packets_received += 1;
        let prev_highest = self.unwrap.highest();
        let ext = self.unwrap.peek(pkt.seq);
        if let Some(h) = prev_highest
            && ext > h + MAX_GAP
        {
            return Err(JitterError::SequenceJump(ext - h));
        }
        if let Some(n) = self.next
            && ext > n + MAX_WINDOW
        {
            return Err(JitterError::SequenceJump(ext - n));
        }
        let range = pkt.meta.seq_range.and_then(|(f, l)| {
            let (ef, el) = (self.unwrap.peek(f), self.unwrap.peek(l));
            (ef <= ext && ext <= el && el - ef < MAX_FRAME_PACKETS).then_some((ef, el))
        });
        let ext = self.unwrap.unwrap(pkt.seq);
        if self.next.is_some_and(|n| ext < n) || self.slots.contains_key(&ext) {
            self.stats.duplicates += 1;
            return Ok(());
        }
        let recovered = self.nack.received(ext, now);
        if recovered {
            self.stats.retransmits_received += 1;
        }
        if self.next.is_none() {
            self.next = Some(range.map_or(ext, |(f, _)| f));
        }
        let next = self.next.unwrap_or(ext);
        // A gap behind the highest packet: everything in between was sent and is missing.
        if let Some(h) = prev_highest
            && ext > h + 1
        {
            for s in (h + 1).max(next)..ext {
                self.nack.mark_missing(s, now);
            }
        }
        // frame-seq-range reveals a lost head at once and a lost tail after a short reordering
        // allowance, without waiting for the next frame to expose the gap.
        if let Some((f, l)) = range {
            self.ranges.insert(f, l);
            for s in f.max(next)..ext {
                if !self.slots.contains_key(&s) {
                    self.nack.mark_missing(s, now);
                }
            }
            for s in (ext + 1).max(next)..=l {
                if !self.slots.contains_key(&s) {
                    self.nack.expect(s, now, now + self.config.tail_wait);
                }
            }
        }
        let media_ms = self.media_ms(&pkt);
        self.slots.insert(
            ext,
            Slot {
                pkt,
                arrived: now,
                media_ms,
                recovered,
            },
        );
        let buffered = self.buffered();
        if buffered > self.config.max_buffered {
            return Err(JitterError::Overflow {
                buffered,
                limit: self.config.max_buffered,
            });
        }
        Ok(())
    }

    /// Sequence numbers (16-bit, as on the wire) due for a NACK now.
    pub fn poll_nacks(&mut self, now: Instant) -> Vec<u16> {
        self.nack.poll(now).into_iter().map(|s| s as u16).collect()
    }

    /// When the NACK scheduler next wants [`Self::poll_nacks`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.nack.poll_timeout()
    }

    /// The last sequence number of the frame starting at `start`, if it can be known yet.
    fn frame_end(&self, start: u64) -> Option<u64> {
        if let Some(&l) = self.ranges.get(&start) {
            return Some(l);
        }
        let first = self.slots.get(&start)?;
        if let Some((_, l)) = first.pkt.meta.seq_range {
            // Only a range that starts here and is plausibly long: the extension is input,
            // and an inverted range would make the frame end before it starts.
            let l = self.unwrap.peek(l);
            if l >= start && l - start < MAX_FRAME_PACKETS {
                return Some(l);
            }
        }
        // Plain RTP: a frame ends at the marker bit or where the timestamp changes.
        let ts = first.pkt.timestamp;
        let mut s = start;
        loop {
            let slot = self.slots.get(&s)?;
            if slot.pkt.timestamp != ts {
                return Some(s - 1);
            }
            if slot.pkt.marker {
                return Some(s);
            }
            s += 1;
        }
    }

    /// Releases the next frame in decode order if all its packets are present.
    pub fn pop_frame(&mut self) -> Option<AssembledFrame> {
        let start = self.next?;
        let end = self.frame_end(start)?;
        if !(start..=end).all(|s| self.slots.contains_key(&s)) {
            return None;
        }
        let mut packets = Vec::with_capacity((end - start + 1) as usize);
        let mut completed_at = None::<Instant>;
        let mut recovered_packets = 0;
        let (mut dts, mut cts, mut kind) = (None, None, None);
        for s in start..=end {
            let slot = self.slots.remove(&s)?;
            completed_at = Some(completed_at.map_or(slot.arrived, |c| c.max(slot.arrived)));
            recovered_packets += u32::from(slot.recovered);
            dts = dts.or(slot.pkt.meta.dts_ms);
            cts = cts.or(slot.pkt.meta.cts_ms);
            kind = kind.or(slot.pkt.meta.kind);
            packets.push(slot.pkt);
        }
        self.ranges = self.ranges.split_off(&(end + 1));
        self.next = Some(end + 1);
        let first = packets.first()?;
        let rtp_timestamp = first.timestamp;
        let dts_ms = dts.unwrap_or_else(|| self.media_ms(first));
        let kind = kind.unwrap_or_else(|| infer_kind(self.track, &packets));
        if self.last_released_dts.is_some_and(|d| dts_ms < d) {
            self.stats.out_of_order_releases += 1;
        }
        self.last_released_dts = Some(dts_ms);
        self.stats.frames_released += 1;
        Some(AssembledFrame {
            track: self.track,
            first_seq: start,
            packets,
            kind,
            dts_ms,
            cts_ms: cts.unwrap_or(0),
            rtp_timestamp,
            completed_at: completed_at?,
            recovered_packets,
        })
    }

    /// Empties the buffer for a re-pull, counting the frames it discards as dropped.
    pub fn reset(&mut self) {
        let mut frames = BTreeSet::new();
        for slot in self.slots.values() {
            frames.insert(slot.pkt.timestamp);
        }
        self.stats.frames_dropped += frames.len() as u64;
        let stats = self.stats();
        *self = Self::new(self.track, self.config);
        self.stats = stats;
    }
}

/// Frame type for streams without the frame-type extension: audio is audio; H.264 video is a
/// keyframe when it carries an IDR or SPS NAL unit (single NAL, STAP-A or FU-A start).
fn infer_kind(track: TrackKind, packets: &[RtpIn]) -> FrameKind {
    if track == TrackKind::Audio {
        return FrameKind::Audio;
    }
    let key = packets.iter().any(|p| {
        let b = &p.payload;
        let t = b.first().map(|x| x & 0x1f);
        let inner = match t {
            Some(24) => b.get(3).map(|x| x & 0x1f),
            Some(28) => b.get(1).map(|x| x & 0x1f),
            other => other,
        };
        matches!(inner, Some(5 | 7))
    });
    if key {
        FrameKind::Key
    } else {
        FrameKind::Inter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::FrameMeta;
    use bytes::Bytes;
    use proptest::prelude::*;

    /// Packets of `frames` video frames of `per` packets each, 33 ms apart, with RTM metadata.
    fn stream(start_seq: u16, frames: usize, per: usize, with_range: bool) -> Vec<RtpIn> {
        let mut out = Vec::new();
        let mut seq = start_seq;
        for f in 0..frames {
            let first = seq;
            let last = seq.wrapping_add(per as u16 - 1);
            for i in 0..per {
                out.push(RtpIn {
                    track: TrackKind::Video,
                    ssrc: 1,
                    seq,
                    timestamp: (f as u32) * 3000,
                    marker: i + 1 == per,
                    payload: Bytes::from(vec![f as u8, i as u8]),
                    raw: Bytes::new(),
                    meta: FrameMeta {
                        dts_ms: Some(f as i64 * 33),
                        cts_ms: (i == 0).then_some(0),
                        seq_range: with_range.then_some((first, last)),
                        kind: Some(if f == 0 {
                            FrameKind::Key
                        } else {
                            FrameKind::Inter
                        }),
                    },
                });
                seq = seq.wrapping_add(1);
            }
        }
        out
    }

    fn drain(b: &mut TrackBuffer) -> Vec<AssembledFrame> {
        std::iter::from_fn(|| b.pop_frame()).collect()
    }

    #[test]
    fn an_inverted_frame_seq_range_is_ignored_not_trusted() {
        // Found by the player_receive fuzz target: a range whose last number is before its
        // first made the frame end before it started (and the release allocate ~2^64 slots).
        let t = Instant::now();
        let mut b = TrackBuffer::new(TrackKind::Video, JitterConfig::default());
        let mut p = stream(500, 1, 1, true).remove(0);
        p.meta.seq_range = Some((500, 400));
        b.insert(p, t).unwrap();
        let frames = drain(&mut b);
        assert_eq!(frames.len(), 1, "released by its marker bit instead");
        assert_eq!(frames[0].packets.len(), 1);
    }

    #[test]
    fn in_order_stream_releases_every_frame() {
        let t = Instant::now();
        let mut b = TrackBuffer::new(TrackKind::Video, JitterConfig::default());
        for p in stream(65530, 10, 3, true) {
            b.insert(p, t).unwrap();
        }
        let frames = drain(&mut b);
        assert_eq!(frames.len(), 10);
        assert!(frames.windows(2).all(|w| w[0].dts_ms < w[1].dts_ms));
        assert_eq!(frames[0].kind, FrameKind::Key);
        assert_eq!(b.stats().frames_dropped, 0);
    }

    #[test]
    fn lost_head_of_first_frame_is_nacked_at_once_and_waited_for() {
        let t = Instant::now();
        let mut b = TrackBuffer::new(TrackKind::Video, JitterConfig::default());
        let pkts = stream(100, 2, 4, true);
        // Packets 100 and 101 (the first frame's head) are lost; 102 arrives first.
        for p in &pkts[2..] {
            b.insert(p.clone(), t).unwrap();
        }
        assert_eq!(b.poll_nacks(t), vec![100, 101]);
        assert!(b.pop_frame().is_none(), "must wait, not skip");
        let t = t + Duration::from_millis(30);
        b.insert(pkts[1].clone(), t).unwrap();
        b.insert(pkts[0].clone(), t).unwrap();
        let frames = drain(&mut b);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].first_seq + 4, frames[1].first_seq);
        assert_eq!(b.stats().retransmits_received, 2);
    }

    #[test]
    fn lost_tail_is_nacked_without_waiting_for_the_next_frame() {
        let t = Instant::now();
        let mut b = TrackBuffer::new(TrackKind::Video, JitterConfig::default());
        let pkts = stream(0, 1, 5, true);
        b.insert(pkts[0].clone(), t).unwrap();
        // Only the first packet arrived: the range names the four others, NACKed once the
        // reordering allowance is over, with no later frame needed.
        assert!(b.poll_nacks(t).is_empty());
        let later = t + JitterConfig::default().tail_wait;
        assert_eq!(b.poll_nacks(later), vec![1, 2, 3, 4]);
    }

    #[test]
    fn plain_rtp_frames_end_at_marker_or_timestamp_change() {
        let t = Instant::now();
        let mut b = TrackBuffer::new(TrackKind::Video, JitterConfig::default());
        let mut pkts = stream(7, 3, 2, false);
        for p in &mut pkts {
            p.meta = FrameMeta::default();
            p.payload = Bytes::from_static(&[0x65]);
        }
        for p in pkts {
            b.insert(p, t).unwrap();
        }
        let frames = drain(&mut b);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1].dts_ms, 33);
        assert_eq!(frames[0].kind, FrameKind::Key, "IDR NAL type 5");
    }

    #[test]
    fn overflow_triggers_repull_and_counts_discarded_frames() {
        let t = Instant::now();
        let cfg = JitterConfig {
            max_buffered: Duration::from_millis(500),
            ..JitterConfig::default()
        };
        let mut b = TrackBuffer::new(TrackKind::Video, cfg);
        let pkts = stream(0, 40, 1, true);
        let mut err = None;
        for p in pkts.into_iter().skip(1) {
            if let Err(e) = b.insert(p, t) {
                err = Some(e);
                break;
            }
        }
        assert!(matches!(err, Some(JitterError::Overflow { .. })), "{err:?}");
        b.reset();
        assert!(b.stats().frames_dropped >= 15);
    }

    #[test]
    fn huge_jump_is_an_error_not_a_nack_storm() {
        let t = Instant::now();
        let mut b = TrackBuffer::new(TrackKind::Video, JitterConfig::default());
        let pkts = stream(0, 1, 1, false);
        b.insert(pkts[0].clone(), t).unwrap();
        let mut far = pkts[0].clone();
        far.seq = 30_000;
        assert!(matches!(
            b.insert(far, t),
            Err(JitterError::SequenceJump(_))
        ));
    }

    proptest! {
        /// Any arrival order, with duplicates and with losses that are later recovered (NACK
        /// answered), releases every frame exactly once, in decode order, none dropped.
        #[test]
        fn reorder_duplicate_loss_recovery(
            start in any::<u16>(),
            frames in 1usize..30,
            per in 1usize..6,
            with_range in any::<bool>(),
            order in prop::collection::vec(any::<u32>(), 180),
            dup in prop::collection::vec(any::<bool>(), 180),
            lost in prop::collection::vec(0u8..10, 180),
        ) {
            let t0 = Instant::now();
            let pkts = stream(start, frames, per, with_range);
            let n = pkts.len();
            // Keep the first packet first so the buffer knows where the stream starts (the
            // server always starts a viewer at a keyframe; with ranges even that is not needed).
            let mut idx: Vec<usize> = (1..n).collect();
            idx.sort_by_key(|&i| order[i % order.len()]);
            idx.insert(0, 0);
            let mut b = TrackBuffer::new(TrackKind::Video, JitterConfig::default());
            let mut out = Vec::new();
            let mut retransmit = Vec::new();
            for (k, &i) in idx.iter().enumerate() {
                let now = t0 + Duration::from_millis(k as u64);
                if i != 0 && lost[i % lost.len()] == 0 {
                    retransmit.push(i);
                    continue;
                }
                b.insert(pkts[i].clone(), now).unwrap();
                if dup[i % dup.len()] {
                    b.insert(pkts[i].clone(), now).unwrap();
                }
                out.extend(drain(&mut b));
            }
            // The NACKs name (a superset of) what was lost and later delivered by retransmission.
            let now = t0 + Duration::from_secs(1);
            let nacked: BTreeSet<u16> = b.poll_nacks(now).into_iter().collect();
            for &i in &retransmit {
                // A loss is detectable when a later packet arrived, or (with frame-seq-range)
                // any packet of the same frame: the extension exists for exactly this.
                let later = idx.iter().any(|&j| j > i && !retransmit.contains(&j));
                let same_frame = with_range
                    && idx.iter().any(|&j| j / per == i / per && !retransmit.contains(&j));
                if later || same_frame {
                    prop_assert!(nacked.contains(&pkts[i].seq), "seq {} not nacked", pkts[i].seq);
                }
                b.insert(pkts[i].clone(), now).unwrap();
                out.extend(drain(&mut b));
            }
            prop_assert_eq!(out.len(), frames);
            for (f, fr) in out.iter().enumerate() {
                prop_assert_eq!(fr.dts_ms, f as i64 * 33);
                prop_assert_eq!(fr.packets.len(), per);
            }
            let s = b.stats();
            prop_assert_eq!(s.frames_dropped, 0);
            prop_assert_eq!(s.out_of_order_releases, 0);
            prop_assert_eq!(s.frames_released, frames as u64);
        }
    }
}
