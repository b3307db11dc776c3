//! The video packetizer: plans a frame's NAL units into single-NAL, aggregation and
//! fragmentation packets (the rules shared by RFC 6184 and RFC 7798), then writes them.

use bytes::{BufMut, Bytes, BytesMut};

use super::writer::{ExtSet, FrameValues, Track};
use super::{DEFAULT_MAX_PACKET_SIZE, PacketizeError, h264::H264, h265::H265};
use crate::media::{Codec, Frame, FrameData, FrameKind, TrackKind};
use crate::rtp::MediaPacket;
use crate::rtp::clock::{ms_to_clock, wire};
use crate::rtp::ext::{ExtensionIds, FrameSeqRange, FrameType};

/// The 90 kHz clock of every video payload format.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;

/// What differs between the H.264 (RFC 6184) and H.265 (RFC 7798) payload formats. The
/// packetizer here and the depacketizer (`rtp::depacketize`) are written once over it.
pub(crate) trait NalCodec {
    /// Bytes of NAL unit header.
    const HEADER_LEN: usize;
    /// Payload header plus FU header of a fragment.
    const FU_OVERHEAD: usize;
    /// Payload header of an aggregation packet (each unit then adds a 2-byte size).
    const AGG_HEADER_LEN: usize;
    /// Payload type (in the NAL unit type field) of an aggregation packet: STAP-A or AP.
    const AGG_TYPE: u8;
    /// Payload type of a fragmentation unit: FU-A or FU.
    const FU_TYPE: u8;
    /// `nal_unit_type` from the first byte of a NAL unit or payload header.
    fn nal_type(header0: u8) -> u8;
    fn is_parameter_set(nal: &[u8]) -> bool;
    /// Whether the NAL unit type may be sent as a single NAL unit packet.
    fn can_be_single(nal: &[u8]) -> bool;
    fn write_agg_header(nals: &[Bytes], buf: &mut BytesMut);
    fn write_fu_header(nal: &[u8], start: bool, end: bool, buf: &mut BytesMut);
    /// The inverse of [`write_fu_header`](Self::write_fu_header): writes the header of the
    /// fragmented NAL unit, rebuilt from a fragment's payload header and FU header.
    fn write_unfragmented_header(payload: &[u8], fu_header: u8, buf: &mut BytesMut);
}

/// Configuration of one video track's packetizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoPacketizerConfig {
    pub codec: Codec,
    pub ssrc: u32,
    pub payload_type: u8,
    /// Negotiated extension IDs (defaults 18/19/21/22/23/27).
    pub ext: ExtensionIds,
    /// Largest RTP packet including header and extensions (default 1200).
    pub max_packet_size: usize,
    /// Extended sequence number of the first packet (its low 16 bits go on the wire).
    pub initial_seq: u64,
}

