//! Metrics for RTMP publishers: a [`PublishTarget`] wrapper that counts each accepted publish
//! as an `rtmp` session and its tags as ingress, so the ingest code itself stays unaware of
//! metrics.

use std::sync::Arc;

use crate::ingest::rtmp_server::{PlaySource, PublishTarget, TagSink};
use crate::ops::{IngressSource, Metrics, Protocol, SessionState};
use crate::rtmp::MediaTag;

/// Wraps the real target; every method delegates.
pub struct CountingTarget {
    inner: Arc<dyn PublishTarget>,
    metrics: Arc<Metrics>,
}

impl CountingTarget {
    pub fn new(inner: Arc<dyn PublishTarget>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl PublishTarget for CountingTarget {
    fn start_publish(&self, app: &str, stream: &str) -> Result<Box<dyn TagSink>, String> {
        let sink = self.inner.start_publish(app, stream)?;
        self.metrics
            .session_opened(Protocol::Rtmp, SessionState::Connected);
        Ok(Box::new(CountingSink {
            inner: sink,
            metrics: self.metrics.clone(),
        }))
    }

    fn start_play(&self, app: &str, stream: &str) -> Result<Box<dyn PlaySource>, String> {
        self.inner.start_play(app, stream)
    }
}

/// One publish: a tag is one relaxed add pair (RTMP tags arrive at frame rate, not per packet).
struct CountingSink {
    inner: Box<dyn TagSink>,
    metrics: Arc<Metrics>,
}

impl TagSink for CountingSink {
    fn on_tag(&mut self, tag: MediaTag) -> Result<(), String> {
        self.metrics
            .ingress(IngressSource::Rtmp, 1, tag.body.len() as u64);
        self.inner.on_tag(tag)
    }
}

impl Drop for CountingSink {
    fn drop(&mut self) {
        self.metrics
            .session_closed(Protocol::Rtmp, SessionState::Connected);
    }
}
