//! Tag-level demuxing: one FLV tag body (the payload RTMP audio/video/data messages carry, and
//! what [`super::FlvDemuxer`] cuts out of a file) in, [`DemuxEvent`]s out.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::{CODEC_ID_AVC, CODEC_ID_HEVC, SOUND_FORMAT_AAC, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use super::{DemuxEvent, FlvError, Metadata, TimestampUnwrapper};
use crate::media::aac::AudioSpecificConfig;
use crate::media::amf0;
use crate::media::frame::{AudioConfig, Codec, Frame, FrameData, FrameKind, VideoConfig};
use crate::media::{h264, h265};

/// RTMP message type of AMF3-framed data messages (`@setDataFrame` from some publishers).
const RTMP_DATA_AMF3: u8 = 15;

/// Legacy and enhanced `FrameType` value of video info/command frames (no picture).
const FRAME_TYPE_COMMAND: u8 = 5;

/// Enhanced FLV video PacketTypes.
mod packet_type {
    pub const SEQUENCE_START: u8 = 0;
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    pub const CODED_FRAMES_X: u8 = 3;
    pub const METADATA: u8 = 4;
    pub const MPEG2TS_SEQUENCE_START: u8 = 5;
    pub const MULTITRACK: u8 = 6;
    pub const MOD_EX: u8 = 7;
}

/// Demuxes FLV tag bodies. Feed tags with [`TagDemuxer::push_tag`], drain events with
/// [`TagDemuxer::poll`]. Holds the codec state (parameter sets, NAL length size, timestamp
/// unwrapping) that survives between tags.
#[derive(Debug, Default)]
pub struct TagDemuxer {
    video: VideoTrack,
    audio: AudioTrack,
    events: VecDeque<DemuxEvent>,
}

#[derive(Debug, Default)]
struct AudioTrack {
    clock: TimestampUnwrapper,
    config: Option<AudioConfig>,
}

#[derive(Debug)]
struct VideoTrack {
    clock: TimestampUnwrapper,
    codec: Option<Codec>,
    length_size: u8,
    params: ParameterSets,
    config: Option<VideoConfig>,
}

impl Default for VideoTrack {
    fn default() -> Self {
        Self {
            clock: TimestampUnwrapper::new(),
            codec: None,
            length_size: 4,
            params: ParameterSets::default(),
            config: None,
        }
    }
}

impl VideoTrack {
    /// Fixes the track's codec at its first coded frame: a stream that later switches codec
    /// without a new sequence header is refused rather than mis-parsed.
    fn adopt_codec(&mut self, codec: Codec) -> Result<(), FlvError> {
        match self.codec {
            None => self.codec = Some(codec),
            Some(c) if c != codec => return Err(FlvError::CodecMismatch),
            Some(_) => {}
        }
        Ok(())
    }
}

/// The parameter sets in force, by id (H.264 has no VPS). Bounded by the id ranges the parsers
/// enforce (VPS ≤ 15, SPS ≤ 31, PPS ≤ 255).
#[derive(Debug, Default)]
struct ParameterSets {
    vps: BTreeMap<u32, Bytes>,
    sps: BTreeMap<u32, Bytes>,
    pps: BTreeMap<u32, Bytes>,
    hevc_pps: BTreeMap<u32, h265::Pps>,
}

/// Which parameter set kinds one access unit carried in band.
#[derive(Debug, Default, Clone, Copy)]
struct InBand {
    vps: bool,
    sps: bool,
    pps: bool,
}

impl ParameterSets {
    fn ordered(&self) -> Vec<Bytes> {
        self.vps
            .values()
            .chain(self.sps.values())
            .chain(self.pps.values())
            .cloned()
            .collect()
    }

