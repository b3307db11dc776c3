//! How the two kinds of shared items (RTP packets, frames) sit in a stream's rings.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::media::{Frame, FrameKind, TrackKind};
use crate::rtp::MediaPacket;

use super::ring::{Ring, RingItem};
use super::stream::Stream;

impl RingItem for MediaPacket {
    fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    fn time_ms(&self) -> i64 {
        self.dts_ms
    }

    fn track(&self) -> TrackKind {
        self.track
    }

    fn ends_unit(&self) -> bool {
        // Video: the marker bit ends a frame. Audio packetizers set it on every packet, but an
        // audio frame split over several packets ends at its marker too.
        self.marker
    }

    fn starts_track(&self) -> bool {
        self.track == TrackKind::Audio || self.keyframe_start
    }

    fn track_seq(&self) -> Option<u64> {
        Some(self.seq)
    }
}

impl RingItem for Arc<Frame> {
    fn byte_len(&self) -> usize {
        self.data.len()
    }

    fn time_ms(&self) -> i64 {
        self.dts
    }

    fn track(&self) -> TrackKind {
        self.codec.track()
    }

    fn ends_unit(&self) -> bool {
        true
    }

    fn starts_track(&self) -> bool {
        self.kind == FrameKind::Audio || self.kind == FrameKind::Key
    }

    fn track_seq(&self) -> Option<u64> {
        None
    }
}

/// An item type a [`Stream`] keeps a ring of. Sealed: exactly [`MediaPacket`] and
/// `Arc<Frame>`.
pub trait StreamItem: RingItem + sealed::Sealed {
    #[doc(hidden)]
    fn ring(stream: &Stream) -> &Ring<Self>;
    #[doc(hidden)]
    fn subscriber_count(stream: &Stream) -> &AtomicUsize;
}

impl StreamItem for MediaPacket {
    fn ring(stream: &Stream) -> &Ring<Self> {
        stream.packet_ring()
    }

    fn subscriber_count(stream: &Stream) -> &AtomicUsize {
        &stream.viewers
    }
}

impl StreamItem for Arc<Frame> {
    fn ring(stream: &Stream) -> &Ring<Self> {
        stream.frame_ring()
    }

    fn subscriber_count(stream: &Stream) -> &AtomicUsize {
        &stream.frame_subscribers
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::rtp::MediaPacket {}
    impl Sealed for std::sync::Arc<crate::media::Frame> {}
}
