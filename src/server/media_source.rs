//! The bridge from the hub to a viewer session: a [`Subscription`] cursor (or, for a co-host
//! room, a [`SwitchableSubscription`] that follows the room) presented as the transport's
//! [`MediaSource`].
//!
//! Packets are handed over as the shared `Bytes` (no copy). When the subscription is moved to a
//! keyframe (the viewer fell out of the ring, or asked for a keyframe) or to another stream
//! (co-host switch), the packets stop following each other; a [`Continuity`] then computes the
//! per-track offsets that keep the viewer's sequence numbers and timestamps continuous, and the
//! session applies them in the copy it makes for SRTP anyway.
//!
//! Retransmissions are answered from the stream that first sent the packet, with the values it
//! was first sent with: a NACK for the last packets before a switch (or a GOP jump) refers to
//! the previous epoch, whose offsets differ from the current ones. Which stream an epoch's
//! packets came from is kept per track, because a track's epoch starts at its own first packet:
//! after a switch followed at once by a keyframe replay, the audio track's previous epoch can
//! still be the old host's while the video's is already the new one's. A NACK for anything
//! older than the previous epoch is a miss: its offsets are forgotten, and a packet found by
//! guessing them could be another packet under the same number.

use std::sync::Arc;

use bytes::BytesMut;

use crate::hub::room::{Room, SwitchableSubscription};
use crate::hub::{Continuity, JumpReason, Recv, Rewrite, SourceSeq, Stream, Subscription};
use crate::media::TrackKind;
use crate::ops::Metrics;
use crate::rtp::MediaPacket;
use crate::transport::MediaSource;
use crate::transport::shard::MAX_PER_POLL;

/// What a viewer reads: one stream, or whatever stream its room currently points at.
enum Cursor {
    Stream(Subscription),
    Room(SwitchableSubscription),
}

impl Cursor {
    fn poll(&mut self, out: &mut Vec<MediaPacket>, max: usize) -> Recv {
        match self {
            Cursor::Stream(s) => s.poll(out, max),
            Cursor::Room(s) => s.poll(out, max),
        }
    }

    fn stream(&self) -> &Arc<Stream> {
        match self {
            Cursor::Stream(s) => s.stream(),
            Cursor::Room(s) => s.current(),
        }
    }

    fn request_keyframe(&mut self) {
        match self {
            Cursor::Stream(s) => s.request_keyframe(),
            Cursor::Room(s) => s.request_keyframe(),
        }
    }
}

/// The streams one track's current and previous [`Continuity`] epochs were read from (NACKs
/// of an epoch are answered from its stream). Mirrors the continuity's own bookkeeping: an
/// epoch exists for a track once a packet of that track was rewritten in it.
#[derive(Default)]
struct EpochStreams {
    current: Option<Arc<Stream>>,
    previous: Option<Arc<Stream>>,
}

impl EpochStreams {
    /// A new epoch begins: the current one, if this track had any packet in it, becomes the
    /// previous one (like [`Continuity::begin_epoch`]).
    fn begin_epoch(&mut self) {
        if let Some(cur) = self.current.take() {
            self.previous = Some(cur);
        }
    }
}

/// A viewer's media: one subscription plus its continuity state (about 250 bytes).
pub struct HubSource {
    cursor: Cursor,
    continuity: Continuity,
    offsets: [(u16, u32); 2],
    /// Per track (see [`lane`]): where its current and previous epochs' packets came from.
    epochs: [EpochStreams; 2],
    jumps: u64,
    /// Counts GOP jumps and switches (`rtmlive_gop_jumps_total`, `rtmlive_switch_events_total`).
    metrics: Option<Arc<Metrics>>,
    /// Keeps the stream's source alive while this viewer watches (see
    /// [`crate::signal::Resolved::hold`]).
    _hold: Option<Box<dyn Send>>,
}

fn lane(t: TrackKind) -> usize {
    match t {
        TrackKind::Audio => 0,
        TrackKind::Video => 1,
    }
}

impl HubSource {
    /// Starts at the stream's cached keyframe (fast start).
    pub fn new(stream: &Arc<Stream>) -> Self {
        Self::with_cursor(Cursor::Stream(stream.subscribe()), stream)
    }

