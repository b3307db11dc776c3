//! Groups an in-order packet sequence of one track into frames.

use crate::rtp::RtpView;

/// The packets of one frame, as [`FrameAssembler`] delimited them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledFrame {
    pub packets: Vec<RtpView>,
    /// True when the frame is known whole: contiguous sequence numbers from the first to the
    /// last of its frame-seq-range, or (without that extension) up to a marker bit.
    pub complete: bool,
}

/// Most packets one frame may have before the assembler gives up on it (about 19 MB at 1200-byte
/// packets): bounds memory against a sender that never ends a frame.
pub const MAX_FRAME_PACKETS: usize = 16_384;

/// Splits an in-order stream of packets (after the jitter buffer has put them in sequence
/// order) into frames.
///
/// A frame ends at the last sequence number of its frame-seq-range, or, without that extension,
/// at the marker bit. A change of RTP timestamp or frame-seq-range, or a sequence gap, closes the
/// pending packets as an incomplete frame (the player NACKs or waits for a keyframe).
#[derive(Debug, Clone, Default)]
pub struct FrameAssembler {
    pending: Vec<RtpView>,
}

impl FrameAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next packet; appends every frame it closes to `out` (at most two: an
    /// interrupted incomplete one and the one this packet completes).
    pub fn push(&mut self, packet: RtpView, out: &mut Vec<AssembledFrame>) {
        if let Some(last) = self.pending.last() {
            let same_frame = self.pending.len() < MAX_FRAME_PACKETS
                && last.timestamp == packet.timestamp
                && last.sequence.wrapping_add(1) == packet.sequence
                && last.rtm.frame_seq_range == packet.rtm.frame_seq_range;
            if !same_frame {
                out.push(AssembledFrame {
                    packets: std::mem::take(&mut self.pending),
                    complete: false,
                });
            }
        }
        let seq = packet.sequence;
        let range = packet.rtm.frame_seq_range;
        let marker = packet.marker;
        self.pending.push(packet);
        let first = self.pending[0].sequence;
        let done = match range {
            Some(r) => seq == r.last || !r.contains(seq),
            None => marker,
        };
        if done {
            let complete = match range {
                Some(r) => r.first == first && r.last == seq,
                None => true,
            };
            out.push(AssembledFrame {
                packets: std::mem::take(&mut self.pending),
                complete,
            });
        }
    }

    /// Hands out the pending packets (an unfinished frame), e.g. at the end of a stream.
    pub fn flush(&mut self) -> Option<AssembledFrame> {
        (!self.pending.is_empty()).then(|| AssembledFrame {
            packets: std::mem::take(&mut self.pending),
            complete: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{Codec, Frame, FrameData, FrameKind};
    use crate::rtp::{ExtensionIds, VideoPacketizer, VideoPacketizerConfig};
    use bytes::Bytes;

    fn packets(ids: ExtensionIds) -> Vec<RtpView> {
        let mut cfg = VideoPacketizerConfig::new(Codec::H264, 1, 96);
        cfg.ext = ids;
        let mut p = VideoPacketizer::new(cfg).unwrap();
        let mut out = Vec::new();
        for i in 0..3 {
            let f = Frame {
                codec: Codec::H264,
                kind: FrameKind::Inter,
                dts: i * 40,
                cts: 0,
                data: FrameData::Nalus(vec![Bytes::from(vec![0x41; 3000])]),
            };
            p.push(&f, &mut out).unwrap();
        }
        out.into_iter()
            .map(|m| RtpView::parse(m.bytes, &ids).unwrap())
            .collect()
    }

    fn assemble(views: Vec<RtpView>) -> Vec<(usize, bool)> {
        let mut a = FrameAssembler::new();
        let mut out = Vec::new();
        for v in views {
            a.push(v, &mut out);
        }
        out.extend(a.flush());
        out.into_iter()
            .map(|f| (f.packets.len(), f.complete))
            .collect()
    }

    #[test]
    fn groups_by_range_and_marker() {
        assert_eq!(
            assemble(packets(ExtensionIds::default())),
            [(3, true), (3, true), (3, true)]
        );
        assert_eq!(
            assemble(packets(ExtensionIds::none())),
            [(3, true), (3, true), (3, true)]
        );
    }

    #[test]
    fn lost_head_or_tail_makes_incomplete_frames() {
        let mut v = packets(ExtensionIds::default());
        v.remove(3); // head of frame 2
        assert_eq!(assemble(v), [(3, true), (2, false), (3, true)]);
        let mut v = packets(ExtensionIds::default());
        v.remove(5); // tail of frame 2
        assert_eq!(assemble(v), [(3, true), (2, false), (3, true)]);
        let mut v = packets(ExtensionIds::none());
        v.remove(5); // tail, no range: the timestamp change closes it
        assert_eq!(assemble(v), [(3, true), (2, false), (3, true)]);
    }
}
