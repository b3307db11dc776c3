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
//! the previous epoch, whose offsets differ from the current ones.

use std::sync::Arc;

use bytes::BytesMut;

use crate::hub::room::{Room, SwitchableSubscription};
use crate::hub::{Continuity, JumpReason, Recv, Rewrite, SourceSeq, Stream, Subscription};
use crate::media::TrackKind;
use crate::ops::Metrics;
use crate::rtp::MediaPacket;
use crate::rtp::ext::{RtmExt, shift_time_values};
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

/// A viewer's media: one subscription plus its continuity state (about 250 bytes).
pub struct HubSource {
    cursor: Cursor,
    continuity: Continuity,
    offsets: [(u16, u32); 2],
    /// The stream the previous epoch's packets came from (NACKs of that epoch are answered
    /// from it): the same stream after a GOP jump, the one before after a switch.
    previous: Option<Arc<Stream>>,
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
            previous: None,
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

    /// Times this viewer was moved to a keyframe (fell behind, asked for one) or to another
    /// stream of its room.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }

    /// A retransmission of a previous-epoch packet: a copy patched to the values it was first
    /// sent with, minus the current offsets that the session will add back.
    fn previous_epoch_packet(&self, track: TrackKind, source_seq: u16) -> Option<MediaPacket> {
        let pkt = self.previous.as_ref()?.lookup(track, source_seq)?;
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
        // The time values, like the timestamp, as first sent less what the session adds.
        let ids = [
            RtmExt::DecodingTimestamp.default_id(),
            RtmExt::ReferenceFrameTimestamp.default_id(),
        ];
        if !shift_time_values(
            &mut copy,
            ids,
            adjusted.timestamp.wrapping_sub(pkt.timestamp),
        ) {
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
                self.continuity.begin_epoch();
                self.previous = Some(self.cursor.stream().clone());
                // A keyframe request is answered by a replay, not a skip forward.
                if jump.reason != JumpReason::KeyframeRequest
                    && let Some(m) = &self.metrics
                {
                    m.gop_jump();
                }
            }
            Recv::Switched { .. } => {
                self.jumps += 1;
                self.continuity.begin_epoch();
                if let Cursor::Room(s) = &self.cursor {
                    self.previous = s.previous().cloned();
                }
                if let Some(m) = &self.metrics {
                    m.switch_event();
                }
            }
            Recv::Items(_) | Recv::Pending | Recv::Closed => {}
        }
        for pkt in &out[start..] {
            let rw = self.continuity.rewrite(pkt);
            self.offsets[lane(pkt.track)] =
                (rw.seq_delta, rw.timestamp.wrapping_sub(pkt.timestamp));
        }
    }

    fn lookup(&self, track: TrackKind, seq16: u16) -> Option<MediaPacket> {
        // The session mapped the viewer's sequence number back with the current offset; undo
        // that to find which epoch sent it.
        let viewer_seq = seq16.wrapping_add(self.offsets[lane(track)].0);
        match self.continuity.source_seq(track, viewer_seq) {
            Some(SourceSeq {
                seq,
                previous_epoch: true,
            }) => self.previous_epoch_packet(track, seq),
            Some(SourceSeq { seq, .. }) => self.cursor.stream().lookup(track, seq),
            None => self.cursor.stream().lookup(track, seq16),
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

    /// One-packet video frames: RTP header (seq, timestamp 3000 apart) and a payload naming
    /// the sequence number.
    fn frame(seq: u64, key: bool) -> MediaPacket {
        let ts = seq as u32 * 3000;
        let mut b = vec![0x80, 0x80 | 96];
        b.extend_from_slice(&(seq as u16).to_be_bytes());
        b.extend_from_slice(&ts.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 1, seq as u8]);
        MediaPacket {
            bytes: Bytes::from(b),
            track: TrackKind::Video,
            seq,
            timestamp: ts,
            marker: true,
            frame_kind: if key {
                FrameKind::Key
            } else {
                FrameKind::Inter
            },
            keyframe_start: key,
            dts_ms: seq as i64 * 33,
            seq_range_offset: None,
        }
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
        // Never sent: nothing (or the stream's own packet of that number, as before).
        assert!(src.lookup(TrackKind::Video, stream_seq(40)).is_none());
    }
}