    /// Records a NAL unit if it is a parameter set; returns whether it changed the state.
    fn observe(&mut self, codec: Codec, nal: &Bytes, seen: &mut InBand) -> Result<bool, FlvError> {
        let (map, id) = match codec {
            Codec::H264 => match h264::nal_type_of(nal) {
                h264::nal_type::SPS => {
                    seen.sps = true;
                    (&mut self.sps, h264::Sps::parse(nal)?.sps_id)
                }
                h264::nal_type::PPS => {
                    seen.pps = true;
                    (&mut self.pps, h264::Pps::parse(nal)?.pps_id)
                }
                _ => return Ok(false),
            },
            _ => match h265::nal_type_of(nal) {
                h265::nal_type::VPS => {
                    seen.vps = true;
                    (&mut self.vps, h265::vps_id(nal)?)
                }
                h265::nal_type::SPS => {
                    seen.sps = true;
                    (&mut self.sps, h265::Sps::parse(nal)?.sps_id)
                }
                h265::nal_type::PPS => {
                    seen.pps = true;
                    let pps = h265::Pps::parse(nal)?;
                    self.hevc_pps.insert(pps.pps_id, pps);
                    (&mut self.pps, pps.pps_id)
                }
                _ => return Ok(false),
            },
        };
        if map.get(&id) == Some(nal) {
            return Ok(false);
        }
        map.insert(id, nal.clone());
        Ok(true)
    }

    fn build_config(&self, codec: Codec) -> Result<VideoConfig, FlvError> {
        let first_sps = self
            .sps
            .values()
            .next()
            .ok_or(FlvError::MissingParameterSet)?;
        let (width, height, profile, constraints, level) = match codec {
            Codec::H264 => {
                let s = h264::Sps::parse(first_sps)?;
                (s.width, s.height, s.profile_idc, s.constraints, s.level_idc)
            }
            _ => {
                let s = h265::Sps::parse(first_sps)?;
                (
                    s.width,
                    s.height,
                    s.ptl.profile_idc,
                    u8::from(s.ptl.tier_flag),
                    s.ptl.level_idc,
                )
            }
        };
        Ok(VideoConfig {
            codec,
            parameter_sets: self.ordered(),
            width,
            height,
            profile,
            constraints,
            level,
        })
    }
}

fn si24(b: [u8; 3]) -> i32 {
    // Sign-extend a big-endian 24-bit value.
    (i32::from_be_bytes([b[0], b[1], b[2], 0])) >> 8
}

