//! The audio packetizer: AAC (LATM or ADTS framing) and Opus.
//!
//! Audio RTP timestamps are kept sample-continuous: when the previous frame's timestamp plus its
//! sample count lands within one millisecond of this frame's DTS (the precision of FLV/RTMP
//! timestamps, which muxers round inconsistently: ffmpeg writes 1024-sample frames at 44.1 kHz as
//! 0, 23, 46, 69, 93 ms), that value is used; otherwise (a gap, the first frame) the timestamp is
//! re-anchored on `ms_to_clock(dts)`. Decoders see the clean 1024-sample steps they expect.
//! The decoding-timestamp extension carries the exact `ms_to_clock(dts)`, so the round trip of
//! the millisecond DTS stays lossless.

use bytes::{BufMut, BytesMut};

use super::aac::{self, ADTS_MAX_FRAME, AdtsTemplate};
use super::opus::{self, OPUS_CLOCK_RATE};
use super::writer::{ExtSet, FrameValues, Track};
use super::{DEFAULT_MAX_PACKET_SIZE, PacketizeError};
use crate::media::{AudioConfig, Codec, Frame, FrameData, FrameKind, TrackKind};
use crate::rtp::MediaPacket;
use crate::rtp::clock::{clock_to_ms, ms_to_clock, wire};
use crate::rtp::ext::{ExtensionIds, FrameSeqRange};

/// How AAC access units are framed in the RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AacMode {
    /// RFC 6416 MP4A-LATM with `cpresent=0`: `PayloadLengthInfo` (0xFF bytes and a remainder)
    /// followed by the access unit. The config travels out of band (SDP `config=` or aac-config).
    #[default]
    Latm,
    /// "MP4A-ADTS" as deployed RTM clients use it: a 7-byte ADTS header (no CRC) followed by
    /// the access unit, so a plain ADTS decoder can consume payloads directly.
    Adts,
}

/// Configuration of one audio track's packetizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacketizerConfig {
    pub ssrc: u32,
    pub payload_type: u8,
    pub ext: ExtensionIds,
    pub max_packet_size: usize,
    pub initial_seq: u64,
    /// AAC framing (ignored for Opus).
    pub aac_mode: AacMode,
    /// Repeat aac-config every this many frames (0: only after a change or
    /// [`AudioPacketizer::repeat_config`]). Default 50 (about one second of 48 kHz AAC).
    pub config_interval: u32,
}

impl AudioPacketizerConfig {
    pub fn new(ssrc: u32, payload_type: u8) -> Self {
        AudioPacketizerConfig {
            ssrc,
            payload_type,
            ext: ExtensionIds::default(),
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            initial_seq: 0,
            aac_mode: AacMode::Latm,
            config_interval: 50,
        }
    }
}

/// Packetizes the frames of one AAC or Opus track.
#[derive(Debug)]
pub struct AudioPacketizer {
    track: Track,
    aac_mode: AacMode,
    config_interval: u32,
    config: AudioConfig,
    clock_rate: u32,
    adts: Option<AdtsTemplate>,
    /// Ticks per access unit when fixed (AAC), for sample continuity.
    fixed_samples: Option<u32>,
    /// Unwrapped playout clock (RTP timestamp without CTS) of the previous frame and the ticks
    /// it lasts.
    previous: Option<(i64, Option<u32>)>,
    send_config: bool,
    frames_since_config: u32,
    prefix: Vec<u8>,
}

impl AudioPacketizer {
    pub fn new(config: AudioPacketizerConfig, audio: AudioConfig) -> Result<Self, PacketizeError> {
        let track = Track::new(
            config.ssrc,
            config.payload_type,
            config.ext,
            config.max_packet_size,
            config.initial_seq,
        )?;
        let mut p = AudioPacketizer {
            track,
            aac_mode: config.aac_mode,
            config_interval: config.config_interval,
            config: audio.clone(),
            clock_rate: 0,
            adts: None,
            fixed_samples: None,
            previous: None,
            send_config: false,
            frames_since_config: 0,
            prefix: Vec::new(),
        };
        p.set_config(audio)?;
        Ok(p)
    }