impl VideoPacketizerConfig {
    /// Defaults: the deployed extension IDs, 1200-byte packets, first sequence number 0.
    pub fn new(codec: Codec, ssrc: u32, payload_type: u8) -> Self {
        VideoPacketizerConfig {
            codec,
            ssrc,
            payload_type,
            ext: ExtensionIds::default(),
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            initial_seq: 0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    /// A single NAL unit packet.
    Single { nal: usize },
    /// An aggregation packet (STAP-A / AP) of `count` units from `first`.
    Aggregate { first: usize, count: usize },
    /// One fragment (FU-A / FU) of `nal`: body bytes `offset..offset + len`.
    Fragment {
        nal: usize,
        offset: usize,
        len: usize,
        start: bool,
        end: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Planned {
    chunk: Chunk,
    set: ExtSet,
    /// Payload bytes (after the extension block).
    payload: usize,
}

/// Packetizes the frames of one H.264 or H.265 track.
#[derive(Debug)]
pub struct VideoPacketizer {
    codec: Codec,
    track: Track,
    /// RTP timestamp of the last I or P frame (for reference-frame-timestamp).
    last_reference: Option<u32>,
    plan: Vec<Planned>,
}

impl VideoPacketizer {
    pub fn new(config: VideoPacketizerConfig) -> Result<Self, PacketizeError> {
        if !config.codec.is_video() {
            return Err(PacketizeError::UnsupportedCodec(config.codec));
        }
        let track = Track::new(
            config.ssrc,
            config.payload_type,
            config.ext,
            config.max_packet_size,
            config.initial_seq,
        )?;
        Ok(VideoPacketizer {
            codec: config.codec,
            track,
            last_reference: None,
            plan: Vec::new(),
        })
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn ssrc(&self) -> u32 {
        self.track.ssrc
    }

    /// Extended sequence number the next packet will get.
    pub fn next_seq(&self) -> u64 {
        self.track.next_seq
    }

    /// Packetizes one frame, appending its packets to `out`. On error nothing is appended and
    /// no sequence number is used.
    pub fn push(
        &mut self,
        frame: &Frame,
        out: &mut Vec<MediaPacket>,
    ) -> Result<(), PacketizeError> {
        if frame.codec != self.codec {
            return Err(PacketizeError::CodecMismatch {
                expected: self.codec,
                got: frame.codec,
            });
        }
        let FrameData::Nalus(nals) = &frame.data else {
            return Err(PacketizeError::WrongData);
        };
        if nals.is_empty() {
            return Err(PacketizeError::EmptyFrame);
        }
        match self.codec {
            Codec::H264 => self.push_nals::<H264>(frame, nals, out),
            Codec::H265 => self.push_nals::<H265>(frame, nals, out),
            other => Err(PacketizeError::UnsupportedCodec(other)),
        }
    }

    fn push_nals<C: NalCodec>(
        &mut self,
        frame: &Frame,
        nals: &[Bytes],
        out: &mut Vec<MediaPacket>,
    ) -> Result<(), PacketizeError> {
        for (index, nal) in nals.iter().enumerate() {
            if nal.len() < C::HEADER_LEN {
                return Err(PacketizeError::ShortNal {
                    index,
                    header: C::HEADER_LEN,
                });
            }
        }
        let kind = match frame.kind {
            FrameKind::Audio => FrameKind::Inter,
            k => k,
        };
        let frame_type = FrameType::from_kind(kind);
        let dts_clock = ms_to_clock(frame.dts, VIDEO_CLOCK_RATE);
        let cts_clock = i32::try_from(ms_to_clock(i64::from(frame.cts), VIDEO_CLOCK_RATE))
            .map_err(|_| PacketizeError::CompositionOutOfRange(frame.cts))?;
        let timestamp = wire(dts_clock + i64::from(cts_clock));
        let ref_ts = if kind == FrameKind::Inter {
            self.last_reference
        } else {
            None
        };
        let vals = FrameValues {
            dts: wire(dts_clock),
            cts: cts_clock,
            frame_type,
            ref_ts,
            aac_config: &[],
        };

        self.plan_frame::<C>(nals, ref_ts.is_some())?;

        let count = self.plan.len() as u64;
        let first_seq = self.track.next_seq;
        let range = FrameSeqRange {
            first: first_seq as u16,
            last: (first_seq + count - 1) as u16,
        };
        let total: usize = self
            .plan
            .iter()
            .map(|p| self.track.overhead(p.set, 0) + p.payload)
            .sum();
        let mut buf = BytesMut::with_capacity(total);
        out.reserve(self.plan.len());
        for (i, p) in self.plan.iter().enumerate() {
            let last = i + 1 == self.plan.len();
            let seq = first_seq + i as u64;
            let off = self
                .track
                .write_header(&mut buf, seq, timestamp, last, p.set, &vals, range);
            match p.chunk {
                Chunk::Single { nal } => buf.put_slice(&nals[nal]),
                Chunk::Aggregate { first, count } => {
                    let units = &nals[first..first + count];
                    C::write_agg_header(units, &mut buf);
                    for u in units {
                        buf.put_u16(u.len() as u16);
                        buf.put_slice(u);
                    }
                }
                Chunk::Fragment {
                    nal,
                    offset,
                    len,
                    start,
                    end,
                } => {
                    let nal = &nals[nal];
                    C::write_fu_header(nal, start, end, &mut buf);
                    buf.put_slice(&nal[offset..offset + len]);
                }
            }
            out.push(MediaPacket {
                // `split` hands out what was written and keeps the rest of the one allocation.
                bytes: buf.split().freeze(),
                track: TrackKind::Video,
                seq,
                timestamp,
                marker: last,
                frame_kind: kind,
                keyframe_start: i == 0 && kind == FrameKind::Key,
                dts_ms: frame.dts,
                seq_range_offset: off,
            });
        }
        self.track.next_seq += count;
        if matches!(kind, FrameKind::Key | FrameKind::Inter) {
            self.last_reference = Some(timestamp);
        }
        Ok(())
    }

    /// Fills `self.plan` with the packets of one frame.
    fn plan_frame<C: NalCodec>(
        &mut self,
        nals: &[Bytes],
        has_ref: bool,
    ) -> Result<(), PacketizeError> {
        self.plan.clear();
        let set_for = |first: bool, params: bool| ExtSet {
            cts: first || params,
            frame_type: true,
            ref_ts: first && has_ref,
            aac_config: false,
        };
        let mut i = 0;
        while i < nals.len() {
            let first = self.plan.is_empty();
            let nal = &nals[i];
            let params = C::is_parameter_set(nal);
            let set = set_for(first, params);
            let cap = self.track.capacity(set, 0);
            if params {
                // Aggregate the run of parameter sets that fits one packet.
                let mut size = C::AGG_HEADER_LEN;
                let mut j = i;
                while j < nals.len()
                    && C::is_parameter_set(&nals[j])
                    && nals[j].len() <= usize::from(u16::MAX)
                    && size + 2 + nals[j].len() <= cap
                {
                    size += 2 + nals[j].len();
                    j += 1;
                }
                if j - i >= 2 {
                    self.plan.push(Planned {
                        chunk: Chunk::Aggregate {
                            first: i,
                            count: j - i,
                        },
                        set,
                        payload: size,
                    });
                    i = j;
                    continue;
                }
            }
            if nal.len() <= cap && C::can_be_single(nal) {
                self.plan.push(Planned {
                    chunk: Chunk::Single { nal: i },
                    set,
                    payload: nal.len(),
                });
            } else {
                let body = nal.len() - C::HEADER_LEN;
                if body == 0 {
                    // A header-only NAL unit of a type that cannot go alone: FU needs a body.
                    return Err(PacketizeError::ShortNal {
                        index: i,
                        header: C::HEADER_LEN + 1,
                    });
                }
                let mut offset = C::HEADER_LEN;
                while offset < nal.len() {
                    let set = set_for(self.plan.is_empty(), params);
                    let room = self.track.capacity(set, 0) - C::FU_OVERHEAD;
                    let len = room.min(nal.len() - offset);
                    self.plan.push(Planned {
                        chunk: Chunk::Fragment {
                            nal: i,
                            offset,
                            len,
                            start: offset == C::HEADER_LEN,
                            end: offset + len == nal.len(),
                        },
                        set,
                        payload: C::FU_OVERHEAD + len,
                    });
                    offset += len;
                }
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpView;

    fn nal(header: &[u8], len: usize) -> Bytes {
        let mut v = header.to_vec();
        v.extend((0..len - header.len()).map(|i| (i * 7 + 3) as u8));
        Bytes::from(v)
    }

    fn key264(idr_len: usize) -> Frame {
        Frame {
            codec: Codec::H264,
            kind: FrameKind::Key,
            dts: 1000,
            cts: 40,
            data: FrameData::Nalus(vec![
                nal(&[0x67], 20),
                nal(&[0x68], 5),
                nal(&[0x65], idr_len),
            ]),
        }
    }

    #[test]
    fn h264_keyframe_is_stap_then_fu() {
        let mut p = VideoPacketizer::new(VideoPacketizerConfig::new(Codec::H264, 7, 96)).unwrap();
        let mut out = Vec::new();
        p.push(&key264(5000), &mut out).unwrap();
        let ids = ExtensionIds::default();
        let views: Vec<_> = out
            .iter()
            .map(|m| RtpView::parse(m.bytes.clone(), &ids).unwrap())
            .collect();
        assert!(out.iter().all(|m| m.len() <= 1200));
        assert_eq!(views[0].payload[0] & 0x1F, 24, "STAP-A first");
        assert_eq!(&views[0].payload[1..3], &[0, 20]);
        assert_eq!(views[1].payload[0] & 0x1F, 28);
        assert_eq!(views[1].payload[1], 0x80 | 5, "FU start");
        assert_eq!(views.last().unwrap().payload[1], 0x40 | 5, "FU end");
        assert!(views[2..views.len() - 1].iter().all(|v| v.payload[1] == 5));
        let marks: Vec<_> = views.iter().map(|v| v.marker).collect();
        assert_eq!(marks.iter().filter(|m| **m).count(), 1);
        assert!(views.last().unwrap().marker);
        assert!(out[0].keyframe_start && !out[1].keyframe_start);
        for (i, (m, v)) in out.iter().zip(&views).enumerate() {
            assert_eq!(m.seq, i as u64);
            assert_eq!(v.timestamp, 1040 * 90);
            assert_eq!(v.rtm.decoding_timestamp, Some(90_000));
            let r = v.rtm.frame_seq_range.unwrap();
            assert_eq!((r.first, r.last), (0, out.len() as u16 - 1));
            let off = usize::from(m.seq_range_offset.unwrap());
            assert_eq!(&m.bytes[off..off + 4], &r.to_bytes());
            assert_eq!(v.rtm.frame_type, Some(FrameType::Key));
            assert_eq!(
                v.rtm.composition_time.is_some(),
                i == 0,
                "CTS only on the STAP-A (first, params)"
            );
        }
        // total payload carried = NAL bodies
        let body: usize = views[1..].iter().map(|v| v.payload.len() - 2).sum();
        assert_eq!(body, 4999);
    }

    #[test]
    fn p_frame_references_previous_reference_and_b_does_not() {
        let mut p = VideoPacketizer::new(VideoPacketizerConfig::new(Codec::H264, 7, 96)).unwrap();
        let mut out = Vec::new();
        p.push(&key264(100), &mut out).unwrap();
        let mk = |kind, dts, cts| Frame {
            codec: Codec::H264,
            kind,
            dts,
            cts,
            data: FrameData::Nalus(vec![nal(&[0x41], 300)]),
        };
        p.push(&mk(FrameKind::Inter, 1040, 80), &mut out).unwrap();
        p.push(&mk(FrameKind::B, 1080, 0), &mut out).unwrap();
        p.push(&mk(FrameKind::Inter, 1120, 40), &mut out).unwrap();
        let ids = ExtensionIds::default();
        let v: Vec<_> = out
            .iter()
            .map(|m| RtpView::parse(m.bytes.clone(), &ids).unwrap())
            .collect();
        assert_eq!(v.len(), 5);
        assert_eq!(v[2].rtm.reference_frame_timestamp, Some(1040 * 90));
        assert_eq!(v[3].rtm.reference_frame_timestamp, None);
        assert_eq!(v[3].rtm.frame_type, Some(FrameType::B));
        assert_eq!(v[4].rtm.reference_frame_timestamp, Some(1120 * 90));
        assert!(v.iter().all(|v| v.marker == (v.sequence != 0)));
    }

    #[test]
    fn h265_uses_ap_and_fu() {
        let mut cfg = VideoPacketizerConfig::new(Codec::H265, 9, 97);
        cfg.max_packet_size = 300;
        let mut p = VideoPacketizer::new(cfg).unwrap();
        let frame = Frame {
            codec: Codec::H265,
            kind: FrameKind::Key,
            dts: 0,
            cts: 0,
            data: FrameData::Nalus(vec![
                nal(&[0x40, 0x01], 24),
                nal(&[0x42, 0x01], 40),
                nal(&[0x44, 0x01], 8),
                nal(&[0x26, 0x01], 1000),
            ]),
        };
        let mut out = Vec::new();
        p.push(&frame, &mut out).unwrap();
        assert!(out.iter().all(|m| m.len() <= 300));
        let v: Vec<_> = out
            .iter()
            .map(|m| RtpView::parse(m.bytes.clone(), &ExtensionIds::default()).unwrap())
            .collect();
        assert_eq!((v[0].payload[0] >> 1) & 0x3F, 48);
        assert_eq!(&v[0].payload[..2], &[0x60, 0x01]);
        assert_eq!((v[1].payload[0] >> 1) & 0x3F, 49);
        assert_eq!(v[1].payload[2], 0x80 | 19);
        assert_eq!(v.last().unwrap().payload[2], 0x40 | 19);
    }

    #[test]
    fn rejects_bad_input() {
        let mut p = VideoPacketizer::new(VideoPacketizerConfig::new(Codec::H264, 7, 96)).unwrap();
        let mut out = Vec::new();
        let mut f = key264(10);
        f.data = FrameData::Nalus(vec![Bytes::new()]);
        assert_eq!(
            p.push(&f, &mut out),
            Err(PacketizeError::ShortNal {
                index: 0,
                header: 1
            })
        );
        f.data = FrameData::Audio(Bytes::from_static(b"x"));
        assert_eq!(p.push(&f, &mut out), Err(PacketizeError::WrongData));
        f.codec = Codec::H265;
        assert!(matches!(
            p.push(&f, &mut out),
            Err(PacketizeError::CodecMismatch { .. })
        ));
        assert!(out.is_empty());
        assert_eq!(p.next_seq(), 0);
        assert!(VideoPacketizer::new(VideoPacketizerConfig::new(Codec::Aac, 1, 1)).is_err());
    }

    #[test]
    fn one_byte_form_when_ids_are_small() {
        let mut cfg = VideoPacketizerConfig::new(Codec::H264, 7, 96);
        cfg.ext = ExtensionIds::from_extmap(
            crate::rtp::ext::RtmExt::ALL
                .iter()
                .map(|e| (*e as u8 + 1, e.uri())),
        )
        .unwrap();
        let mut p = VideoPacketizer::new(cfg.clone()).unwrap();
        let mut out = Vec::new();
        p.push(&key264(3000), &mut out).unwrap();
        assert_eq!(&out[0].bytes[12..14], &[0xBE, 0xDE]);
        let v = RtpView::parse(out[1].bytes.clone(), &cfg.ext).unwrap();
        assert_eq!(v.rtm.decoding_timestamp, Some(90_000));
    }
}
