//! FLV demuxing: the file/HTTP-FLV byte stream ([`FlvDemuxer`]) and the tag bodies RTMP
//! delivers ([`TagDemuxer`]), both producing [`DemuxEvent`]s built on the shared frame types.
//!
//! Accepted video: H.264 (codec id 7), H.265 as legacy codec id 12 (the pre-standard layout
//! Chinese CDNs use: AVC tag header with an hvcC record) and as Enhanced FLV/RTMP (`hvc1`, also
//! `avc1`) with PacketTypes SequenceStart, CodedFrames, CodedFramesX, SequenceEnd and Metadata.
//! Audio: AAC (sound format 10). See `docs/media.md` for the full behaviour.

mod demux;
mod tag;
mod timestamp;

pub use demux::{FlvDemuxer, FlvHeader};
pub use tag::TagDemuxer;
pub use timestamp::TimestampUnwrapper;

use super::aac::AacError;
use super::amf0::Amf0Error;
use super::frame::{AudioConfig, Frame, VideoConfig};
use super::h264::H264Error;
use super::h265::H265Error;

/// FLV tag type of audio tags (also the RTMP message type id).
pub const TAG_AUDIO: u8 = 8;
/// FLV tag type of video tags.
pub const TAG_VIDEO: u8 = 9;
/// FLV tag type of AMF0 script data.
pub const TAG_SCRIPT: u8 = 18;

/// Length of the FLV file header written by muxers (signature, version, flags, offset).
pub const FILE_HEADER_LEN: usize = 9;
/// Length of a tag header (type, size, timestamp + extension, stream id).
pub const TAG_HEADER_LEN: usize = 11;

/// Legacy video codec id of H.264.
pub const CODEC_ID_AVC: u8 = 7;
/// Legacy video codec id of H.265 (pre-Enhanced-RTMP, non-standard but widely deployed).
pub const CODEC_ID_HEVC: u8 = 12;
/// Sound format of AAC.
pub const SOUND_FORMAT_AAC: u8 = 10;

/// What the demuxers produce, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum DemuxEvent {
    /// Script data (`onMetaData`) or an Enhanced FLV video `Metadata` packet (`colorInfo`).
    Metadata(Metadata),
    /// A new or changed video decoder configuration (sequence header or in-band parameter sets).
    VideoConfig(VideoConfig),
    /// A new or changed audio configuration (AAC sequence header).
    AudioConfig(AudioConfig),
    /// One access unit.
    Frame(Frame),
}

/// A named AMF0 value: `onMetaData` and its ECMA array, or `colorInfo` and its object.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub name: String,
    pub value: serde_json::Value,
}

/// Why FLV input was rejected. Framing errors (signature, header) are fatal to a
/// [`FlvDemuxer`]; tag-level errors reject that one tag and demuxing continues with the next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    #[error("not an FLV stream (bad signature)")]
    BadSignature,
    #[error("FLV header data offset {0} is invalid")]
    BadDataOffset(u32),
    #[error("stream ended inside a tag ({0} bytes buffered)")]
    Truncated(usize),
    #[error("tag body too short for its {0} header")]
    ShortTag(&'static str),
    #[error("encrypted (filtered) tags are not supported")]
    Encrypted,
    #[error("video codec id {0} is not supported")]
    UnsupportedVideoCodec(u8),
    #[error("Enhanced FLV FourCC {0:?} is not supported")]
    UnsupportedFourCc([u8; 4]),
    #[error("sound format {0} is not supported")]
    UnsupportedAudioCodec(u8),
    #[error("{0} is not supported")]
    Unsupported(&'static str),
    #[error("unknown packet type {0}")]
    UnknownPacketType(u8),
    #[error("NAL unit length {len} overruns the {remaining} bytes left in the tag")]
    NaluOverrun { len: usize, remaining: usize },
    #[error("frame references a parameter set the stream has not sent")]
    MissingParameterSet,
    #[error("video codec changed without a sequence header")]
    CodecMismatch,
    #[error("H.264: {0}")]
    H264(#[from] H264Error),
    #[error("H.265: {0}")]
    H265(#[from] H265Error),
    #[error("AAC: {0}")]
    Aac(#[from] AacError),
    #[error("AMF0: {0}")]
    Amf0(#[from] Amf0Error),
}
