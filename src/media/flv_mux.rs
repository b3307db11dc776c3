//! FLV muxing: frames and configurations back into FLV tags, for HTTP-FLV output and for
//! cascading to another server (RTMP carries the same tag bodies without the file framing).
//!
//! H.264 is written as legacy codec id 7. H.265 is written as Enhanced FLV (`hvc1`,
//! SequenceStart / CodedFrames / CodedFramesX) by default, or as legacy codec id 12 for old
//! CDN players ([`HevcMode::Legacy`]). AAC is sound format 10. Opus has no FLV mapping here.

use bytes::{BufMut, Bytes, BytesMut};

use super::amf0::{self, Amf0Error};
use super::flv::{
    CODEC_ID_AVC, CODEC_ID_HEVC, FILE_HEADER_LEN, TAG_AUDIO, TAG_HEADER_LEN, TAG_SCRIPT, TAG_VIDEO,
};
use super::frame::{AudioConfig, Codec, Frame, FrameData, FrameKind, VideoConfig};
use super::h264::{AvcConfig, H264Error};
use super::h265::{H265Error, HevcConfig};

/// How H.265 is signalled in video tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HevcMode {
    /// Enhanced RTMP/FLV v1: `hvc1` FourCC in an ExVideoTagHeader (ffmpeg ≥ 6.1, OBS, SRS).
    #[default]
    Enhanced,
    /// Pre-standard codec id 12 with the AVC tag layout (many Chinese CDNs and players).
    Legacy,
}

