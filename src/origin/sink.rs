//! Where demuxed streams go: the seam between origin/ingest drivers and the hub.
//!
//! Drivers (pulls, RTMP publishers, the demo source) produce [`DemuxEvent`]s; whoever owns the
//! hub implements [`MediaSink`] (packetize once, push to the stream) and [`PullTarget`].

use std::sync::Arc;

use crate::media::DemuxEvent;

/// Receives one stream's demuxed events, in order.
pub trait MediaSink: Send + Sync + 'static {
    /// Metadata, decoder configurations and frames; frame timestamps are on the stream's
    /// continuous timeline (monotonic per track).
    fn on_event(&self, ev: DemuxEvent);
    /// The source switched (upstream failover): the next frame is a keyframe after a gap.
    fn on_gap(&self) {}
    /// The source ended (idle, every upstream failed, publisher left).
    fn on_end(&self) {}
}

/// Creates the sink of a stream when its pull starts.
pub trait PullTarget: Send + Sync + 'static {
    /// `key` is `app/stream`.
    fn open(&self, key: &str) -> Arc<dyn MediaSink>;
}
