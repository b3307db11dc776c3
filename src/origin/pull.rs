//! The pull manager: one pull per stream per edge, shared by all its viewers.
//!
//! * **Single flight**: the first viewer of a cold stream starts the pull; every other viewer
//!   joins it (a map under one mutex decides), so N simultaneous offers open one upstream
//!   connection.
//! * **Failover**: upstreams are tried in [`UpstreamSet::order`], skipping those
//!   [`HealthTracker`] has ejected. When a connection fails mid-stream the next upstream is
//!   tried and frames resume at its next keyframe on a continuous [`Timeline`]; viewers see one
//!   gap (counted) and keep their sessions.
//! * **Timeouts**: connect, first byte, first keyframe and stall, all configurable.
//! * **Linger**: a stream whose last viewer left ends `linger` later unless a viewer returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::error::PullError;
use super::health::{HealthConfig, HealthSnapshot, HealthTracker};
use super::http_flv::HttpFlvOptions;
use super::rtmp_play::RtmpPlayOptions;
use super::sink::{MediaSink, PullTarget};
use super::source::{Source, SourceOptions};
use super::timeline::Timeline;
use super::upstreams::{Upstream, UpstreamSet};
use crate::media::{DemuxEvent, FrameKind, TrackKind};
use crate::ops::{IngressSource, Metrics, PullOutcome, Stage};

/// Pull timeouts; every one is configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PullTimeouts {
    #[serde(with = "ms")]
    pub connect: Duration,
    /// Request sent → response head / RTMP play started.
    #[serde(with = "ms")]
    pub first_byte: Duration,
    /// Connection attempt started → first keyframe.
    #[serde(with = "ms")]
    pub first_keyframe: Duration,
    /// Longest silence of a flowing upstream.
    #[serde(with = "ms")]
    pub stall: Duration,
}

impl Default for PullTimeouts {
    fn default() -> Self {
        PullTimeouts {
            connect: Duration::from_secs(2),
            first_byte: Duration::from_secs(3),
            first_keyframe: Duration::from_secs(5),
            stall: Duration::from_secs(3),
        }
    }
}

/// Configuration of the pull manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PullConfig {
    pub upstreams: UpstreamSet,
    pub health: HealthConfig,
    pub timeouts: PullTimeouts,
    pub max_redirects: u8,
    /// How long a stream without viewers keeps pulling.
    #[serde(with = "ms")]
    pub linger: Duration,
    /// Pause after a whole round of upstreams failed without delivering.
    #[serde(with = "ms")]
    pub retry_delay: Duration,
    /// Rounds in a row without a keyframe after which the stream ends.
    pub max_failed_rounds: u32,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            upstreams: UpstreamSet::default(),
            health: HealthConfig::default(),
            timeouts: PullTimeouts::default(),
            max_redirects: 5,
            linger: Duration::from_secs(10),
            retry_delay: Duration::from_millis(500),
            max_failed_rounds: 3,
        }
    }
}

#[derive(Debug, Default)]
struct Demand {
    viewers: usize,
    idle_since: Option<Instant>,
}

/// Shared state of one running pull.
#[derive(Debug)]
struct PullState {
    key: String,
    demand: Mutex<Demand>,
    upstream: Mutex<Option<String>>,
    gaps: AtomicU64,
    frames: AtomicU64,
    connections: AtomicU64,
}

/// A running pull, for the admin API and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullInfo {
    pub key: String,
    /// Id of the upstream currently delivering, if any.
    pub upstream: Option<String>,
    pub viewers: usize,
    /// Upstream switches after media had flowed (each is one gap viewers saw).
    pub gaps: u64,
    pub frames: u64,
    /// Upstream connections opened by this pull.
    pub connections: u64,
}

struct Inner {
    config: PullConfig,
    target: Arc<dyn PullTarget>,
    health: Mutex<HealthTracker>,
    pulls: Mutex<HashMap<String, Arc<PullState>>>,
    connections: AtomicU64,
    metrics: OnceLock<Arc<Metrics>>,
}

