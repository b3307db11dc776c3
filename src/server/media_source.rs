//! The bridge from the hub to a viewer session: a [`Subscription`] cursor presented as the
//! transport's [`MediaSource`].
//!
//! Packets are handed over as the shared `Bytes` (no copy). When the subscription is moved to a
//! keyframe (the viewer fell out of the ring, or asked for a keyframe) or to another stream
//! (co-host switch), the packets stop following each other; a [`Continuity`] then computes the
//! per-track offsets that keep the viewer's sequence numbers and timestamps continuous, and the
//! session applies them in the copy it makes for SRTP anyway.

use std::sync::Arc;

use crate::hub::{Continuity, JumpReason, Recv, Stream, Subscription};
use crate::media::TrackKind;
use crate::ops::Metrics;
use crate::rtp::MediaPacket;
use crate::transport::MediaSource;
use crate::transport::shard::MAX_PER_POLL;

/// A viewer's media: one subscription plus its continuity state (about 200 bytes).
pub struct HubSource {
    sub: Subscription,
    continuity: Continuity,
    offsets: [(u16, u32); 2],
    jumps: u64,
    /// Counts GOP jumps and switches (`rtmlive_gop_jumps_total`, `rtmlive_switch_events_total`).
    metrics: Option<Arc<Metrics>>,
    /// Keeps the stream's source alive while this viewer watches (see
    /// [`crate::signal::Resolved::hold`]).
    _hold: Option<Box<dyn Send>>,
}

fn lane(t: TrackKind) -> usize {
    match t {
        TrackKind::Audio => 0,
        TrackKind::Video => 1,
    }
}

impl HubSource {
    /// Starts at the stream's cached keyframe (fast start).
    pub fn new(stream: &Arc<Stream>) -> Self {
        let audio_clock = stream.audio_config().map_or(48_000, |a| a.sample_rate);
        Self {
            sub: stream.subscribe(),
            continuity: Continuity::new(90_000, audio_clock),
            offsets: [(0, 0); 2],
            jumps: 0,
            metrics: None,
            _hold: None,
        }
    }

    /// Attaches what must live as long as this viewer (an origin-pull lease).
    pub fn with_hold(mut self, hold: Option<Box<dyn Send>>) -> Self {
        self._hold = hold;
        self
    }

    /// Records jumps and switches in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Times this viewer was moved to a keyframe because it fell behind or asked for one.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }
}

impl MediaSource for HubSource {
    fn poll_packets(&mut self, out: &mut Vec<MediaPacket>) {
        let start = out.len();
        match self.sub.poll(out, MAX_PER_POLL) {
            Recv::Jumped { jump, .. } => {
                self.jumps += 1;
                self.continuity.begin_epoch();
                // A keyframe request is answered by a replay, not a skip forward.
                if jump.reason != JumpReason::KeyframeRequest
                    && let Some(m) = &self.metrics
                {
                    m.gop_jump();
                }
            }
            Recv::Switched { .. } => {
                self.jumps += 1;
                self.continuity.begin_epoch();
                if let Some(m) = &self.metrics {
                    m.switch_event();
                }
            }
            Recv::Items(_) | Recv::Pending | Recv::Closed => {}
        }
        for pkt in &out[start..] {
            let rw = self.continuity.rewrite(pkt);
            self.offsets[lane(pkt.track)] =
                (rw.seq_delta, rw.timestamp.wrapping_sub(pkt.timestamp));
        }
    }

    fn lookup(&self, track: TrackKind, seq16: u16) -> Option<MediaPacket> {
        self.sub.stream().lookup(track, seq16)
    }

    fn request_keyframe(&mut self, _track: TrackKind) {
        // Served from the GOP cache by moving this cursor; never forwarded upstream.
        self.sub.request_keyframe();
    }

    fn offsets(&self, track: TrackKind) -> (u16, u32) {
        self.offsets[lane(track)]
    }

    fn stream_key(&self) -> Option<&str> {
        Some(self.sub.stream().key())
    }
}