impl TagDemuxer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next event produced by the tags pushed so far.
    pub fn poll(&mut self) -> Option<DemuxEvent> {
        self.events.pop_front()
    }

    /// The current video configuration, if a sequence header (or in-band SPS) was seen.
    pub fn video_config(&self) -> Option<&VideoConfig> {
        self.video.config.as_ref()
    }

    /// The current audio configuration, if an AAC sequence header was seen.
    pub fn audio_config(&self) -> Option<&AudioConfig> {
        self.audio.config.as_ref()
    }

    /// Demuxes one tag body. `tag_type` is the FLV tag type / RTMP message type (8 audio,
    /// 9 video, 18 script data, 15 RTMP AMF3 data; others are ignored), `timestamp` the full 32-bit millisecond
    /// timestamp. On error nothing from this tag is emitted and the state stays usable.
    pub fn push_tag(&mut self, tag_type: u8, timestamp: u32, body: Bytes) -> Result<(), FlvError> {
        match tag_type {
            TAG_VIDEO => self.video_tag(timestamp, body),
            TAG_AUDIO => self.audio_tag(timestamp, body),
            TAG_SCRIPT => self.script_tag(&body),
            // RTMP AMF3 data message: a format byte, then (in practice) AMF0 values.
            RTMP_DATA_AMF3 => self.script_tag(body.get(1..).unwrap_or_default()),
            _ => Ok(()),
        }
    }

    fn script_tag(&mut self, body: &[u8]) -> Result<(), FlvError> {
        let mut d = amf0::Decoder::new(body);
        let mut name = d.value()?;
        // RTMP publishers wrap metadata as `@setDataFrame("onMetaData", {...})`.
        if name.as_str() == Some("@setDataFrame") {
            name = d.value()?;
        }
        let name = match name {
            serde_json::Value::String(s) => s,
            _ => return Err(FlvError::ShortTag("script data name")),
        };
        let value = if d.is_empty() {
            serde_json::Value::Null
        } else {
            d.value()?
        };
        self.events
            .push_back(DemuxEvent::Metadata(Metadata { name, value }));
        Ok(())
    }

    fn audio_tag(&mut self, timestamp: u32, body: Bytes) -> Result<(), FlvError> {
        let [b0, packet_type, ..] = *body.as_ref() else {
            return Err(FlvError::ShortTag("audio"));
        };
        let format = b0 >> 4;
        if format == 9 {
            return Err(FlvError::Unsupported(
                "Enhanced FLV audio (ExAudioTagHeader)",
            ));
        }
        if format != SOUND_FORMAT_AAC {
            return Err(FlvError::UnsupportedAudioCodec(format));
        }
        let payload = body.slice(2..);
        match packet_type {
            0 => {
                let asc = AudioSpecificConfig::parse(&payload)?;
                let channels = match asc.output_channels() {
                    0 => (b0 & 1) + 1, // channel layout in a PCE: trust the tag's mono/stereo bit
                    c => c,
                };
                let config = AudioConfig {
                    codec: Codec::Aac,
                    asc: payload,
                    object_type: asc.effective_object_type(),
                    sample_rate: asc.output_sample_rate(),
                    channels,
                };
                if self.audio.config.as_ref() != Some(&config) {
                    self.audio.config = Some(config.clone());
                    self.events.push_back(DemuxEvent::AudioConfig(config));
                }
                Ok(())
            }
            1 => {
                let dts = self.audio.clock.unwrap(timestamp);
                self.events.push_back(DemuxEvent::Frame(Frame {
                    codec: Codec::Aac,
                    kind: FrameKind::Audio,
                    dts,
                    cts: 0,
                    data: FrameData::Audio(payload),
                }));
                Ok(())
            }
            other => Err(FlvError::UnknownPacketType(other)),
        }
    }

    fn video_tag(&mut self, timestamp: u32, body: Bytes) -> Result<(), FlvError> {
        let b0 = *body.first().ok_or(FlvError::ShortTag("video"))?;
        if b0 & 0x80 != 0 {
            return self.enhanced_video_tag(b0, timestamp, body);
        }
        let frame_type = b0 >> 4;
        let codec = match b0 & 0x0f {
            CODEC_ID_AVC => Codec::H264,
            CODEC_ID_HEVC => Codec::H265,
            other => return Err(FlvError::UnsupportedVideoCodec(other)),
        };
        if frame_type == FRAME_TYPE_COMMAND {
            return Ok(());
        }
        let [_, packet, c0, c1, c2, ..] = *body.as_ref() else {
            return Err(FlvError::ShortTag("AVC video"));
        };
        let payload = body.slice(5..);
        match packet {
            0 => self.sequence_start(codec, &payload),
            1 => self.coded_frames(codec, timestamp, si24([c0, c1, c2]), payload),
            2 => Ok(()), // end of sequence: nothing to emit
            other => Err(FlvError::UnknownPacketType(other)),
        }
    }

    fn enhanced_video_tag(&mut self, b0: u8, timestamp: u32, body: Bytes) -> Result<(), FlvError> {
        let frame_type = (b0 >> 4) & 7;
        let packet = b0 & 0x0f;
        match packet {
            packet_type::MULTITRACK => {
                return Err(FlvError::Unsupported("Enhanced FLV multitrack video"));
            }
            packet_type::MOD_EX => {
                return Err(FlvError::Unsupported("Enhanced FLV ModEx video packet"));
            }
            _ => {}
        }
        let fourcc: [u8; 4] = body
            .get(1..5)
            .and_then(|s| s.try_into().ok())
            .ok_or(FlvError::ShortTag("Enhanced FLV video"))?;
        let codec = match &fourcc {
            b"hvc1" => Codec::H265,
            b"avc1" => Codec::H264,
            _ => return Err(FlvError::UnsupportedFourCc(fourcc)),
        };
        if frame_type == FRAME_TYPE_COMMAND && packet != packet_type::METADATA {
            return Ok(());
        }
        let payload = body.slice(5..);
        match packet {
            packet_type::SEQUENCE_START => self.sequence_start(codec, &payload),
            packet_type::CODED_FRAMES => {
                let [c0, c1, c2, ..] = *payload.as_ref() else {
                    return Err(FlvError::ShortTag("Enhanced FLV CodedFrames"));
                };
                self.coded_frames(codec, timestamp, si24([c0, c1, c2]), payload.slice(3..))
            }
            packet_type::CODED_FRAMES_X => self.coded_frames(codec, timestamp, 0, payload),
            packet_type::SEQUENCE_END => Ok(()),
            packet_type::METADATA => self.script_tag(&payload),
            packet_type::MPEG2TS_SEQUENCE_START => {
                Err(FlvError::Unsupported("MPEG2TSSequenceStart"))
            }
            other => Err(FlvError::UnknownPacketType(other)),
        }
    }

    fn sequence_start(&mut self, codec: Codec, record: &Bytes) -> Result<(), FlvError> {
        let (length_size, nalus) = match codec {
            Codec::H264 => {
                let c = h264::AvcConfig::parse(record)?;
                (
                    c.length_size,
                    c.sps.into_iter().chain(c.pps).collect::<Vec<_>>(),
                )
            }
            _ => {
                let c = h265::HevcConfig::parse(record)?;
                (c.length_size, c.nalus)
            }
        };
        // Parse into a fresh set first so a bad record leaves the old state intact.
        let mut params = ParameterSets::default();
        let mut seen = InBand::default();
        for nal in &nalus {
            params.observe(codec, nal, &mut seen)?;
        }
        let config = params.build_config(codec)?;
        let v = &mut self.video;
        v.codec = Some(codec);
        v.length_size = length_size;
        v.params = params;
        if v.config.as_ref() != Some(&config) {
            v.config = Some(config.clone());
            self.events.push_back(DemuxEvent::VideoConfig(config));
        }
        Ok(())
    }

    fn coded_frames(
        &mut self,
        codec: Codec,
        timestamp: u32,
        cts: i32,
        data: Bytes,
    ) -> Result<(), FlvError> {
        self.video.adopt_codec(codec)?;
        let nalus = split_nalus(&data, self.video.length_size)?;
        if nalus.is_empty() {
            return Ok(());
        }
        self.access_unit(codec, cts, nalus, |clock| clock.unwrap(timestamp))
    }

    /// Demuxes one video access unit that arrived as NAL units outside FLV (WHIP's RTP), with
    /// its timestamps already on a millisecond line. Parameter sets are tracked exactly as for
    /// FLV input: a new or changed SPS/PPS emits a [`DemuxEvent::VideoConfig`], and keyframes
    /// get the parameter sets in front.
    pub fn push_video_nalus(
        &mut self,
        codec: Codec,
        dts: i64,
        cts: i32,
        nalus: Vec<Bytes>,
    ) -> Result<(), FlvError> {
        self.video.adopt_codec(codec)?;
        let nalus: Vec<Bytes> = nalus.into_iter().filter(|n| !n.is_empty()).collect();
        if nalus.is_empty() {
            return Ok(());
        }
        self.access_unit(codec, cts, nalus, |_| dts)
    }

    /// The NAL units of one access unit: parameter sets, kind, config changes, the frame.
    /// `dts` is asked for only once the access unit is known good.
    fn access_unit(
        &mut self,
        codec: Codec,
        cts: i32,
        nalus: Vec<Bytes>,
        dts: impl FnOnce(&mut TimestampUnwrapper) -> i64,
    ) -> Result<(), FlvError> {
        let v = &mut self.video;
        // Parameter sets first: this frame's slice header may reference a PPS it carries.
        let mut seen = InBand::default();
        let mut changed = false;
        for nal in &nalus {
            changed |= v.params.observe(codec, nal, &mut seen)?;
        }
        let kind = classify(codec, &nalus, &v.params)?;
        let new_config = if changed {
            Some(v.params.build_config(codec)?)
        } else {
            None
        };
        let mut out = nalus;
        if kind == FrameKind::Key {
            let complete = seen.sps && seen.pps && (codec == Codec::H264 || seen.vps);
            if !complete {
                let sets = v.params.ordered();
                if sets.is_empty() {
                    return Err(FlvError::MissingParameterSet);
                }
                out.splice(0..0, sets);
            }
        }
        if let Some(config) = new_config
            && v.config.as_ref() != Some(&config)
        {
            v.config = Some(config.clone());
            self.events.push_back(DemuxEvent::VideoConfig(config));
        }
        let dts = dts(&mut v.clock);
        self.events.push_back(DemuxEvent::Frame(Frame {
            codec,
            kind,
            dts,
            cts,
            data: FrameData::Nalus(out),
        }));
        Ok(())
    }
}

