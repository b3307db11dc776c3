//! The packet the hub shares with every viewer.
//!
//! A stream is packetized exactly once; each [`MediaPacket`] is then handed (by reference
//! count) to every transport shard. The only per-viewer copy of media is the SRTP output, into
//! which a session may rewrite SSRC, sequence number and timestamp (co-host switching, GOP jumps)
//! while it copies: the fields here make that rewrite O(1) without reparsing.

use bytes::Bytes;

use crate::media::{FrameKind, TrackKind};

/// One RTP packet of a stream, ready for SRTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPacket {
    /// The complete RTP packet: 12-byte header (with the track's SSRC and the low 16 bits of
    /// `seq`), RFC 8285 header extensions, payload. No padding.
    pub bytes: Bytes,
    /// Which track of the stream this packet belongs to (each track has its own SSRC and
    /// sequence space).
    pub track: TrackKind,
    /// Extended sequence number: never wraps, so caches can index by it. `bytes` carries the
    /// low 16 bits.
    pub seq: u64,
    /// RTP timestamp (presentation time on the track's RTP clock).
    pub timestamp: u32,
    /// RTP marker bit (last packet of a video frame; set on every audio packet).
    pub marker: bool,
    /// The kind of the frame this packet is part of.
    pub frame_kind: FrameKind,
    /// First packet of a keyframe (including its parameter sets): a viewer may start here.
    pub keyframe_start: bool,
    /// The frame's decoding timestamp in milliseconds (cache bounds by duration, stats).
    pub dts_ms: i64,
    /// Byte offset in `bytes` of the frame-seq-range extension value (first and last sequence
    /// number, each `u16` big-endian), when the packet carries it, so that a session that shifts
    /// sequence numbers can patch the range in its copy.
    pub seq_range_offset: Option<u16>,
}

impl MediaPacket {
    /// Size on the wire before SRTP.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for an empty packet (never produced by a packetizer).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
