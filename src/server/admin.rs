//! The admin API's view of the edge, read from snapshots and atomics only.

use std::sync::Arc;
use std::time::Instant;

use crate::hub::Hub;
use crate::media::Codec;
use crate::ops::StreamSource;
use crate::ops::admin_api::{AdminBackend, OriginHealth, OriginState, SessionInfo, StreamInfo};
use crate::transport::socket::KickList;

use super::streams::EdgeStreams;

/// Implements [`AdminBackend`] over the hub, the pull managers and the shards' kick list.
pub struct EdgeAdmin {
    hub: Arc<Hub>,
    streams: Arc<EdgeStreams>,
    kicks: KickList,
    demo_key: String,
    started: Instant,
}

impl EdgeAdmin {
    pub fn new(
        hub: Arc<Hub>,
        streams: Arc<EdgeStreams>,
        kicks: KickList,
        demo_key: String,
    ) -> Self {
        Self {
            hub,
            streams,
            kicks,
            demo_key,
            started: Instant::now(),
        }
    }

    fn source_of(&self, key: &str) -> StreamSource {
        let app = key.split('/').next().unwrap_or_default();
        if key == self.demo_key {
            StreamSource::Demo
        } else if self
            .streams
            .origins_for(app)
            .is_some_and(|p| p.is_pulling(key))
        {
            StreamSource::Origin
        } else {
            StreamSource::Rtmp
        }
    }
}

fn codec_name(c: Codec) -> String {
    match c {
        Codec::H264 => "h264",
        Codec::H265 => "h265",
        Codec::Aac => "aac",
        Codec::Opus => "opus",
    }
    .to_owned()
}

impl AdminBackend for EdgeAdmin {
    fn list_streams(&self) -> Vec<StreamInfo> {
        self.hub
            .list()
            .into_iter()
            .filter(|s| !s.closed)
            .map(|s| {
                let stream = self.hub.get(&s.key);
                let (app, name) = s.key.split_once('/').unwrap_or(("", &s.key));
                StreamInfo {
                    app: app.to_owned(),
                    stream: name.to_owned(),
                    source: self.source_of(&s.key),
                    viewers: s.viewers as u64,
                    video_codec: stream
                        .as_ref()
                        .and_then(|st| st.video_config())
                        .map(|c| codec_name(c.codec)),
                    audio_codec: stream
                        .as_ref()
                        .and_then(|st| st.audio_config())
                        .map(|c| codec_name(c.codec)),
                    ingress_bitrate_bps: 0,
                    egress_bitrate_bps: 0,
                    uptime_ms: self.started.elapsed().as_millis() as u64,
                    gop_cache_bytes: s.packet_ring.bytes as u64,
                }
            })
            .collect()
    }

    fn close_stream(&self, app: &str, stream: &str) -> bool {
        match self.hub.remove(&format!("{app}/{stream}")) {
            Some(s) => {
                s.close();
                true
            }
            None => false,
        }
    }

    fn list_sessions(&self) -> Vec<SessionInfo> {
        Vec::new()
    }

    fn kick_session(&self, id: &str) -> bool {
        if id.is_empty() {
            return false;
        }
        self.kicks
            .lock()
            .map(|mut k| k.push((id.to_owned(), Instant::now())))
            .is_ok()
    }

    fn origin_health(&self) -> Vec<OriginHealth> {
        let mut out = Vec::new();
        for o in self.streams.all_origins() {
            let active = o.pulls.pulls();
            for h in o.pulls.health() {
                out.push(OriginHealth {
                    app: o.app.clone(),
                    active_pulls: active
                        .iter()
                        .filter(|p| p.upstream.as_deref() == Some(h.id.as_str()))
                        .count() as u64,
                    url: h.id,
                    state: if h.state == "ejected" {
                        OriginState::Unhealthy
                    } else {
                        OriginState::Healthy
                    },
                    attempts: (h.successes + h.failures) as u64,
                    failures: h.failures as u64,
                    cooldown_remaining_ms: (h.ejected_for_ms > 0).then_some(h.ejected_for_ms),
                })
            }
        }
        out
    }
}
