//! The admin API's view of the edge, read from snapshots and atomics only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::hub::Hub;
use crate::ingest::flv_out::FlvSessions;
use crate::media::Codec;
use crate::ops::admin_api::{
    AdminBackend, OriginHealth, OriginState, RoomError, RoomInfo, SessionInfo, StreamInfo,
};
use crate::ops::{Protocol, SessionState, StreamSource};
use crate::transport::socket::{KickList, SessionDirectory};

use super::streams::EdgeStreams;

/// Ingress byte counter of a stream at the previous sample, and the rate derived from it.
#[derive(Debug, Clone, Copy)]
struct Rate {
    bytes: u64,
    at: Instant,
    bps: u64,
}

/// Implements [`AdminBackend`] over the hub, the pull managers, the shards' session snapshots
/// and their kick list.
pub struct EdgeAdmin {
    hub: Arc<Hub>,
    streams: Arc<EdgeStreams>,
    kicks: KickList,
    sessions: SessionDirectory,
    /// The demo stream's key, when the demo runs.
    demo_key: Option<String>,
    /// Ingress rates per stream, refreshed by [`Self::sample`].
    rates: Mutex<HashMap<String, Rate>>,
    /// HTTP-FLV responses in progress.
    flv: Option<FlvSessions>,
    /// Who publishes what here (RTMP or WHIP).
    publishers: Option<Arc<crate::origin::HubTarget>>,
}

impl EdgeAdmin {
    pub fn new(
        hub: Arc<Hub>,
        streams: Arc<EdgeStreams>,
        kicks: KickList,
        sessions: SessionDirectory,
        demo_key: Option<String>,
    ) -> Self {
        Self {
            hub,
            streams,
            kicks,
            sessions,
            demo_key,
            rates: Mutex::new(HashMap::new()),
            flv: None,
            publishers: None,
        }
    }

    /// Tells RTMP from WHIP publishes by asking the ingest target.
    pub fn with_publishers(mut self, target: Arc<crate::origin::HubTarget>) -> Self {
        self.publishers = Some(target);
        self
    }

    /// Also lists (and kicks) HTTP-FLV responses.
    pub fn with_flv(mut self, flv: FlvSessions) -> Self {
        self.flv = Some(flv);
        self
    }

    /// Samples every stream's ingress byte counter; the rate over the last interval is what
    /// the admin API shows. Run about once a second (see [`Self::run_sampler`]).
    pub fn sample(&self, now: Instant) {
        let list = self.hub.list();
        let mut rates = self.rates.lock().unwrap_or_else(PoisonError::into_inner);
        rates.retain(|k, _| list.iter().any(|s| &s.key == k));
        for s in list {
            let r = rates.entry(s.key).or_insert(Rate {
                bytes: s.bytes,
                at: now,
                bps: 0,
            });
            let secs = now.saturating_duration_since(r.at).as_secs_f64();
            if secs > 0.0 {
                r.bps = (s.bytes.saturating_sub(r.bytes) as f64 * 8.0 / secs) as u64;
                r.bytes = s.bytes;
                r.at = now;
            }
        }
    }

    /// Calls [`Self::sample`] every `every` until the task is aborted.
    pub async fn run_sampler(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sample(Instant::now());
        }
    }

    fn source_of(&self, key: &str) -> StreamSource {
        let app = key.split('/').next().unwrap_or_default();
        if self.demo_key.as_deref() == Some(key) {
            StreamSource::Demo
        } else if self
            .streams
            .origins_for(app)
            .is_some_and(|p| p.is_pulling(key))
        {
            StreamSource::Origin
        } else {
            // Published here; by what, if the ingest target still holds the claim.
            self.publishers
                .as_ref()
                .and_then(|t| t.publisher_of(key))
                .unwrap_or(StreamSource::Rtmp)
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
        let mut egress: HashMap<String, u64> = HashMap::new();
        for s in self.sessions.list() {
            if let Some(k) = s.stream_key {
                *egress.entry(k).or_default() += s.egress_bps;
            }
        }
        let rates = self
            .rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
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
                    ingress_bitrate_bps: rates.get(&s.key).map_or(0, |r| r.bps),
                    egress_bitrate_bps: egress.get(&s.key).copied().unwrap_or(0),
                    uptime_ms: stream
                        .as_ref()
                        .map_or(0, |st| st.created_at().elapsed().as_millis() as u64),
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
        self.sessions
            .list()
            .into_iter()
            .map(|s| {
                let key = s.stream_key.unwrap_or_default();
                let (app, stream) = key.split_once('/').unwrap_or(("", &key));
                SessionInfo {
                    id: s.id,
                    protocol: s.protocol,
                    state: s.state,
                    app: app.to_owned(),
                    stream: stream.to_owned(),
                    remote_addr: s.remote,
                    age_ms: s.age.as_millis() as u64,
                    bytes_sent: s.stats.bytes_sent,
                    packets_sent: s.stats.packets_sent,
                    nacks_received: s.stats.nacked_seqs,
                    retransmits: s.stats.retransmits,
                    rtt_ms: s.stats.rtt.map(|d| d.as_secs_f64() * 1e3),
                }
            })
            .chain(self.flv.iter().flat_map(|f| f.list()).map(|s| {
                let (app, stream) = s.stream_key.split_once('/').unwrap_or(("", &s.stream_key));
                SessionInfo {
                    id: s.id.clone(),
                    protocol: Protocol::HttpFlv,
                    state: SessionState::Connected,
                    app: app.to_owned(),
                    stream: stream.to_owned(),
                    remote_addr: None,
                    age_ms: s.started.elapsed().as_millis() as u64,
                    bytes_sent: s.bytes.load(std::sync::atomic::Ordering::Relaxed),
                    packets_sent: s.tags.load(std::sync::atomic::Ordering::Relaxed),
                    nacks_received: 0,
                    retransmits: 0,
                    rtt_ms: None,
                }
            }))
            .collect()
    }

    /// Posts a kick for a session the latest snapshots list; the shard holding it closes it
    /// (RTCP BYE, DTLS close_notify) on its next loop iteration.
    fn kick_session(&self, id: &str) -> bool {
        if id.is_empty() {
            return false;
        }
        if let Some(f) = &self.flv
            && f.kick(id)
        {
            return true;
        }
        if !self.sessions.contains(id) {
            return false;
        }
        self.kicks
            .lock()
            .map(|mut k| k.push((id.to_owned(), Instant::now())))
            .is_ok()
    }

    fn list_rooms(&self) -> Vec<RoomInfo> {
        self.streams.rooms().list()
    }

    fn room(&self, room: &str) -> Option<RoomInfo> {
        self.streams.rooms().info_of(room)
    }

    fn create_room(&self, room: &str, source: &str) -> Result<RoomInfo, RoomError> {
        let info = self
            .streams
            .rooms()
            .create(room, source, self.streams.as_ref())?;
        tracing::info!(room, source, "room created");
        Ok(info)
    }

    fn switch_room(&self, room: &str, source: &str) -> Result<RoomInfo, RoomError> {
        let info = self
            .streams
            .rooms()
            .switch(room, source, self.streams.as_ref())?;
        tracing::info!(room, source, viewers = info.viewers, "room switched");
        Ok(info)
    }

    fn delete_room(&self, room: &str) -> bool {
        let deleted = self.streams.rooms().delete(room);
        if deleted {
            tracing::info!(room, "room deleted");
        }
        deleted
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