    /// Switches to a new decoder config (a new AAC sequence header). The next frame carries
    /// aac-config. On error the old config stays in force.
    pub fn set_config(&mut self, audio: AudioConfig) -> Result<(), PacketizeError> {
        let (clock_rate, adts, fixed_samples) = match audio.codec {
            Codec::Opus => (OPUS_CLOCK_RATE, None, None),
            Codec::Aac => {
                if audio.sample_rate <= 1000 {
                    return Err(PacketizeError::BadSampleRate(audio.sample_rate));
                }
                if audio.asc.len() > 255 {
                    return Err(PacketizeError::AacConfigTooLong(audio.asc.len()));
                }
                let info = aac::parse_asc(&audio.asc);
                let adts = match self.aac_mode {
                    AacMode::Adts => Some(info.clone()?.adts_template()?),
                    AacMode::Latm => None,
                };
                let samples = info
                    .ok()
                    .and_then(|i| i.samples_per_frame(audio.sample_rate));
                (audio.sample_rate, adts, samples)
            }
            other => return Err(PacketizeError::UnsupportedCodec(other)),
        };
        if self.clock_rate != 0 && clock_rate != self.clock_rate {
            self.previous = None;
        }
        self.clock_rate = clock_rate;
        self.adts = adts;
        self.fixed_samples = fixed_samples;
        self.send_config = audio.codec == Codec::Aac;
        self.config = audio;
        Ok(())
    }

    /// Makes the next frame carry aac-config (e.g. when the video track has a keyframe, so a
    /// viewer joining there gets the config at once).
    pub fn repeat_config(&mut self) {
        self.send_config = self.config.codec == Codec::Aac;
    }

    pub fn config(&self) -> &AudioConfig {
        &self.config
    }