/// Why a frame or configuration could not be muxed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    #[error("codec {0:?} cannot be carried in FLV")]
    UnsupportedCodec(Codec),
    #[error("frame data does not match its codec")]
    DataMismatch,
    #[error("composition offset {0} ms does not fit in 24 bits")]
    CtsRange(i32),
    #[error("tag body of {0} bytes exceeds the 24-bit size field")]
    TagTooLarge(usize),
    #[error("NAL unit of {0} bytes exceeds the 32-bit length prefix")]
    NaluTooLarge(usize),
    #[error("H.264: {0}")]
    H264(#[from] H264Error),
    #[error("H.265: {0}")]
    H265(#[from] H265Error),
    #[error("AMF0: {0}")]
    Amf0(#[from] Amf0Error),
}

/// One FLV tag without file framing: what an RTMP audio/video/data message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    pub tag_type: u8,
    /// Milliseconds, wrapping at 2^32 (FLV's 24 bits + TimestampExtended; RTMP's 32 bits).
    pub timestamp: u32,
    pub body: Bytes,
}

/// Largest tag body the 24-bit size field can describe.
const MAX_TAG_BODY: usize = 0xff_ffff;

fn wrap_ts(ms: i64) -> u32 {
    // Two's-complement wrap: FLV/RTMP timestamps are modulo 2^32 and demuxers unwrap them.
    ms as u32
}

fn put_si24(out: &mut BytesMut, v: i32) -> Result<(), MuxError> {
    if !(-(1 << 23)..(1 << 23)).contains(&v) {
        return Err(MuxError::CtsRange(v));
    }
    let b = v.to_be_bytes();
    out.put_slice(&b[1..]);
    Ok(())
}

fn check_size(body: BytesMut) -> Result<Bytes, MuxError> {
    if body.len() > MAX_TAG_BODY {
        return Err(MuxError::TagTooLarge(body.len()));
    }
    Ok(body.freeze())
}

/// The metadata script tag: `name` (usually `onMetaData`) and a map written as an ECMA array.
pub fn metadata_tag(
    name: &str,
    value: &serde_json::Value,
    timestamp: i64,
) -> Result<FlvTag, MuxError> {
    let mut body = Vec::new();
    amf0::encode(&serde_json::Value::String(name.to_owned()), &mut body)?;
    match value {
        serde_json::Value::Object(m) => amf0::encode_ecma_array(m, &mut body)?,
        serde_json::Value::Null => {}
        v => amf0::encode(v, &mut body)?,
    }
    Ok(FlvTag {
        tag_type: TAG_SCRIPT,
        timestamp: wrap_ts(timestamp),
        body: check_size(BytesMut::from(&body[..]))?,
    })
}

/// The video sequence header (avcC / hvcC) for a configuration.
pub fn video_config_tag(
    config: &VideoConfig,
    timestamp: i64,
    hevc: HevcMode,
) -> Result<FlvTag, MuxError> {
    let mut body = BytesMut::new();
    match (config.codec, hevc) {
        (Codec::H264, _) => {
            let (sps, pps) = split_h264_sets(&config.parameter_sets);
            body.put_slice(&[0x10 | CODEC_ID_AVC, 0, 0, 0, 0]);
            body.put_slice(&AvcConfig::build(&sps, &pps)?);
        }
        (Codec::H265, HevcMode::Enhanced) => {
            body.put_u8(0x80 | 0x10); // ExHeader, keyframe, SequenceStart
            body.put_slice(b"hvc1");
            body.put_slice(&HevcConfig::build(&config.parameter_sets)?);
        }
        (Codec::H265, HevcMode::Legacy) => {
            body.put_slice(&[0x10 | CODEC_ID_HEVC, 0, 0, 0, 0]);
            body.put_slice(&HevcConfig::build(&config.parameter_sets)?);
        }
        (c, _) => return Err(MuxError::UnsupportedCodec(c)),
    }
    Ok(FlvTag {
        tag_type: TAG_VIDEO,
        timestamp: wrap_ts(timestamp),
        body: check_size(body)?,
    })
}

fn split_h264_sets(sets: &[Bytes]) -> (Vec<Bytes>, Vec<Bytes>) {
    let sps = sets
        .iter()
        .filter(|n| super::h264::nal_type_of(n) == super::h264::nal_type::SPS)
        .cloned()
        .collect();
    let pps = sets
        .iter()
        .filter(|n| super::h264::nal_type_of(n) == super::h264::nal_type::PPS)
        .cloned()
        .collect();
    (sps, pps)
}

/// The first byte of a legacy AAC audio tag: format 10, "44 kHz", 16-bit, mono/stereo. FLV
/// readers take the real values from the AudioSpecificConfig.
fn aac_tag_byte(stereo: bool) -> u8 {
    0xae | u8::from(stereo)
}

/// The AAC sequence header (AudioSpecificConfig).
pub fn audio_config_tag(config: &AudioConfig, timestamp: i64) -> Result<FlvTag, MuxError> {
    if config.codec != Codec::Aac {
        return Err(MuxError::UnsupportedCodec(config.codec));
    }
    let mut body = BytesMut::with_capacity(2 + config.asc.len());
    body.put_slice(&[aac_tag_byte(config.channels != 1), 0]);
    body.put_slice(&config.asc);
    Ok(FlvTag {
        tag_type: TAG_AUDIO,
        timestamp: wrap_ts(timestamp),
        body: check_size(body)?,
    })
}

/// One frame as a tag. NAL units get 4-byte length prefixes.
pub fn frame_tag(frame: &Frame, hevc: HevcMode) -> Result<FlvTag, MuxError> {
    let timestamp = wrap_ts(frame.dts);
    let body = match (&frame.data, frame.codec) {
        (FrameData::Audio(a), Codec::Aac) => {
            let mut body = BytesMut::with_capacity(2 + a.len());
            body.put_slice(&[aac_tag_byte(true), 1]);
            body.put_slice(a);
            body
        }
        (FrameData::Nalus(nalus), codec @ (Codec::H264 | Codec::H265)) => {
            let frame_type: u8 = if frame.kind == FrameKind::Key { 1 } else { 2 };
            let mut body = BytesMut::with_capacity(8 + frame.data.len() + 4 * nalus.len());
            match (codec, hevc) {
                (Codec::H265, HevcMode::Enhanced) if frame.cts == 0 => {
                    body.put_u8(0x80 | frame_type << 4 | 3); // CodedFramesX: CTS is zero
                    body.put_slice(b"hvc1");
                }
                (Codec::H265, HevcMode::Enhanced) => {
                    body.put_u8(0x80 | frame_type << 4 | 1); // CodedFrames
                    body.put_slice(b"hvc1");
                    put_si24(&mut body, frame.cts)?;
                }
                _ => {
                    let id = if codec == Codec::H264 {
                        CODEC_ID_AVC
                    } else {
                        CODEC_ID_HEVC
                    };
                    body.put_slice(&[frame_type << 4 | id, 1]);
                    put_si24(&mut body, frame.cts)?;
                }
            }
            for nal in nalus {
                let len =
                    u32::try_from(nal.len()).map_err(|_| MuxError::NaluTooLarge(nal.len()))?;
                body.put_u32(len);
                body.put_slice(nal);
            }
            body
        }
        (_, c @ Codec::Opus) => return Err(MuxError::UnsupportedCodec(c)),
        _ => return Err(MuxError::DataMismatch),
    };
    Ok(FlvTag {
        tag_type: if frame.codec.is_video() {
            TAG_VIDEO
        } else {
            TAG_AUDIO
        },
        timestamp,
        body: check_size(body)?,
    })
}

/// Writes an FLV byte stream. Each `write_*` appends to an internal buffer; [`FlvMuxer::take`]
/// hands out what was written so far (the file header comes first), so the muxer never
/// touches a socket.
#[derive(Debug)]
pub struct FlvMuxer {
    hevc: HevcMode,
    out: BytesMut,
}

impl FlvMuxer {
    /// A muxer whose header announces the given tracks.
    pub fn new(has_audio: bool, has_video: bool) -> Self {
        let mut out = BytesMut::with_capacity(64 * 1024);
        out.put_slice(b"FLV");
        out.put_u8(1);
        out.put_u8(u8::from(has_audio) << 2 | u8::from(has_video));
        out.put_u32(FILE_HEADER_LEN as u32);
        out.put_u32(0); // PreviousTagSize0
        Self {
            hevc: HevcMode::default(),
            out,
        }
    }

    /// Chooses how H.265 is signalled (Enhanced FLV by default).
    pub fn with_hevc_mode(mut self, hevc: HevcMode) -> Self {
        self.hevc = hevc;
        self
    }

    /// Appends a tag with its header and PreviousTagSize.
    pub fn write_tag(&mut self, tag: &FlvTag) {
        let len = tag.body.len();
        self.out.reserve(TAG_HEADER_LEN + len + 4);
        self.out.put_u8(tag.tag_type);
        self.out.put_slice(&(len as u32).to_be_bytes()[1..]);
        let ts = tag.timestamp.to_be_bytes();
        self.out.put_slice(&[ts[1], ts[2], ts[3], ts[0]]); // 24 low bits, then TimestampExtended
        self.out.put_slice(&[0, 0, 0]); // stream id
        self.out.put_slice(&tag.body);
        self.out.put_u32((TAG_HEADER_LEN + len) as u32);
    }

    /// Appends a script data tag (`onMetaData` and its map).
    pub fn write_metadata(
        &mut self,
        name: &str,
        value: &serde_json::Value,
        timestamp: i64,
    ) -> Result<(), MuxError> {
        let tag = metadata_tag(name, value, timestamp)?;
        self.write_tag(&tag);
        Ok(())
    }

    /// Appends a video sequence header.
    pub fn write_video_config(
        &mut self,
        config: &VideoConfig,
        timestamp: i64,
    ) -> Result<(), MuxError> {
        let tag = video_config_tag(config, timestamp, self.hevc)?;
        self.write_tag(&tag);
        Ok(())
    }

    /// Appends an AAC sequence header.
    pub fn write_audio_config(
        &mut self,
        config: &AudioConfig,
        timestamp: i64,
    ) -> Result<(), MuxError> {
        let tag = audio_config_tag(config, timestamp)?;
        self.write_tag(&tag);
        Ok(())
    }

    /// Appends one frame.
    pub fn write_frame(&mut self, frame: &Frame) -> Result<(), MuxError> {
        let tag = frame_tag(frame, self.hevc)?;
        self.write_tag(&tag);
        Ok(())
    }

    /// Everything written since the last call.
    pub fn take(&mut self) -> Bytes {
        self.out.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::flv::{DemuxEvent, FlvDemuxer};

    #[test]
    fn cts_out_of_range_is_an_error() {
        let f = Frame {
            codec: Codec::H264,
            kind: FrameKind::Inter,
            dts: 0,
            cts: 1 << 23,
            data: FrameData::Nalus(vec![Bytes::from_static(&[0x41, 0x9a])]),
        };
        assert_eq!(
            frame_tag(&f, HevcMode::Enhanced),
            Err(MuxError::CtsRange(1 << 23))
        );
    }

    #[test]
    fn extended_timestamp_round_trips() {
        let mut m = FlvMuxer::new(true, false);
        let asc = Bytes::from_static(&[0x12, 0x10]);
        let config = AudioConfig {
            codec: Codec::Aac,
            asc,
            object_type: 2,
            sample_rate: 44100,
            channels: 2,
        };
        m.write_audio_config(&config, 0).unwrap();
        let dts = 0x1_2345_6789_i64 & 0xffff_ffff; // uses the TimestampExtended byte
        let frame = Frame {
            codec: Codec::Aac,
            kind: FrameKind::Audio,
            dts,
            cts: 0,
            data: FrameData::Audio(Bytes::from_static(&[1, 2, 3])),
        };
        m.write_frame(&frame).unwrap();
        let mut d = FlvDemuxer::new();
        d.push(&m.take());
        assert_eq!(d.poll().unwrap(), Some(DemuxEvent::AudioConfig(config)));
        assert_eq!(d.poll().unwrap(), Some(DemuxEvent::Frame(frame)));
        assert_eq!(d.poll().unwrap(), None);
    }

    #[test]
    fn opus_is_rejected() {
        let f = Frame {
            codec: Codec::Opus,
            kind: FrameKind::Audio,
            dts: 0,
            cts: 0,
            data: FrameData::Audio(Bytes::new()),
        };
        assert_eq!(
            frame_tag(&f, HevcMode::Enhanced),
            Err(MuxError::UnsupportedCodec(Codec::Opus))
        );
    }
}
