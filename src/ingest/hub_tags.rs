//! Reads a hub stream as FLV tags: sequence headers before the first frame and whenever a
//! configuration changes, then frames. Shared by HTTP-FLV out and RTMP play, which differ only
//! in framing (FLV file vs. RTMP messages).

use std::sync::Arc;

use tokio::sync::Notify;

use crate::hub::{FrameSubscription, Recv, StartAt, Stream};
use crate::media::flv_mux::{self, FlvTag, HevcMode};
use crate::media::{AudioConfig, Frame, VideoConfig};

/// A frame subscription turned into FLV tags.
pub struct HubTagReader {
    stream: Arc<Stream>,
    sub: FrameSubscription,
    notify: Arc<Notify>,
    hevc: HevcMode,
    batch: usize,
    video: Option<Arc<VideoConfig>>,
    audio: Option<Arc<AudioConfig>>,
    items: Vec<Arc<Frame>>,
}

impl HubTagReader {
    /// Starts at the cached keyframe (or the next one).
    pub fn new(stream: Arc<Stream>, hevc: HevcMode, batch: usize) -> HubTagReader {
        let notify = Arc::new(Notify::new());
        let sub = stream.subscribe_frames(StartAt::CachedKeyframe, Some(notify.clone()));
        HubTagReader {
            stream,
            sub,
            notify,
            hevc,
            batch: batch.max(1),
            video: None,
            audio: None,
            items: Vec::new(),
        }
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// The next tags; `None` once the stream is closed and drained. Cancel-safe.
    pub async fn next(&mut self) -> Option<Vec<FlvTag>> {
        loop {
            match self.sub.poll(&mut self.items, self.batch) {
                Recv::Closed => return None,
                Recv::Pending => {
                    self.notify.notified().await;
                    continue;
                }
                Recv::Items(_) | Recv::Jumped { .. } | Recv::Switched { .. } => {}
            }
            let mut tags = Vec::with_capacity(self.items.len() + 2);
            for frame in std::mem::take(&mut self.items) {
                self.config_tags(frame.dts, &mut tags);
                match flv_mux::frame_tag(&frame, self.hevc) {
                    Ok(t) => tags.push(t),
                    Err(e) => {
                        tracing::debug!(stream = self.stream.key(), error = %e, "frame not muxable")
                    }
                }
            }
            if !tags.is_empty() {
                return Some(tags);
            }
        }
    }

    fn config_tags(&mut self, dts: i64, tags: &mut Vec<FlvTag>) {
        let vc = self.stream.video_config();
        if vc.is_some() && vc != self.video {
            if let Some(c) = &vc {
                match flv_mux::video_config_tag(c, dts, self.hevc) {
                    Ok(t) => tags.push(t),
                    Err(e) => {
                        tracing::warn!(stream = self.stream.key(), error = %e, "video config")
                    }
                }
            }
            self.video = vc;
        }
        let ac = self.stream.audio_config();
        if ac.is_some() && ac != self.audio {
            if let Some(c) = &ac {
                match flv_mux::audio_config_tag(c, dts) {
                    Ok(t) => tags.push(t),
                    Err(e) => {
                        tracing::warn!(stream = self.stream.key(), error = %e, "audio config")
                    }
                }
            }
            self.audio = ac;
        }
    }
}
