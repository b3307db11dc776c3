//! The producer side of a stream: demuxed events in, packets and frames into the [`Stream`].
//!
//! Every input (origin pull, RTMP publish, WHIP, the demo source) ends here, so a stream is
//! packetized exactly once whatever its source. The publisher also hides source changes from
//! viewers: when an origin fails over to a backup, or a broadcaster reconnects, the new
//! source's timestamps start wherever that source likes, but the stream's timeline and RTP
//! sequence numbers continue (see [`Publisher::begin_source`]).

use std::sync::Arc;

use thiserror::Error;

use super::Stream;
use crate::media::flv::DemuxEvent;
use crate::media::{AudioConfig, Codec, Frame, TrackKind, VideoConfig};
use crate::rtp::{
    AacMode, AudioPacketizer, AudioPacketizerConfig, ExtensionIds, MediaPacket, PacketizeError,
    VideoPacketizer, VideoPacketizerConfig,
};

/// Payload types the stream is packetized with. Sessions rewrite the PT to whatever each
/// viewer negotiated, so these only need to be valid dynamic PTs.
pub const PT_H264: u8 = 96;
pub const PT_H265: u8 = 98;
pub const PT_AAC: u8 = 100;
pub const PT_OPUS: u8 = 111;

/// Gap assumed between the last frame of an old source and the first of a new one.
const SOURCE_GAP_MS: i64 = 40;

/// How a stream is packetized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// Extension IDs written into the shared packets (sessions remap or strip per viewer).
    pub ext: ExtensionIds,
    /// Largest RTP packet, header and extensions included.
    pub max_packet_size: usize,
    /// AAC framing of the shared packets.
    pub aac_mode: AacMode,
    pub video_ssrc: u32,
    pub audio_ssrc: u32,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            ext: ExtensionIds::default(),
            max_packet_size: crate::rtp::packetize::DEFAULT_MAX_PACKET_SIZE,
            aac_mode: AacMode::Latm,
            video_ssrc: 0x5254_4d01,
            audio_ssrc: 0x5254_4d02,
        }
    }
}

/// Why an event could not be published. The event is refused; the stream goes on.
#[derive(Debug, Error)]
pub enum PublishError {
    #[error("{0:?} frame before its decoder configuration")]
    NoConfig(Codec),
    #[error(transparent)]
    Packetize(#[from] PacketizeError),
}

/// Counters of one publisher (read by the owner; not shared).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherStats {
    pub frames: u64,
    pub packets: u64,
    pub refused: u64,
    /// Source changes (failover, reconnect) the timeline was stitched across.
    pub source_changes: u64,
}

/// Packetizes one stream's events into its [`Stream`].
pub struct Publisher {
    stream: Arc<Stream>,
    config: PublisherConfig,
    video: Option<VideoPacketizer>,
    audio: Option<AudioPacketizer>,
    /// Sequence numbers to continue from when a packetizer is rebuilt (codec change).
    next_video_seq: u64,
    next_audio_seq: u64,
    /// Added to every source timestamp so the stream's timeline never goes back.
    offset_ms: i64,
    /// Set by [`Self::begin_source`]: the next frame re-anchors `offset_ms`.
    rebase: bool,
    /// Last DTS published (stream timeline).
    last_dts: Option<i64>,
    out: Vec<MediaPacket>,
    stats: PublisherStats,
}