/// Splits length-prefixed NAL units into zero-copy slices; empty NAL units are dropped.
pub(crate) fn split_nalus(data: &Bytes, length_size: u8) -> Result<Vec<Bytes>, FlvError> {
    let n = usize::from(length_size);
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let prefix = data.get(pos..pos + n).ok_or(FlvError::NaluOverrun {
            len: n,
            remaining: data.len() - pos,
        })?;
        let len = prefix
            .iter()
            .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
        pos += n;
        let remaining = data.len() - pos;
        if len > remaining {
            return Err(FlvError::NaluOverrun { len, remaining });
        }
        if len > 0 {
            out.push(data.slice(pos..pos + len));
        }
        pos += len;
    }
    Ok(out)
}

/// Key for IDR/IRAP pictures; otherwise B or Inter from the first slice's `slice_type`.
fn classify(codec: Codec, nalus: &[Bytes], params: &ParameterSets) -> Result<FrameKind, FlvError> {
    match codec {
        Codec::H264 => {
            if nalus
                .iter()
                .any(|n| h264::nal_type_of(n) == h264::nal_type::IDR)
            {
                return Ok(FrameKind::Key);
            }
            match nalus
                .iter()
                .find(|n| h264::nal_type_of(n) == h264::nal_type::SLICE)
            {
                Some(slice) => Ok(match h264::SliceHeader::parse(slice)?.slice_type {
                    h264::SliceType::B => FrameKind::B,
                    _ => FrameKind::Inter,
                }),
                None => Ok(FrameKind::Inter),
            }
        }
        _ => {
            let mut vcl = nalus.iter().filter(|n| h265::is_vcl(h265::nal_type_of(n)));
            let Some(first) = vcl.next() else {
                return Ok(FrameKind::Inter);
            };
            if h265::is_irap(h265::nal_type_of(first)) {
                return Ok(FrameKind::Key);
            }
            let header = h265::SliceHeader::parse(first, |id| params.hevc_pps.get(&id).copied())?;
            Ok(match header.slice_type {
                Some(h265::SliceType::B) => FrameKind::B,
                _ => FrameKind::Inter,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_extends_cts() {
        assert_eq!(si24([0xff, 0xff, 0xff]), -1);
        assert_eq!(si24([0x00, 0x00, 0x50]), 80);
        assert_eq!(si24([0x80, 0, 0]), -(1 << 23));
    }

    #[test]
    fn split_rejects_overrun() {
        let d = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 9, 1]);
        assert_eq!(
            split_nalus(&d, 4),
            Err(FlvError::NaluOverrun {
                len: 9,
                remaining: 1
            })
        );
        let d = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88, 0, 0]);
        assert!(split_nalus(&d, 4).is_err());
        let d = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 0]);
        assert_eq!(split_nalus(&d, 4).unwrap().len(), 1);
    }

    #[test]
    fn frame_before_sequence_header_without_sets_is_an_error() {
        let mut d = TagDemuxer::new();
        // Legacy AVC keyframe with one IDR NAL and no parameter sets anywhere.
        let body = Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]);
        assert_eq!(
            d.push_tag(TAG_VIDEO, 0, body),
            Err(FlvError::MissingParameterSet)
        );
        assert_eq!(d.poll(), None);
    }

    const SPS_320X240: &[u8] = &[
        0x67, 0x4d, 0x40, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const SPS_1080P: &[u8] = &[
        0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03,
        0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc9, 0x20,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xcc, 0xb2];

    fn avc_frame(key: bool, cts: i32, nalus: &[&[u8]]) -> Bytes {
        let mut b = vec![if key { 0x17 } else { 0x27 }, 1];
        b.extend_from_slice(&cts.to_be_bytes()[1..]);
        for n in nalus {
            b.extend_from_slice(&(n.len() as u32).to_be_bytes());
            b.extend_from_slice(n);
        }
        Bytes::from(b)
    }

    fn sequence_header(sps: &[u8]) -> Bytes {
        let rec =
            h264::AvcConfig::build(&[Bytes::copy_from_slice(sps)], &[Bytes::from_static(PPS)])
                .unwrap();
        Bytes::from([&[0x17u8, 0, 0, 0, 0][..], &rec].concat())
    }

    #[test]
    fn keyframes_get_parameter_sets_and_in_band_changes_reconfigure() {
        let mut d = TagDemuxer::new();
        d.push_tag(TAG_VIDEO, 0, sequence_header(SPS_320X240))
            .unwrap();
        let Some(DemuxEvent::VideoConfig(c)) = d.poll() else {
            panic!("config first")
        };
        assert_eq!((c.width, c.height), (320, 240));
        // A keyframe without parameter sets gets the tracked ones in front.
        let idr: &[u8] = &[0x65, 0x88, 0x84];
        d.push_tag(TAG_VIDEO, 40, avc_frame(true, 0, &[idr]))
            .unwrap();
        let Some(DemuxEvent::Frame(f)) = d.poll() else {
            panic!("frame")
        };
        assert_eq!(f.kind, FrameKind::Key);
        assert_eq!(
            f.data,
            FrameData::Nalus(vec![
                Bytes::from_static(SPS_320X240),
                Bytes::from_static(PPS),
                Bytes::from_static(idr)
            ])
        );
        // In-band SPS with a new resolution: a new config, then the frame as sent.
        d.push_tag(TAG_VIDEO, 80, avc_frame(true, 0, &[SPS_1080P, PPS, idr]))
            .unwrap();
        let Some(DemuxEvent::VideoConfig(c)) = d.poll() else {
            panic!("new config")
        };
        assert_eq!((c.width, c.height), (1920, 1080));
        let Some(DemuxEvent::Frame(f)) = d.poll() else {
            panic!("frame")
        };
        assert_eq!(
            f.data,
            FrameData::Nalus(vec![
                Bytes::from_static(SPS_1080P),
                Bytes::from_static(PPS),
                Bytes::from_static(idr)
            ])
        );
        // A sequence header replaces all sets: back to 320x240 is a change, and the same
        // header again (an RTMP republish) is not.
        d.push_tag(TAG_VIDEO, 120, sequence_header(SPS_320X240))
            .unwrap();
        assert!(matches!(d.poll(), Some(DemuxEvent::VideoConfig(_))));
        d.push_tag(TAG_VIDEO, 120, sequence_header(SPS_320X240))
            .unwrap();
        assert_eq!(d.poll(), None);
    }

    #[test]
    fn slice_type_not_cts_decides_b_frames() {
        let mut d = TagDemuxer::new();
        d.push_tag(TAG_VIDEO, 0, sequence_header(SPS_320X240))
            .unwrap();
        d.poll();
        // P slice (first_mb 0, slice_type 5) with a CTS, as P-frames after B-frames have.
        d.push_tag(TAG_VIDEO, 40, avc_frame(false, 80, &[&[0x41, 0b1001_1010]]))
            .unwrap();
        let Some(DemuxEvent::Frame(f)) = d.poll() else {
            panic!()
        };
        assert_eq!((f.kind, f.cts, f.pts()), (FrameKind::Inter, 80, 120));
        // B slice (slice_type 1) with CTS 0.
        d.push_tag(TAG_VIDEO, 80, avc_frame(false, 0, &[&[0x01, 0b1010_1000]]))
            .unwrap();
        let Some(DemuxEvent::Frame(f)) = d.poll() else {
            panic!()
        };
        assert_eq!(f.kind, FrameKind::B);
    }

    #[test]
    fn timestamps_unwrap_across_the_32_bit_boundary() {
        let mut d = TagDemuxer::new();
        let mut dts = Vec::new();
        for ts in [u32::MAX - 30, u32::MAX - 7, 16, 39] {
            d.push_tag(TAG_AUDIO, ts, Bytes::from_static(&[0xaf, 1, 0x21]))
                .unwrap();
            let Some(DemuxEvent::Frame(f)) = d.poll() else {
                panic!()
            };
            dts.push(f.dts);
        }
        let base = i64::from(u32::MAX) - 30;
        assert_eq!(dts, vec![base, base + 23, base + 47, base + 70]);
    }
}
