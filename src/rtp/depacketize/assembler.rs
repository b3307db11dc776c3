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
            let same_frame = last.timestamp == packet.timestamp
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