impl Publisher {
    pub fn new(stream: Arc<Stream>, config: PublisherConfig) -> Self {
        Self {
            stream,
            config,
            video: None,
            audio: None,
            next_video_seq: 0,
            next_audio_seq: 0,
            offset_ms: 0,
            rebase: false,
            last_dts: None,
            out: Vec::new(),
            stats: PublisherStats::default(),
        }
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    pub fn stats(&self) -> PublisherStats {
        self.stats
    }

    /// A new source takes over (origin failover, publisher reconnect): its first frame is
    /// placed just after the last published one, whatever its own timestamps say.
    pub fn begin_source(&mut self) {
        if self.last_dts.is_some() {
            self.rebase = true;
            self.stats.source_changes += 1;
        }
    }

    /// Publishes one demuxer event.
    pub fn handle(&mut self, event: DemuxEvent) -> Result<(), PublishError> {
        let result = match event {
            DemuxEvent::Metadata(_) => Ok(()),
            DemuxEvent::VideoConfig(cfg) => self.set_video_config(cfg),
            DemuxEvent::AudioConfig(cfg) => self.set_audio_config(cfg),
            DemuxEvent::Frame(frame) => self.push_frame(frame),
        };
        if result.is_err() {
            self.stats.refused += 1;
        }
        result
    }

    fn set_video_config(&mut self, cfg: VideoConfig) -> Result<(), PublishError> {
        let same_codec = self.video.as_ref().map(VideoPacketizer::codec) == Some(cfg.codec);
        if !same_codec {
            if let Some(old) = &self.video {
                self.next_video_seq = old.next_seq();
            }
            let pt = if cfg.codec == Codec::H265 {
                PT_H265
            } else {
                PT_H264
            };
            let mut pc = VideoPacketizerConfig::new(cfg.codec, self.config.video_ssrc, pt);
            pc.ext = self.config.ext;
            pc.max_packet_size = self.config.max_packet_size;
            pc.initial_seq = self.next_video_seq;
            self.video = Some(VideoPacketizer::new(pc)?);
        }
        self.stream.set_video_config(cfg);
        Ok(())
    }

    fn set_audio_config(&mut self, cfg: AudioConfig) -> Result<(), PublishError> {
        match &mut self.audio {
            Some(p) if p.config().codec == cfg.codec => p.set_config(cfg.clone())?,
            other => {
                if let Some(old) = other.as_ref() {
                    self.next_audio_seq = old.next_seq();
                }
                let pt = if cfg.codec == Codec::Opus {
                    PT_OPUS
                } else {
                    PT_AAC
                };
                let mut pc = AudioPacketizerConfig::new(self.config.audio_ssrc, pt);
                pc.ext = self.config.ext;
                pc.max_packet_size = self.config.max_packet_size;
                pc.initial_seq = self.next_audio_seq;
                pc.aac_mode = self.config.aac_mode;
                *other = Some(AudioPacketizer::new(pc, cfg.clone())?);
            }
        }
        self.stream.set_audio_config(cfg);
        Ok(())
    }

    fn push_frame(&mut self, mut frame: Frame) -> Result<(), PublishError> {
        if self.rebase {
            if let Some(last) = self.last_dts {
                self.offset_ms = last + SOURCE_GAP_MS - frame.dts;
            }
            self.rebase = false;
        }
        frame.dts += self.offset_ms;
        self.out.clear();
        match frame.codec.track() {
            TrackKind::Video => {
                let p = self
                    .video
                    .as_mut()
                    .ok_or(PublishError::NoConfig(frame.codec))?;
                p.push(&frame, &mut self.out)?;
                if frame.is_key()
                    && let Some(a) = self.audio.as_mut()
                {
                    // A joiner starts at this keyframe: let it learn the AAC config at once.
                    a.repeat_config();
                }
            }
            TrackKind::Audio => {
                let p = self
                    .audio
                    .as_mut()
                    .ok_or(PublishError::NoConfig(frame.codec))?;
                p.push(&frame, &mut self.out)?;
            }
        }
        self.last_dts = Some(self.last_dts.map_or(frame.dts, |d| d.max(frame.dts)));
        self.stats.frames += 1;
        self.stats.packets += self.out.len() as u64;
        self.stream.push_packets(self.out.drain(..));
        self.stream.push_frame(Arc::new(frame));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubConfig;
    use crate::media::flv::FlvDemuxer;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn publish_all(publisher: &mut Publisher, flv: &[u8]) -> usize {
        let mut demux = FlvDemuxer::new();
        demux.push(flv);
        let mut frames = 0;
        while let Some(ev) = demux.poll().expect("fixture demuxes") {
            frames += usize::from(matches!(ev, DemuxEvent::Frame(_)));
            publisher.handle(ev).expect("fixture publishes");
        }
        frames
    }

    #[test]
    fn fixture_packetizes_into_the_stream_with_a_keyframe() {
        let stream = Stream::new("live/t", HubConfig::default());
        let mut p = Publisher::new(stream.clone(), PublisherConfig::default());
        let frames = publish_all(&mut p, &fixture("h264_aac.flv"));
        assert!(frames > 50);
        assert_eq!(p.stats().frames as usize, frames);
        assert!(stream.has_keyframe());
        assert!(stream.video_config().is_some() && stream.audio_config().is_some());
        let mut sub = stream.subscribe();
        let mut got = Vec::new();
        sub.poll(&mut got, 100_000);
        assert!(got.first().is_some_and(|p| p.keyframe_start));
    }

    #[test]
    fn a_new_source_continues_the_timeline() {
        let stream = Stream::new("live/t", HubConfig::default());
        let mut p = Publisher::new(stream.clone(), PublisherConfig::default());
        let flv = fixture("h264_aac.flv");
        publish_all(&mut p, &flv);
        let first_end = p.last_dts.unwrap();
        let video_seq = p.video.as_ref().unwrap().next_seq();
        p.begin_source();
        publish_all(&mut p, &flv);
        assert_eq!(p.stats().source_changes, 1);
        // The replayed file starts again at 0 but the stream moved on.
        assert!(p.last_dts.unwrap() > first_end + 1000);
        // Same codec: the packetizer (and its sequence space) carried on.
        assert!(p.video.as_ref().unwrap().next_seq() > video_seq);
    }

    #[test]
    fn frames_before_config_are_refused_not_fatal() {
        let stream = Stream::new("live/t", HubConfig::default());
        let mut p = Publisher::new(stream, PublisherConfig::default());
        let frame = Frame {
            codec: Codec::H264,
            kind: crate::media::FrameKind::Inter,
            dts: 0,
            cts: 0,
            data: crate::media::FrameData::Nalus(vec![bytes::Bytes::from_static(&[0x41, 0])]),
        };
        assert!(matches!(
            p.handle(DemuxEvent::Frame(frame)),
            Err(PublishError::NoConfig(Codec::H264))
        ));
        assert_eq!(p.stats().refused, 1);
    }
}
