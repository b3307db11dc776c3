//! Depacketizers: the complete, ordered packets of one frame back into a [`Frame`], using the
//! RTM extensions for DTS, CTS and frame type. The player uses this; so do the round-trip tests
//! that prove the packetizers lossless.
//!
//! [`FrameAssembler`] groups an in-order packet sequence into frames first.

mod assembler;
mod audio;
mod nal;

pub use assembler::{AssembledFrame, FrameAssembler, MAX_FRAME_PACKETS};

use bytes::Bytes;

use super::RtpView;
use super::clock::{Unwrapper, clock_to_ms};
use super::packetize::AacMode;
use super::packetize::opus::OPUS_CLOCK_RATE;
use crate::media::{Codec, Frame, FrameData, FrameKind};

/// Errors rebuilding a frame. The packets come from the network: every malformation is one of
/// these, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepacketizeError {
    #[error("no packets")]
    Empty,
    #[error("packets of one frame carry different RTP timestamps ({0:#x} and {1:#x})")]
    MixedTimestamps(u32, u32),
    #[error("sequence gap: expected {expected}, got {got}")]
    SequenceGap { expected: u16, got: u16 },
    #[error("frame-seq-range says {first}..={last} but the packets are {got_first}..={got_last}")]
    Incomplete {
        first: u16,
        last: u16,
        got_first: u16,
        got_last: u16,
    },
    #[error("packet {0} has an empty payload")]
    EmptyPayload(u16),
    #[error("unsupported payload structure (NAL type {0})")]
    UnsupportedPacketType(u8),
    #[error("aggregation packet truncated at byte {0}")]
    TruncatedAggregate(usize),
    #[error("fragment packet shorter than its headers")]
    TruncatedFragment,
    #[error("fragment without a start fragment")]
    FragmentWithoutStart,
    #[error("start fragment while another NAL unit is still open")]
    NestedFragment,
    #[error("frame ends inside a fragmented NAL unit")]
    UnterminatedFragment,
    #[error("LATM payload length {declared} does not match the {available} bytes present")]
    LatmLength { declared: usize, available: usize },
    #[error("payload is not an ADTS frame")]
    NotAdts,
    #[error("ADTS frame length {declared} does not match the {available} bytes present")]
    AdtsLength { declared: usize, available: usize },
    #[error("{0:?} is not a codec the depacketizer handles")]
    UnsupportedCodec(Codec),
}

/// What a depacketizer needs to know about its track (from SDP / miniSDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepacketizerConfig {
    pub codec: Codec,
    /// RTP clock rate: 90 000 for video, 48 000 for Opus, the sample rate for AAC.
    pub clock_rate: u32,
    /// AAC framing (ignored for other codecs).
    pub aac_mode: AacMode,
}

impl DepacketizerConfig {
    /// A video track (90 kHz).
    pub fn video(codec: Codec) -> Self {
        DepacketizerConfig {
            codec,
            clock_rate: 90_000,
            aac_mode: AacMode::Latm,
        }
    }

    /// An Opus track (48 kHz).
    pub fn opus() -> Self {
        DepacketizerConfig {
            codec: Codec::Opus,
            clock_rate: OPUS_CLOCK_RATE,
            aac_mode: AacMode::Latm,
        }
    }

    /// An AAC track with the given clock (sample) rate and framing.
    pub fn aac(clock_rate: u32, aac_mode: AacMode) -> Self {
        DepacketizerConfig {
            codec: Codec::Aac,
            clock_rate,
            aac_mode,
        }
    }
}

/// One rebuilt frame and what its packets said beyond the [`Frame`] itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepacketizedFrame {
    pub frame: Frame,
    /// RTP timestamp (presentation time on the track clock).
    pub timestamp: u32,
    /// Sequence numbers of the first and last packet.
    pub first_seq: u16,
    pub last_seq: u16,
    /// reference-frame-timestamp, on P frames.
    pub reference_frame_timestamp: Option<u32>,
    /// aac-config, when one of the frame's packets carried it.
    pub aac_config: Option<Bytes>,
}

/// Rebuilds the frames of one track. Stateful only in the DTS unwrapping (32-bit clock values
/// to a continuous millisecond line) and the last AAC config seen.
#[derive(Debug, Clone)]
pub struct Depacketizer {
    config: DepacketizerConfig,
    dts: Unwrapper,
    aac_config: Option<Bytes>,
}

impl Depacketizer {
    pub fn new(config: DepacketizerConfig) -> Self {
        Depacketizer {
            config,
            dts: Unwrapper::new(),
            aac_config: None,
        }
    }

    /// The latest AudioSpecificConfig received in-band.
    pub fn aac_config(&self) -> Option<&Bytes> {
        self.aac_config.as_ref()
    }

    /// Rebuilds one frame from all its packets, in sequence order.
    pub fn depacketize(
        &mut self,
        packets: &[RtpView],
    ) -> Result<DepacketizedFrame, DepacketizeError> {
        let (first, last) = match packets {
            [] => return Err(DepacketizeError::Empty),
            [f, .., l] => (f, l),
            [f] => (f, f),
        };
        let timestamp = first.timestamp;
        for w in packets.windows(2) {
            let expected = w[0].sequence.wrapping_add(1);
            if w[1].sequence != expected {
                return Err(DepacketizeError::SequenceGap {
                    expected,
                    got: w[1].sequence,
                });
            }
        }
        for p in packets {
            if p.timestamp != timestamp {
                return Err(DepacketizeError::MixedTimestamps(timestamp, p.timestamp));
            }
            if let Some(r) = p.rtm.frame_seq_range
                && (r.first != first.sequence || r.last != last.sequence)
            {
                return Err(DepacketizeError::Incomplete {
                    first: r.first,
                    last: r.last,
                    got_first: first.sequence,
                    got_last: last.sequence,
                });
            }
        }
        let find = |f: fn(&RtpView) -> Option<u32>| packets.iter().find_map(f);
        let cts_clock = packets
            .iter()
            .find_map(|p| p.rtm.composition_time)
            .unwrap_or(0);
        let dts_wire =
            find(|p| p.rtm.decoding_timestamp).unwrap_or(timestamp.wrapping_sub(cts_clock as u32));
        let codec = self.config.codec;
        let frame_type = packets.iter().find_map(|p| p.rtm.frame_type);
        let (kind, data) = match codec {
            Codec::H264 | Codec::H265 => {
                let nals = if codec == Codec::H264 {
                    nal::h264(packets)?
                } else {
                    nal::h265(packets)?
                };
                let kind = match frame_type {
                    Some(t) => t.kind(),
                    None => nal::guess_kind(codec, &nals),
                };
                (kind, FrameData::Nalus(nals))
            }
            Codec::Aac | Codec::Opus => {
                let au = audio::access_unit(codec, self.config.aac_mode, packets)?;
                (FrameKind::Audio, FrameData::Audio(au))
            }
        };
        // State changes only once the frame is known good.
        let rate = self.config.clock_rate;
        let dts = clock_to_ms(self.dts.unwrap(dts_wire), rate);
        let cts = clock_to_ms(i64::from(cts_clock), rate) as i32;
        let aac_config = packets.iter().find_map(|p| p.rtm.aac_config.clone());
        if aac_config.is_some() {
            self.aac_config.clone_from(&aac_config);
        }
        Ok(DepacketizedFrame {
            frame: Frame {
                codec,
                kind,
                dts,
                cts,
                data,
            },
            timestamp,
            first_seq: first.sequence,
            last_seq: last.sequence,
            reference_frame_timestamp: find(|p| p.rtm.reference_frame_timestamp),
            aac_config,
        })
    }
}
