//! [`RtpIngest`]: a WHIP publisher's in-order RTP packets → [`DemuxEvent`]s for the hub.
//!
//! The transport session has already decrypted, reordered and (where NACKs could) repaired the
//! packets; this turns them into the same events an FLV demuxer produces, so a WHIP stream is
//! packetized once by the hub's publisher like any other source:
//!
//! * **H.264** (RFC 6184 single NAL / STAP-A / FU-A): [`FrameAssembler`] groups packets into
//!   access units (marker bit; a timestamp change or sequence gap closes an incomplete one),
//!   [`Depacketizer`] rebuilds the NAL units, and the FLV [`TagDemuxer`] tracks parameter sets
//!   exactly as for FLV input (`VideoConfig` when SPS/PPS appear or change, parameter sets in
//!   front of every keyframe).
//! * **Opus**: one packet is one frame (RFC 7587); the config is 48 kHz stereo.
//!
//! Timestamps: each track's RTP clock is unwrapped and converted to milliseconds
//! ([`crate::rtp::clock`]), then placed on a common line by anchoring the track's first packet
//! at its arrival time since the ingest started (the tracks' RTP clocks have random, unrelated
//! origins). WebRTC senders do not send B-frames, so DTS = PTS.
//!
//! Integrity: a frame is published only if it is whole and nothing before it since the last
//! keyframe was lost. After a loss (a sequence gap the receiver gave up on, an incomplete or
//! undecodable frame) video frames are dropped until the next keyframe, and
//! [`MediaIngest::wants_keyframe`] makes the session send PLIs until it arrives. The stream
//! starts the same way: waiting for (and asking for) a keyframe.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::media::flv::TagDemuxer;
use crate::media::{AudioConfig, Codec, DemuxEvent, Frame, FrameData, FrameKind, TrackKind};
use crate::origin::MediaSink;
use crate::rtp::clock::{Unwrapper, clock_to_ms};
use crate::rtp::depacketize::{AssembledFrame, Depacketizer, DepacketizerConfig, FrameAssembler};
use crate::rtp::packetize::opus::OPUS_CLOCK_RATE;
use crate::rtp::{ExtensionIds, RtpView};
use crate::transport::MediaIngest;

/// Counters of one ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpIngestStats {
    pub video_frames: u64,
    pub keyframes: u64,
    pub audio_frames: u64,
    /// Frames not published: incomplete, undecodable, or waiting for a keyframe.
    pub dropped_frames: u64,
    pub malformed_packets: u64,
}

/// Maps one track's RTP clock onto the ingest's millisecond line.
#[derive(Debug)]
struct TrackClock {
    rate: u32,
    unwrap: Unwrapper,
    /// Stream ms of RTP time 0 (unwrapped), fixed by the first packet.
    offset_ms: Option<i64>,
}

impl TrackClock {
    fn new(rate: u32) -> Self {
        Self {
            rate,
            unwrap: Unwrapper::new(),
            offset_ms: None,
        }
    }

    fn ms(&mut self, timestamp: u32, arrival_ms: i64) -> i64 {
        let t = clock_to_ms(self.unwrap.unwrap(timestamp), self.rate);
        let offset = *self.offset_ms.get_or_insert(arrival_ms - t);
        t + offset
    }
}

/// Turns a publisher's packets into hub events (see the module docs).
pub struct RtpIngest {
    sink: Arc<dyn MediaSink>,
    start: Instant,
    demux: TagDemuxer,
    assembler: FrameAssembler,
    depacketizer: Depacketizer,
    video_clock: TrackClock,
    audio_clock: TrackClock,
    last_video_seq: Option<u16>,
    need_keyframe: bool,
    audio_configured: bool,
    assembled: Vec<AssembledFrame>,
    stats: RtpIngestStats,
    /// Held for the ingest's lifetime (the publish claim on the stream key).
    _hold: Option<Box<dyn Send>>,
}

impl RtpIngest {
    /// An ingest publishing into `sink`, started at `now`; `hold` lives as long as it does.
    pub fn new(sink: Arc<dyn MediaSink>, now: Instant, hold: Option<Box<dyn Send>>) -> Self {
        Self {
            sink,
            start: now,
            demux: TagDemuxer::new(),
            assembler: FrameAssembler::new(),
            depacketizer: Depacketizer::new(DepacketizerConfig::video(Codec::H264)),
            video_clock: TrackClock::new(90_000),
            audio_clock: TrackClock::new(OPUS_CLOCK_RATE),
            last_video_seq: None,
            need_keyframe: true,
            audio_configured: false,
            assembled: Vec::new(),
            stats: RtpIngestStats::default(),
            _hold: hold,
        }
    }