    /// The RTP clock rate of this track.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    pub fn ssrc(&self) -> u32 {
        self.track.ssrc
    }

    pub fn next_seq(&self) -> u64 {
        self.track.next_seq
    }

    /// Packetizes one access unit. Normally one packet (marker set); an AAC frame larger than a
    /// packet is split into consecutive packets of the same timestamp, marker on the last.
    pub fn push(
        &mut self,
        frame: &Frame,
        out: &mut Vec<MediaPacket>,
    ) -> Result<(), PacketizeError> {
        let codec = self.config.codec;
        if frame.codec != codec {
            return Err(PacketizeError::CodecMismatch {
                expected: codec,
                got: frame.codec,
            });
        }
        let FrameData::Audio(au) = &frame.data else {
            return Err(PacketizeError::WrongData);
        };
        if au.is_empty() {
            return Err(PacketizeError::EmptyFrame);
        }

        // Timestamps (see the module doc).
        let rate = self.clock_rate;
        let exact = ms_to_clock(frame.dts, rate);
        let playout = match self.previous {
            Some((prev, Some(step)))
                if (clock_to_ms(prev + i64::from(step), rate) - frame.dts).abs() <= 1 =>
            {
                prev + i64::from(step)
            }
            _ => exact,
        };
        let cts_clock = i32::try_from(ms_to_clock(i64::from(frame.cts), rate))
            .map_err(|_| PacketizeError::CompositionOutOfRange(frame.cts))?;
        let timestamp = wire(playout + i64::from(cts_clock));

        // The payload stream: a framing prefix, then the AU.
        self.prefix.clear();
        match (codec, self.aac_mode) {
            (Codec::Aac, AacMode::Latm) => aac::latm_length_prefix(au.len(), &mut self.prefix),
            (Codec::Aac, AacMode::Adts) => {
                if au.len() + aac::ADTS_HEADER_LEN > ADTS_MAX_FRAME {
                    return Err(PacketizeError::FrameTooLarge {
                        codec,
                        len: au.len(),
                        max: ADTS_MAX_FRAME - 7,
                    });
                }
                if let Some(t) = self.adts {
                    self.prefix.extend_from_slice(&t.header(au.len()));
                }
            }
            _ => {}
        }
        let with_config = self.send_config
            || (self.config_interval > 0 && self.frames_since_config >= self.config_interval);
        let with_config = with_config && codec == Codec::Aac && self.track.ids.aac_config.is_some();
        let asc: &[u8] = if with_config { &self.config.asc } else { &[] };
        let first_set = ExtSet {
            cts: cts_clock != 0,
            frame_type: false,
            ref_ts: false,
            aac_config: with_config,
        };
        let rest_set = ExtSet::default();
        let total_payload = self.prefix.len() + au.len();
        let first_cap = self.track.capacity(first_set, asc.len());
        let rest_cap = self.track.capacity(rest_set, 0);
        let count = if total_payload <= first_cap {
            1
        } else if codec == Codec::Opus {
            return Err(PacketizeError::FrameTooLarge {
                codec,
                len: au.len(),
                max: first_cap,
            });
        } else {
            1 + (total_payload - first_cap).div_ceil(rest_cap)
        };

        let first_seq = self.track.next_seq;
        let range = FrameSeqRange {
            first: first_seq as u16,
            last: (first_seq + count as u64 - 1) as u16,
        };
        let vals = FrameValues {
            dts: wire(exact),
            cts: cts_clock,
            frame_type: None,
            ref_ts: None,
            aac_config: asc,
        };
        let total = self.track.overhead(first_set, asc.len())
            + self.track.overhead(rest_set, 0) * (count - 1)
            + total_payload;
        let mut buf = BytesMut::with_capacity(total);
        let mut at = 0; // position in the payload stream
        out.reserve(count);
        for i in 0..count {
            let (set, cap) = if i == 0 {
                (first_set, first_cap)
            } else {
                (rest_set, rest_cap)
            };
            let last = i + 1 == count;
            let off = self.track.write_header(
                &mut buf,
                first_seq + i as u64,
                timestamp,
                last,
                set,
                &vals,
                range,
            );
            let end_at = (at + cap).min(total_payload);
            let p = self.prefix.len();
            if at < p {
                buf.put_slice(&self.prefix[at..end_at.min(p)]);
            }
            if end_at > p {
                buf.put_slice(&au[at.max(p) - p..end_at - p]);
            }
            at = end_at;
            out.push(MediaPacket {
                // `split` hands out what was written and keeps the rest of the allocation.
                bytes: buf.split().freeze(),
                track: TrackKind::Audio,
                seq: first_seq + i as u64,
                timestamp,
                marker: last,
                frame_kind: FrameKind::Audio,
                keyframe_start: false,
                dts_ms: frame.dts,
                seq_range_offset: off,
            });
        }
        self.track.next_seq += count as u64;
        let step = match codec {
            Codec::Opus => opus::packet_samples(au),
            _ => self.fixed_samples,
        };
        self.previous = Some((playout, step));
        if with_config {
            self.send_config = false;
            self.frames_since_config = 0;
        }
        self.frames_since_config = self.frames_since_config.saturating_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpView;
    use bytes::Bytes;

    fn aac(rate: u32, asc: &'static [u8]) -> AudioConfig {
        AudioConfig {
            codec: Codec::Aac,
            asc: Bytes::from_static(asc),
            object_type: 2,
            sample_rate: rate,
            channels: 2,
        }
    }

    fn frame(dts: i64, len: usize) -> Frame {
        Frame {
            codec: Codec::Aac,
            kind: FrameKind::Audio,
            dts,
            cts: 0,
            data: FrameData::Audio(Bytes::from(vec![0x21; len])),
        }
    }

    #[test]
    fn timestamps_are_sample_continuous_at_44100() {
        let mut p = AudioPacketizer::new(
            AudioPacketizerConfig::new(1, 97),
            aac(44_100, &[0x12, 0x10]),
        )
        .unwrap();
        let mut out = Vec::new();
        // ffmpeg's millisecond rounding of 1024-sample frames: 0, 23, 46, 70, 93, ...
        for i in 0..200u64 {
            let dts = (i * 1024 * 1000 + 22_050) / 44_100;
            p.push(&frame(dts as i64, 200), &mut out).unwrap();
        }
        for (i, m) in out.iter().enumerate() {
            assert_eq!(m.timestamp, 1024 * i as u32);
            assert!(m.marker);
        }
        // ffmpeg's FLV timestamps (rescaled with error carry, not rounded per frame) too.
        let mut p = AudioPacketizer::new(
            AudioPacketizerConfig::new(1, 97),
            aac(44_100, &[0x12, 0x10]),
        )
        .unwrap();
        out.clear();
        for dts in [0, 23, 46, 69, 93, 116, 139, 162, 186, 209, 232, 255] {
            p.push(&frame(dts, 200), &mut out).unwrap();
        }
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, m)| m.timestamp == 1024 * i as u32)
        );
        let v = crate::rtp::RtpView::parse(out[3].bytes.clone(), &ExtensionIds::default()).unwrap();
        assert_eq!(
            v.rtm.decoding_timestamp,
            Some(3043),
            "exact 69 ms, not the playout 3072"
        );
        out.clear();
        // A gap re-anchors on the millisecond mapping.
        out.clear();
        p.push(&frame(10_000, 200), &mut out).unwrap();
        assert_eq!(out[0].timestamp, 441_000);
    }

    #[test]
    fn aac_config_on_first_packet_and_then_periodically() {
        let mut cfg = AudioPacketizerConfig::new(1, 97);
        cfg.config_interval = 3;
        let mut p = AudioPacketizer::new(cfg, aac(48_000, &[0x11, 0x90])).unwrap();
        let mut out = Vec::new();
        for i in 0..8 {
            p.push(&frame(i * 21, 100), &mut out).unwrap();
        }
        p.repeat_config();
        p.push(&frame(200, 100), &mut out).unwrap();
        let ids = ExtensionIds::default();
        let with: Vec<bool> = out
            .iter()
            .map(|m| {
                RtpView::parse(m.bytes.clone(), &ids)
                    .unwrap()
                    .rtm
                    .aac_config
                    .is_some()
            })
            .collect();
        assert_eq!(
            with,
            [true, false, false, true, false, false, true, false, true]
        );
        let v = RtpView::parse(out[0].bytes.clone(), &ids).unwrap();
        assert_eq!(v.rtm.aac_config.as_deref(), Some(&[0x11, 0x90][..]));
        assert_eq!(v.rtm.composition_time, None, "audio CTS only when non-zero");
    }

    #[test]
    fn latm_and_adts_payloads() {
        let mut p = AudioPacketizer::new(
            AudioPacketizerConfig::new(1, 97),
            aac(44_100, &[0x12, 0x10]),
        )
        .unwrap();
        let mut out = Vec::new();
        p.push(&frame(0, 300), &mut out).unwrap();
        let v = RtpView::parse(out[0].bytes.clone(), &ExtensionIds::default()).unwrap();
        assert_eq!(&v.payload[..2], &[0xFF, 45]);
        assert_eq!(v.payload.len(), 302);

        let mut cfg = AudioPacketizerConfig::new(1, 97);
        cfg.aac_mode = AacMode::Adts;
        let mut p = AudioPacketizer::new(cfg, aac(44_100, &[0x12, 0x10])).unwrap();
        out.clear();
        p.push(&frame(0, 100), &mut out).unwrap();
        let v = RtpView::parse(out[0].bytes.clone(), &ExtensionIds::default()).unwrap();
        assert_eq!(&v.payload[..7], &[0xFF, 0xF1, 0x50, 0x80, 0x0D, 0x7F, 0xFC]);
    }

    #[test]
    fn large_aac_frames_are_split_and_opus_is_not() {
        let mut p = AudioPacketizer::new(
            AudioPacketizerConfig::new(1, 97),
            aac(48_000, &[0x11, 0x90]),
        )
        .unwrap();
        let mut out = Vec::new();
        p.push(&frame(0, 3000), &mut out).unwrap();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|m| m.len() <= 1200));
        assert_eq!(
            out.iter().map(|m| m.marker).collect::<Vec<_>>(),
            [false, false, true]
        );
        let opus = AudioConfig {
            codec: Codec::Opus,
            asc: Bytes::new(),
            object_type: 0,
            sample_rate: 48_000,
            channels: 2,
        };
        let mut p = AudioPacketizer::new(AudioPacketizerConfig::new(1, 111), opus).unwrap();
        let f = Frame {
            codec: Codec::Opus,
            kind: FrameKind::Audio,
            dts: 0,
            cts: 0,
            data: FrameData::Audio(Bytes::from(vec![0xFC; 1275])),
        };
        assert!(matches!(
            p.push(&f, &mut out),
            Err(PacketizeError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn adts_mode_rejects_configs_adts_cannot_express() {
        let mut cfg = AudioPacketizerConfig::new(1, 97);
        cfg.aac_mode = AacMode::Adts;
        // AOT 31+ (escape) cannot be an ADTS profile.
        let r = AudioPacketizer::new(cfg, aac(48_000, &[0xF8, 0x00, 0x00]));
        assert!(matches!(r, Err(PacketizeError::Asc(_))));
    }
}
