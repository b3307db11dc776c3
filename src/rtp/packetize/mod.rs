//! Packetizers: one per track, run once per stream, turning [`Frame`](crate::media::Frame)s into
//! [`MediaPacket`](super::MediaPacket)s with the RTM header extensions.
//!
//! A whole frame is packetized at once, which is what makes frame-seq-range possible: the
//! packetizer plans every packet of the frame first (sizes, which extensions each carries), so
//! it knows the frame's last sequence number before it writes the first packet. It then writes
//! all packets of the frame into one buffer and hands out `Bytes` slices of it: one allocation
//! and one copy of the payload per frame.
//!
//! Which packets carry which extension (see `docs/rtp-extensions.md`):
//! * decoding-timestamp, frame-seq-range: every packet;
//! * frame-type: every video packet;
//! * composition-time: the first packet of a video frame and every packet holding parameter
//!   sets; on audio only the first packet, and only when non-zero;
//! * reference-frame-timestamp: the first packet of a P frame;
//! * aac-config: the first packet of an audio frame after a config change, every
//!   `config_interval` frames, and after [`AudioPacketizer::repeat_config`].

pub mod aac;
mod audio;
pub mod h264;
pub mod h265;
pub mod opus;
mod video;
mod writer;

pub use audio::{AacMode, AudioPacketizer, AudioPacketizerConfig};
pub(crate) use video::NalCodec;
pub use video::{VIDEO_CLOCK_RATE, VideoPacketizer, VideoPacketizerConfig};

use crate::media::Codec;

use super::ext::IdError;

/// Default largest RTP packet (header, extensions and payload; before SRTP): fits any path MTU
/// of 1280 (IPv6 minimum) with room for IP/UDP/SRTP overhead and TURN.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1200;

/// Smallest `max_packet_size` accepted: room for the header, every extension and some payload.
pub const MIN_MAX_PACKET_SIZE: usize = 128;

/// Errors of the packetizers. A frame that fails is not sent and consumes no sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketizeError {
    #[error("packetizer for {expected:?} got a {got:?} frame")]
    CodecMismatch { expected: Codec, got: Codec },
    #[error("{0:?} is not a codec this packetizer handles")]
    UnsupportedCodec(Codec),
    #[error("frame data does not match its codec (NAL units for audio or an AU for video)")]
    WrongData,
    #[error("frame has no payload")]
    EmptyFrame,
    #[error("NAL unit {index} is shorter than its {header}-byte header")]
    ShortNal { index: usize, header: usize },
    #[error("max packet size {0} is outside {MIN_MAX_PACKET_SIZE}..=65535")]
    BadMaxPacketSize(usize),
    #[error("{codec:?} frame of {len} bytes does not fit one packet ({max} bytes of payload)")]
    FrameTooLarge {
        codec: Codec,
        len: usize,
        max: usize,
    },
    #[error("composition offset {0} ms does not fit 32 bits of RTP clock")]
    CompositionOutOfRange(i32),
    #[error("extension ids: {0}")]
    Ids(#[from] IdError),
    #[error("AudioSpecificConfig: {0}")]
    Asc(#[from] aac::AscError),
    #[error("AudioSpecificConfig of {0} bytes is longer than an extension value (255)")]
    AacConfigTooLong(usize),
    #[error("audio sample rate {0} Hz is not a usable RTP clock (needs > 1000)")]
    BadSampleRate(u32),
}