    pub fn stats(&self) -> RtpIngestStats {
        self.stats
    }

    fn arrival_ms(&self, now: Instant) -> i64 {
        now.saturating_duration_since(self.start).as_millis() as i64
    }

    fn video(&mut self, now: Instant, view: RtpView) {
        if let Some(last) = self.last_video_seq
            && view.sequence != last.wrapping_add(1)
        {
            // Packets the receiver gave up on: whatever references them is broken.
            self.need_keyframe = true;
        }
        self.last_video_seq = Some(view.sequence);
        let mut assembled = std::mem::take(&mut self.assembled);
        self.assembler.push(view, &mut assembled);
        for f in assembled.drain(..) {
            self.video_frame(now, f);
        }
        self.assembled = assembled;
    }

    fn video_frame(&mut self, now: Instant, f: AssembledFrame) {
        if !f.complete {
            self.drop_frame();
            return;
        }
        let df = match self.depacketizer.depacketize(&f.packets) {
            Ok(df) => df,
            Err(_) => {
                self.drop_frame();
                return;
            }
        };
        let key = df.frame.kind == FrameKind::Key;
        if self.need_keyframe && !key {
            self.stats.dropped_frames += 1;
            return;
        }
        let FrameData::Nalus(nalus) = df.frame.data else {
            return;
        };
        let dts = self.video_clock.ms(df.timestamp, self.arrival_ms(now));
        if self
            .demux
            .push_video_nalus(Codec::H264, dts, 0, nalus)
            .is_err()
        {
            // E.g. a keyframe before any SPS/PPS: not decodable, ask again.
            self.drop_frame();
            return;
        }
        if key {
            self.need_keyframe = false;
            self.stats.keyframes += 1;
        }
        self.stats.video_frames += 1;
        while let Some(ev) = self.demux.poll() {
            self.sink.on_event(ev);
        }
    }

    fn drop_frame(&mut self) {
        self.stats.dropped_frames += 1;
        self.need_keyframe = true;
    }

    fn audio(&mut self, now: Instant, view: RtpView) {
        if view.payload.is_empty() {
            return;
        }
        if !self.audio_configured {
            self.audio_configured = true;
            self.sink.on_event(DemuxEvent::AudioConfig(AudioConfig {
                codec: Codec::Opus,
                asc: Bytes::new(),
                object_type: 0,
                sample_rate: OPUS_CLOCK_RATE,
                channels: 2,
            }));
        }
        let dts = self.audio_clock.ms(view.timestamp, self.arrival_ms(now));
        self.stats.audio_frames += 1;
        self.sink.on_event(DemuxEvent::Frame(Frame {
            codec: Codec::Opus,
            kind: FrameKind::Audio,
            dts,
            cts: 0,
            data: FrameData::Audio(view.payload),
        }));
    }
}

impl MediaIngest for RtpIngest {
    fn on_packet(&mut self, now: Instant, track: TrackKind, packet: Bytes) {
        let view = match RtpView::parse(packet, &ExtensionIds::none()) {
            Ok(v) => v,
            Err(_) => {
                self.stats.malformed_packets += 1;
                return;
            }
        };
        match track {
            TrackKind::Video => self.video(now, view),
            TrackKind::Audio => self.audio(now, view),
        }
    }

    fn wants_keyframe(&self) -> bool {
        self.need_keyframe
    }
}