/// The pull manager. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct PullManager {
    inner: Arc<Inner>,
}

/// A viewer's hold on a pull: dropping it is [`PullManager::viewer_left`].
pub struct PullLease {
    inner: Arc<Inner>,
    state: Arc<PullState>,
}

impl Drop for PullLease {
    fn drop(&mut self) {
        self.inner.leave(&self.state);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain counters behind: keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PullManager {
    pub fn new(config: PullConfig, target: Arc<dyn PullTarget>) -> PullManager {
        PullManager {
            inner: Arc::new(Inner {
                health: Mutex::new(HealthTracker::new(config.health)),
                config,
                target,
                pulls: Mutex::new(HashMap::new()),
                connections: AtomicU64::new(0),
                metrics: OnceLock::new(),
            }),
        }
    }

    /// Records upstream connections (`rtmlive_origin_pulls_*`), their first-frame stages and
    /// ingress in `metrics`. Set once, before the first pull.
    pub fn set_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.inner.metrics.set(metrics);
    }

    /// A viewer wants `app/stream`: joins the running pull or starts one (single flight).
    /// Must be called inside a tokio runtime.
    pub fn acquire(&self, key: &str) -> PullLease {
        let state = self.inner.join(&self.inner, key);
        PullLease {
            inner: self.inner.clone(),
            state,
        }
    }

    /// Key-based form of [`Self::acquire`] for callers that count viewers themselves; pair
    /// each call with [`Self::viewer_left`].
    pub fn viewer_joined(&self, key: &str) {
        self.inner.join(&self.inner, key);
    }

    /// A viewer of `key` left; the pull ends `linger` after the last one.
    pub fn viewer_left(&self, key: &str) {
        let state = lock(&self.inner.pulls).get(key).cloned();
        if let Some(s) = state {
            self.inner.leave(&s);
        }
    }

    /// Whether a pull of `key` is running.
    pub fn is_pulling(&self, key: &str) -> bool {
        lock(&self.inner.pulls).contains_key(key)
    }

    /// Running pulls, sorted by key.
    pub fn pulls(&self) -> Vec<PullInfo> {
        let mut v: Vec<PullInfo> = lock(&self.inner.pulls)
            .values()
            .map(|s| PullInfo {
                key: s.key.clone(),
                upstream: lock(&s.upstream).clone(),
                viewers: lock(&s.demand).viewers,
                gaps: s.gaps.load(Ordering::Relaxed),
                frames: s.frames.load(Ordering::Relaxed),
                connections: s.connections.load(Ordering::Relaxed),
            })
            .collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// Health of every upstream that has been used.
    pub fn health(&self) -> Vec<HealthSnapshot> {
        lock(&self.inner.health).snapshot(Instant::now())
    }

    /// Upstream connections opened since start (all streams).
    pub fn connections_opened(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn join(&self, me: &Arc<Inner>, key: &str) -> Arc<PullState> {
        let mut pulls = lock(&self.pulls);
        if let Some(s) = pulls.get(key) {
            let mut d = lock(&s.demand);
            d.viewers += 1;
            d.idle_since = None;
            return s.clone();
        }
        let state = Arc::new(PullState {
            key: key.to_owned(),
            demand: Mutex::new(Demand {
                viewers: 1,
                idle_since: None,
            }),
            upstream: Mutex::new(None),
            gaps: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        pulls.insert(key.to_owned(), state.clone());
        tokio::spawn(run_pull(me.clone(), state.clone()));
        state
    }

    fn leave(&self, s: &PullState) {
        let mut d = lock(&s.demand);
        d.viewers = d.viewers.saturating_sub(1);
        if d.viewers == 0 {
            d.idle_since = Some(Instant::now());
        }
    }

    /// Ends the pull if it has had no viewers for `linger`: removes it from the map (under the
    /// map lock, so a viewer arriving now starts a fresh pull instead of joining a dying one).
    fn try_retire(&self, s: &Arc<PullState>) -> bool {
        let expired = |d: &Demand| {
            d.viewers == 0
                && d.idle_since
                    .is_some_and(|t| t.elapsed() >= self.config.linger)
        };
        if !expired(&lock(&s.demand)) {
            return false;
        }
        let mut pulls = lock(&self.pulls);
        if !expired(&lock(&s.demand)) {
            return false;
        }
        if pulls.get(&s.key).is_some_and(|x| Arc::ptr_eq(x, s)) {
            pulls.remove(&s.key);
        }
        true
    }

    fn remove(&self, s: &Arc<PullState>) {
        let mut pulls = lock(&self.pulls);
        if pulls.get(&s.key).is_some_and(|x| Arc::ptr_eq(x, s)) {
            pulls.remove(&s.key);
        }
    }

    /// Upstreams to try for `key`: available ones in order; if all are ejected, all of them
    /// (a stream with viewers is better served by a doubtful origin than by none).
    fn candidates(&self, key: &str) -> Vec<Upstream> {
        let order: Vec<Upstream> = self
            .config
            .upstreams
            .order(key)
            .into_iter()
            .cloned()
            .collect();
        let now = Instant::now();
        let mut health = lock(&self.health);
        let available: Vec<Upstream> = order
            .iter()
            .filter(|u| health.is_available(&u.id, now))
            .cloned()
            .collect();
        if available.is_empty() {
            order
        } else {
            available
        }
    }

    fn source_options(&self) -> SourceOptions {
        let t = self.config.timeouts;
        SourceOptions {
            http: HttpFlvOptions {
                connect_timeout: t.connect,
                first_byte_timeout: t.first_byte,
                max_redirects: self.config.max_redirects,
            },
            rtmp: RtmpPlayOptions {
                connect_timeout: t.connect,
                first_byte_timeout: t.first_byte,
            },
        }
    }
}

enum Stop {
    /// No viewers for `linger`.
    Idle,
    /// The connection failed; `started` if it had delivered a keyframe.
    Failed { started: bool, error: PullError },
}

async fn run_pull(inner: Arc<Inner>, state: Arc<PullState>) {
    let sink = inner.target.open(&state.key);
    let (app, stream) = state.key.split_once('/').unwrap_or(("live", &state.key));
    let mut timeline = Timeline::new();
    let mut failed_rounds = 0u32;
    let mut had_video = false;
    'rounds: loop {
        let candidates = inner.candidates(&state.key);
        if candidates.is_empty() {
            tracing::warn!(key = state.key, "no upstream configured");
            break;
        }
        let mut delivered = false;
        for up in candidates {
            if inner.try_retire(&state) {
                break 'rounds;
            }
            let url = up.url_for(app, stream);
            state.connections.fetch_add(1, Ordering::Relaxed);
            inner.connections.fetch_add(1, Ordering::Relaxed);
            let metrics = inner.metrics.get();
            if let Some(m) = metrics {
                m.origin_pull_started();
            }
            let stop = pull_one(
                &inner,
                &state,
                &up,
                &url,
                &*sink,
                &mut timeline,
                &mut had_video,
            )
            .await;
            if let Some(m) = metrics {
                m.origin_pull_finished(outcome(&stop));
            }
            *lock(&state.upstream) = None;
            match stop {
                Stop::Idle => break 'rounds,
                Stop::Failed { started, error } => {
                    lock(&inner.health).record(&up.id, false, Instant::now());
                    tracing::warn!(key = state.key, upstream = up.id, %url, started, %error, "pull failed");
                    delivered |= started;
                }
            }
        }
        if delivered {
            failed_rounds = 0;
            continue;
        }
        failed_rounds += 1;
        if failed_rounds >= inner.config.max_failed_rounds {
            tracing::warn!(key = state.key, rounds = failed_rounds, "giving up pull");
            break;
        }
        tokio::time::sleep(inner.config.retry_delay).await;
    }
    inner.remove(&state);
    sink.on_end();
}

/// How one upstream connection ended, as the `outcome` label.
fn outcome(stop: &Stop) -> PullOutcome {
    match stop {
        Stop::Idle => PullOutcome::Ended,
        Stop::Failed { error, .. } => match error {
            PullError::Ended => PullOutcome::Ended,
            PullError::Io(_) | PullError::ConnectTimeout(_) | PullError::NoUpstream => {
                PullOutcome::ConnectFailed
            }
            PullError::FirstByteTimeout(_) | PullError::FirstKeyframeTimeout(_) => {
                PullOutcome::Timeout
            }
            PullError::Stall(_) => PullOutcome::Stalled,
            PullError::HttpStatus(_) | PullError::TooManyRedirects(_) | PullError::Url(_) => {
                PullOutcome::Rejected
            }
            PullError::Rtmp(_) | PullError::Http(_) | PullError::Flv(_) => {
                PullOutcome::ProtocolError
            }
        },
    }
}

async fn pull_one(
    inner: &Inner,
    state: &Arc<PullState>,
    up: &Upstream,
    url: &str,
    sink: &dyn MediaSink,
    timeline: &mut Timeline,
    had_video: &mut bool,
) -> Stop {
    let t = inner.config.timeouts;
    let t0 = Instant::now();
    let keyframe_deadline = t0 + t.first_keyframe;
    let failed = |started, error| Stop::Failed { started, error };
    let mut source =
        match timeout(t.first_keyframe, Source::open(url, &inner.source_options())).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return failed(false, e),
            Err(_) => return failed(false, PullError::FirstKeyframeTimeout(t.first_keyframe)),
        };
    let metrics = inner.metrics.get();
    if let Some(m) = metrics {
        let (connected, first_byte) = source.opened_at();
        m.observe_stage(
            Stage::OriginConnected,
            connected.saturating_duration_since(t0),
        );
        m.observe_stage(
            Stage::OriginFirstByte,
            first_byte.saturating_duration_since(t0),
        );
    }
    timeline.switch_upstream();
    let mut started = false;
    let mut video_open = false;
    loop {
        if inner.try_retire(state) {
            return Stop::Idle;
        }
        let now = Instant::now();
        let wait = if started {
            t.stall
        } else {
            t.stall
                .min(keyframe_deadline.saturating_duration_since(now))
        };
        let ev = match timeout(wait, source.next_event()).await {
            Ok(Ok(Some(ev))) => ev,
            Ok(Ok(None)) => return failed(started, PullError::Ended),
            Ok(Err(e)) => return failed(started, e),
            Err(_) if !started && Instant::now() >= keyframe_deadline => {
                return failed(false, PullError::FirstKeyframeTimeout(t.first_keyframe));
            }
            Err(_) => return failed(started, PullError::Stall(t.stall)),
        };
        match ev {
            DemuxEvent::Frame(frame) => {
                if let Some(m) = metrics {
                    m.ingress(IngressSource::Origin, 1, frame.data.len() as u64);
                }
                let is_video = frame.codec.track() == TrackKind::Video;
                if is_video && !video_open {
                    if frame.kind != FrameKind::Key {
                        continue;
                    }
                    video_open = true;
                }
                if !started {
                    // Start on a video keyframe; audio-only streams start on audio.
                    if !is_video && *had_video {
                        continue;
                    }
                    started = true;
                    if let Some(m) = metrics {
                        m.observe_stage(Stage::OriginFirstKeyframe, t0.elapsed());
                    }
                    lock(&inner.health).record(&up.id, true, Instant::now());
                    *lock(&state.upstream) = Some(up.id.clone());
                    if timeline.has_delivered() {
                        state.gaps.fetch_add(1, Ordering::Relaxed);
                        sink.on_gap();
                    }
                    tracing::info!(
                        key = state.key,
                        upstream = up.id,
                        after_ms = t0.elapsed().as_millis() as u64,
                        "pull started"
                    );
                }
                state.frames.fetch_add(1, Ordering::Relaxed);
                sink.on_event(DemuxEvent::Frame(timeline.map(frame, Instant::now())));
            }
            DemuxEvent::VideoConfig(c) => {
                *had_video = true;
                sink.on_event(DemuxEvent::VideoConfig(c));
            }
            other => sink.on_event(other),
        }
    }
}

mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