    /// What a resolved request plays: the room if it names one (the viewer follows its
    /// switches), else the stream. Starts at the cached keyframe either way.
    pub fn for_resolved(stream: &Arc<Stream>, room: Option<&Arc<Room>>) -> Self {
        match room {
            Some(room) => {
                let sub = room.subscribe(None);
                let first = sub.current().clone();
                Self::with_cursor(Cursor::Room(sub), &first)
            }
            None => Self::new(stream),
        }
    }

    fn with_cursor(cursor: Cursor, stream: &Arc<Stream>) -> Self {
        let audio_clock = stream.audio_config().map_or(48_000, |a| a.sample_rate);
        Self {
            cursor,
            continuity: Continuity::new(90_000, audio_clock),
            offsets: [(0, 0); 2],
            epochs: Default::default(),
            jumps: 0,
            metrics: None,
            _hold: None,
        }
    }

    /// Attaches what must live as long as this viewer (an origin-pull lease).
    pub fn with_hold(mut self, hold: Option<Box<dyn Send>>) -> Self {
        self._hold = hold;
        self
    }

    /// Records jumps and switches in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The packets polled next do not follow the ones before (a jump or a switch).
    fn begin_epoch(&mut self) {
        self.continuity.begin_epoch();
        for e in &mut self.epochs {
            e.begin_epoch();
        }
    }

    /// Times this viewer was moved to a keyframe (fell behind, asked for one) or to another
    /// stream of its room.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }

    /// A retransmission of a previous-epoch packet: a copy patched to the values it was first
    /// sent with, minus the current offsets that the session will add back.
    fn previous_epoch_packet(&self, track: TrackKind, source_seq: u16) -> Option<MediaPacket> {
        let pkt = self.epochs[lane(track)]
            .previous
            .as_ref()?
            .lookup(track, source_seq)?;
        let first = self.continuity.retransmission(&pkt, true)?;
        let (seq_off, ts_off) = self.offsets[lane(track)];
        let adjusted = Rewrite {
            seq: first.seq.wrapping_sub(seq_off),
            timestamp: first.timestamp.wrapping_sub(ts_off),
            seq_delta: first.seq_delta.wrapping_sub(seq_off),
            dts_shift_ms: first.dts_shift_ms,
        };
        let mut copy = BytesMut::from(&pkt.bytes[..]);
        if !adjusted.apply(&pkt, &mut copy, None) {
            return None;
        }
        Some(MediaPacket {
            bytes: copy.freeze(),
            seq: (pkt.seq & !0xFFFF) | u64::from(adjusted.seq),
            timestamp: adjusted.timestamp,
            ..pkt
        })
    }
}

impl MediaSource for HubSource {
    fn poll_packets(&mut self, out: &mut Vec<MediaPacket>) {
        let start = out.len();
        match self.cursor.poll(out, MAX_PER_POLL) {
            Recv::Jumped { jump, .. } => {
                self.jumps += 1;
                self.begin_epoch();
                // A keyframe request is answered by a replay, not a skip forward.
                if jump.reason != JumpReason::KeyframeRequest
                    && let Some(m) = &self.metrics
                {
                    m.gop_jump();
                }
            }
            Recv::Switched { .. } => {
                self.jumps += 1;
                self.begin_epoch();
                if let Some(m) = &self.metrics {
                    m.switch_event();
                }
            }
            Recv::Items(_) | Recv::Pending | Recv::Closed => {}
        }
        // The items of one poll all come from the cursor's current stream (a switch happens
        // only at the start of a poll), so a track's first item of an epoch names its stream.
        for pkt in &out[start..] {
            let l = lane(pkt.track);
            if self.epochs[l].current.is_none() {
                self.epochs[l].current = Some(self.cursor.stream().clone());
            }
            let rw = self.continuity.rewrite(pkt);
            self.offsets[l] = (rw.seq_delta, rw.timestamp.wrapping_sub(pkt.timestamp));
        }
    }

    fn lookup(&self, track: TrackKind, seq16: u16) -> Option<MediaPacket> {
        // The session mapped the viewer's sequence number back with the current offset; undo
        // that to find which epoch sent it.
        let viewer_seq = seq16.wrapping_add(self.offsets[lane(track)].0);
        match self.continuity.source_seq(track, viewer_seq)? {
            SourceSeq {
                seq,
                previous_epoch: true,
            } => self.previous_epoch_packet(track, seq),
            SourceSeq { seq, .. } => self.epochs[lane(track)]
                .current
                .as_ref()?
                .lookup(track, seq),
        }
    }