impl Drop for RtpIngest {
    /// The publisher left (DELETE, BYE, consent expiry) or never connected: the stream ends.
    fn drop(&mut self) {
        self.sink.on_end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{HubConfig, Publisher, PublisherConfig, Stream};
    use crate::media::flv::FlvDemuxer;
    use crate::origin::sink::PublisherSink;
    use crate::rtp::{VideoPacketizer, VideoPacketizerConfig};
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records events.
    #[derive(Default)]
    struct Events(Mutex<Vec<DemuxEvent>>, Mutex<bool>);

    impl MediaSink for Events {
        fn on_event(&self, ev: DemuxEvent) {
            self.0.lock().unwrap().push(ev);
        }
        fn on_end(&self) {
            *self.1.lock().unwrap() = true;
        }
    }

    /// The fixture's H.264 frames packetized as a plain WebRTC sender would (no extensions).
    fn video_packets() -> Vec<Bytes> {
        let flv = std::fs::read(format!(
            "{}/tests/fixtures/h264_aac.flv",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut demux = FlvDemuxer::new();
        demux.push(&flv);
        let mut cfg = VideoPacketizerConfig::new(Codec::H264, 0x1234, 102);
        cfg.ext = ExtensionIds::none();
        cfg.initial_seq = 65_500;
        let mut p = VideoPacketizer::new(cfg).unwrap();
        let mut out = Vec::new();
        while let Some(ev) = demux.poll().unwrap() {
            if let DemuxEvent::Frame(f) = ev
                && f.codec == Codec::H264
            {
                // Keyframes carry SPS/PPS in front, as a WebRTC sender sends them in band.
                p.push(&f, &mut out).unwrap();
            }
        }
        out.into_iter().map(|m| m.bytes).collect()
    }

    #[test]
    fn h264_packets_become_config_and_frames_starting_at_a_keyframe() {
        let sink = Arc::new(Events::default());
        let t0 = Instant::now();
        let mut ingest = RtpIngest::new(sink.clone(), t0, None);
        assert!(ingest.wants_keyframe());
        let packets = video_packets();
        assert!(packets.len() > 40, "{} packets", packets.len());
        for (i, p) in packets.iter().enumerate() {
            ingest.on_packet(
                t0 + Duration::from_millis(i as u64),
                TrackKind::Video,
                p.clone(),
            );
        }
        assert!(!ingest.wants_keyframe());
        let events = sink.0.lock().unwrap();
        assert!(matches!(events.first(), Some(DemuxEvent::VideoConfig(c)) if c.width > 0));
        let frames: Vec<&Frame> = events
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) => Some(f),
                _ => None,
            })
            .collect();
        assert!(frames[0].is_key());
        // The last frame may still be open in the assembler (no marker seen after it).
        assert!(frames.len() + 1 >= ingest.stats().video_frames as usize);
        assert!(frames.windows(2).all(|w| w[0].dts <= w[1].dts));
        drop(events);
        drop(ingest);
        assert!(
            *sink.1.lock().unwrap(),
            "dropping the ingest ends the stream"
        );
    }

    #[test]
    fn a_loss_drops_frames_until_the_next_keyframe() {
        let sink = Arc::new(Events::default());
        let t0 = Instant::now();
        let mut ingest = RtpIngest::new(sink.clone(), t0, None);
        let packets = video_packets();
        for (i, p) in packets.iter().enumerate() {
            if i == 40 {
                continue;
            }
            ingest.on_packet(t0, TrackKind::Video, p.clone());
            if i == 41 {
                assert!(ingest.wants_keyframe(), "a gap asks for a keyframe");
            }
        }
        assert!(ingest.stats().dropped_frames > 0);
        assert!(ingest.stats().keyframes >= 2);
    }

    #[test]
    fn opus_and_h264_publish_into_a_stream() {
        let stream = Stream::new("live/w", HubConfig::default());
        let sink = Arc::new(PublisherSink::new(Publisher::new(
            stream.clone(),
            PublisherConfig::default(),
        )));
        let t0 = Instant::now();
        let mut ingest = RtpIngest::new(sink, t0, None);
        for (i, p) in video_packets().into_iter().enumerate() {
            ingest.on_packet(t0, TrackKind::Video, p);
            let mut opus = vec![0x80, 111];
            opus.extend_from_slice(&(i as u16).to_be_bytes());
            opus.extend_from_slice(&((i as u32) * 960).to_be_bytes());
            opus.extend_from_slice(&[0, 0, 0, 9, 0xFC, 0xFF, 0xFE]);
            ingest.on_packet(t0, TrackKind::Audio, Bytes::from(opus));
        }
        assert!(stream.has_keyframe());
        assert_eq!(stream.audio_config().map(|a| a.codec), Some(Codec::Opus));
        assert_eq!(stream.video_config().map(|v| v.codec), Some(Codec::H264));
        assert!(ingest.stats().audio_frames > 40);
        drop(ingest);
        assert!(stream.is_closed());
    }
}
