//! The unit that flows from demuxers to packetizers: one access unit of one track.
//!
//! Timestamps are integer **milliseconds**, the timebase of FLV and RTMP, which is what every
//! origin and ingest path of an edge delivers. Packetizers map them onto RTP clocks (90 kHz for
//! video, the sample rate for audio); `docs/rtp-extensions.md` says exactly how.

use bytes::Bytes;

/// Codec of one elementary stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    H264,
    H265,
    Aac,
    Opus,
}

impl Codec {
    /// Whether this codec carries video (and so NAL units and a 90 kHz RTP clock).
    pub fn is_video(self) -> bool {
        matches!(self, Codec::H264 | Codec::H265)
    }

    /// The track kind this codec belongs to.
    pub fn track(self) -> TrackKind {
        if self.is_video() {
            TrackKind::Video
        } else {
            TrackKind::Audio
        }
    }
}

/// Audio or video: the two tracks a live stream has at most one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Audio,
    Video,
}

/// What a frame is to a decoder. A player uses this to start on a keyframe and, on a weak
/// network, to skip B-frames (nothing references them) without parsing slice headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameKind {
    /// An IDR/IRAP picture: decoding can start here. Carries the parameter sets in front.
    Key,
    /// A P picture (references earlier pictures only).
    Inter,
    /// A B picture: may reference later pictures; decode order differs from presentation order.
    B,
    /// An audio access unit.
    Audio,
}

/// The payload of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameData {
    /// H.264/H.265 NAL units, each **without** start code or length prefix, in decode order.
    /// For a keyframe the parameter sets (VPS/SPS/PPS) come first, so every keyframe is
    /// self-contained. The `Bytes` slice the demuxer's input buffer: no copy.
    Nalus(Vec<Bytes>),
    /// One raw audio access unit (AAC without ADTS header, or one Opus packet).
    Audio(Bytes),
}

impl FrameData {
    /// Total payload bytes (NAL unit bodies, without start codes).
    pub fn len(&self) -> usize {
        match self {
            FrameData::Nalus(n) => n.iter().map(Bytes::len).sum(),
            FrameData::Audio(a) => a.len(),
        }
    }

    /// True when there is no payload at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The NAL units in Annex-B form (each prefixed by a 4-byte start code), for decoders and
    /// files that want it. Allocates; the media path never calls this.
    pub fn to_annex_b(&self) -> Vec<u8> {
        match self {
            FrameData::Nalus(n) => {
                let mut out = Vec::with_capacity(self.len() + 4 * n.len());
                for nal in n {
                    out.extend_from_slice(&[0, 0, 0, 1]);
                    out.extend_from_slice(nal);
                }
                out
            }
            FrameData::Audio(a) => a.to_vec(),
        }
    }
}

/// One access unit of one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub codec: Codec,
    pub kind: FrameKind,
    /// Decoding timestamp, milliseconds, monotonic non-decreasing within a track.
    pub dts: i64,
    /// Composition offset, milliseconds: presentation time = `dts + cts`. Zero for audio and for
    /// streams without B-frames; may be negative in some muxers' output.
    pub cts: i32,
    pub data: FrameData,
}

impl Frame {
    /// Presentation timestamp in milliseconds.
    pub fn pts(&self) -> i64 {
        self.dts + i64::from(self.cts)
    }

    /// Whether decoding can start at this frame.
    pub fn is_key(&self) -> bool {
        self.kind == FrameKind::Key
    }
}

/// Decoder configuration of a video track, as learnt from the sequence header (avcC/hvcC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    pub codec: Codec,
    /// Parameter sets in the order a decoder wants them: (VPS,) SPS, PPS. Without start codes.
    pub parameter_sets: Vec<Bytes>,
    pub width: u32,
    pub height: u32,
    /// H.264: `profile_idc`, `constraint_set` flags, `level_idc` (the SDP `profile-level-id`).
    /// H.265: general_profile_idc, tier flag (0/1) and general_level_idc.
    pub profile: u8,
    pub constraints: u8,
    pub level: u8,
}

/// Decoder configuration of an audio track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    pub codec: Codec,
    /// The AAC AudioSpecificConfig (ISO 14496-3), empty for Opus.
    pub asc: Bytes,
    /// AAC audio object type (2 = LC, 5 = HE/SBR, 29 = HEv2/PS); 0 for Opus.
    pub object_type: u8,
    /// Output sample rate in Hz: the RTP clock rate of the track.
    pub sample_rate: u32,
    pub channels: u8,
}