    fn request_keyframe(&mut self, _track: TrackKind) {
        // Served from the GOP cache by moving this cursor; never forwarded upstream.
        self.cursor.request_keyframe();
    }

    fn offsets(&self, track: TrackKind) -> (u16, u32) {
        self.offsets[lane(track)]
    }

    fn stream_key(&self) -> Option<&str> {
        Some(self.cursor.stream().key())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::hub::{Hub, HubConfig};
    use crate::media::FrameKind;

    /// A one-packet video frame of stream 0 (see [`tagged`]).
    fn frame(seq: u64, key: bool) -> MediaPacket {
        tagged(TrackKind::Video, 0, seq, key)
    }

    fn header(p: &MediaPacket) -> (u16, u32) {
        let b = &p.bytes;
        (
            u16::from_be_bytes([b[2], b[3]]),
            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        )
    }

    #[test]
    fn nacks_of_the_previous_epoch_get_the_packet_as_first_sent() {
        let hub = Hub::new(HubConfig::default());
        let (stream, _) = hub.get_or_create("live/a");
        stream.push_packets((0..10).map(|s| frame(s, s % 5 == 0)));
        let mut src = HubSource::new(&stream);
        let mut out = Vec::new();
        src.poll_packets(&mut out);
        assert_eq!(out.len(), 5, "starts at the cached keyframe (5)");
        assert_eq!(src.offsets(TrackKind::Video), (0, 0));

        // A keyframe request replays the GOP: a new epoch continuing at output seq 10.
        src.request_keyframe(TrackKind::Video);
        out.clear();
        src.poll_packets(&mut out);
        assert_eq!(out.len(), 5);
        let (seq_off, ts_off) = src.offsets(TrackKind::Video);
        assert_eq!(seq_off, 5, "source 5 goes out as 10");
        // The session maps a NACKed output seq back with the current offset ...
        let stream_seq = |viewer: u16| viewer.wrapping_sub(seq_off);
        // ... output 7 was source 7 in the previous epoch: the answer, once the session adds
        // the current offsets, is exactly what was first sent (seq 7, timestamp 21000).
        let old = src.lookup(TrackKind::Video, stream_seq(7)).expect("cached");
        let (s, t) = header(&old);
        assert_eq!(
            (s.wrapping_add(seq_off), t.wrapping_add(ts_off)),
            (7, 21_000)
        );
        assert_eq!(old.bytes[12..], frame(7, false).bytes[12..], "same payload");
        // Output 12 is source 7 of the current epoch: the shared packet itself.
        let cur = src
            .lookup(TrackKind::Video, stream_seq(12))
            .expect("cached");
        assert_eq!(cur.bytes, frame(7, false).bytes);
        // Never sent: nothing.
        assert!(src.lookup(TrackKind::Video, stream_seq(40)).is_none());
    }

    /// A one-packet frame of `track` whose payload names its stream (`tag`) and sequence
    /// number, so a test can tell which packet a lookup found.
    fn tagged(track: TrackKind, tag: u8, seq: u64, key: bool) -> MediaPacket {
        let (ts, dts_ms) = match track {
            TrackKind::Video => (seq as u32 * 3000, seq as i64 * 33),
            TrackKind::Audio => (seq as u32 * 1024, seq as i64 * 21),
        };
        let mut b = vec![0x80, 0x80 | 96];
        b.extend_from_slice(&(seq as u16).to_be_bytes());
        b.extend_from_slice(&ts.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 1, tag, seq as u8]);
        MediaPacket {
            bytes: Bytes::from(b),
            track,
            seq,
            timestamp: ts,
            marker: true,
            frame_kind: if key {
                FrameKind::Key
            } else {
                FrameKind::Inter
            },
            keyframe_start: key,
            dts_ms,
            seq_range_offset: None,
        }
    }

    fn poll(src: &mut HubSource) -> Vec<MediaPacket> {
        let mut out = Vec::new();
        src.poll_packets(&mut out);
        out
    }

