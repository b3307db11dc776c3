//! What the player needs to know about one received RTP packet.
//!
//! The wire parsing (RTP header, RFC 8285 extensions, the RTM extension value layouts) belongs
//! to `rtmlive::rtp`; this type is the player's digest of its result, so that reassembly, the
//! jitter buffer and the NACK scheduler can be tested without building wire packets.

use bytes::Bytes;
use rtmlive::media::{FrameKind, TrackKind};

/// Per-frame facts carried by the RTM header extensions, when the session negotiated them.
/// Every field is optional: a WHEP session with plain RTP has none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameMeta {
    /// Decoding timestamp in milliseconds (decoding-timestamp extension).
    pub dts_ms: Option<i64>,
    /// Composition offset in milliseconds (composition-time extension; PTS = DTS + CTS).
    pub cts_ms: Option<i32>,
    /// First and last RTP sequence number of the frame (frame-seq-range extension).
    pub seq_range: Option<(u16, u16)>,
    /// The frame's type (frame-type extension).
    pub kind: Option<FrameKind>,
}

/// One received (already SRTP-authenticated) RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpIn {
    pub track: TrackKind,
    pub ssrc: u32,
    pub seq: u16,
    /// RTP timestamp: presentation time on the track clock.
    pub timestamp: u32,
    pub marker: bool,
    /// The RTP payload (after header and extensions).
    pub payload: Bytes,
    /// The whole decrypted packet (for a depacketizer that re-reads the header); shares the
    /// same buffer as `payload`.
    pub raw: Bytes,
    pub meta: FrameMeta,
}

/// RTP clock rate used to turn timestamps into milliseconds when no DTS extension is present.
pub fn clock_rate(track: TrackKind, audio_rate: u32) -> u32 {
    match track {
        TrackKind::Video => 90_000,
        TrackKind::Audio => audio_rate.max(1),
    }
}