    /// What the session passes to `lookup` for a NACK of `viewer_seq`: the viewer's number
    /// less the current offset.
    fn nack(src: &HubSource, track: TrackKind, viewer_seq: u16) -> Option<MediaPacket> {
        src.lookup(track, viewer_seq.wrapping_sub(src.offsets(track).0))
    }

    #[test]
    fn a_nack_older_than_the_previous_epoch_is_a_miss_not_another_packet() {
        let hub = Hub::new(HubConfig::default());
        let (s, _) = hub.get_or_create("live/a");
        let v = |seq| tagged(TrackKind::Video, b'a', seq, seq % 5 == 0);
        s.push_packets((0..15).map(v));
        let mut src = HubSource::new(&s);
        // Epoch 1: source 10..15 as output 10..15.
        assert_eq!(poll(&mut src).len(), 5);
        // Epoch 2: the GOP replayed, source 10..15 as output 15..20.
        src.request_keyframe(TrackKind::Video);
        assert_eq!(poll(&mut src).len(), 5);
        s.push_packets((15..20).map(v));
        assert_eq!(poll(&mut src).len(), 5, "source 15..20 as output 20..25");
        // Epoch 3: the new GOP replayed, source 15..20 as output 25..30 (offset 10).
        src.request_keyframe(TrackKind::Video);
        assert_eq!(poll(&mut src).len(), 5);
        assert_eq!(src.offsets(TrackKind::Video).0, 10);
        // Output 12 was source 12 in epoch 1. With the current offset it would be source 2,
        // which the ring still holds: sending that would be a wrong packet under number 12.
        assert!(nack(&src, TrackKind::Video, 12).is_none());
        // The previous and the current epoch are answered.
        let prev = nack(&src, TrackKind::Video, 22).expect("epoch 2");
        assert_eq!(prev.bytes[12..], v(17).bytes[12..]);
        let cur = nack(&src, TrackKind::Video, 27).expect("epoch 3");
        assert_eq!(cur.bytes, v(17).bytes);
    }

    #[test]
    fn each_track_answers_from_the_stream_its_epoch_was_read_from() {
        let hub = Hub::new(HubConfig::default());
        let (a, _) = hub.get_or_create("live/a");
        let (b, _) = hub.get_or_create("live/b");
        let room = Room::new("room/show", a.clone());
        a.push_packets([
            tagged(TrackKind::Video, b'a', 0, true),
            tagged(TrackKind::Audio, b'a', 0, false),
            tagged(TrackKind::Audio, b'a', 1, false),
            tagged(TrackKind::Video, b'a', 1, false),
        ]);
        let mut src = HubSource::for_resolved(&a, Some(&room));
        assert_eq!(poll(&mut src).len(), 4, "epoch 1 on a, both tracks");

        room.switch_to(b.clone());
        assert!(poll(&mut src).is_empty(), "waits for b's next keyframe");
        // b numbers its audio like a does; its audio before the keyframe is not delivered.
        b.push_packets([
            tagged(TrackKind::Video, b'b', 50, false),
            tagged(TrackKind::Audio, b'b', 0, false),
            tagged(TrackKind::Audio, b'b', 1, false),
            tagged(TrackKind::Video, b'b', 51, true),
            tagged(TrackKind::Video, b'b', 52, false),
        ]);
        let switched = poll(&mut src);
        assert_eq!(switched.len(), 2, "b's keyframe and the frame after it");
        assert!(switched.iter().all(|p| p.track == TrackKind::Video));
        // A keyframe replay on b before any audio of b went out: video's previous epoch is
        // now b's, audio's is still a's.
        src.request_keyframe(TrackKind::Video);
        assert_eq!(poll(&mut src).len(), 2);

        let audio = nack(&src, TrackKind::Audio, 1).expect("a's audio, still cached");
        assert_eq!(
            audio.bytes[12..],
            tagged(TrackKind::Audio, b'a', 1, false).bytes[12..],
            "the audio a sent, not b's packet of the same number"
        );
        // Video output 2, 3 were b's 51, 52 in the previous epoch: answered from b.
        let video = nack(&src, TrackKind::Video, 3).expect("b's video");
        assert_eq!(
            video.bytes[12..],
            tagged(TrackKind::Video, b'b', 52, false).bytes[12..]
        );
    }
}
