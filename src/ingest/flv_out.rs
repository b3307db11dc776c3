//! HTTP-FLV out: `GET /{app}/{stream}.flv` for every stream in the hub, so this edge is an
//! origin for other edges (cascading) and a fallback for players.
//!
//! Each response is fed from a frame subscription of the hub (starting at the cached keyframe)
//! through the FLV muxer. Sequence headers are written before the first frame and again whenever
//! the stream's configuration changes. A slow client is never waited for by the producer: the
//! hub moves a lagging subscription to the newest keyframe.
//!
//! With a [`PullManager`] attached, a request for a stream this edge does not have starts a pull
//! (the request holds a viewer lease), which is what makes edge → edge → origin cascades work.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

use super::hub_tags::HubTagReader;
use crate::hub::{Hub, Stream};
use crate::media::flv_mux::{FlvMuxer, HevcMode};
use crate::ops::{EgressKind, Metrics, Protocol, SessionState};
use crate::origin::{PullLease, PullManager};

/// Settings of the HTTP-FLV output.
#[derive(Debug, Clone, Copy)]
pub struct FlvOutConfig {
    /// How H.265 is written (Enhanced FLV by default).
    pub hevc: HevcMode,
    /// How long a request for a stream being pulled waits for it to appear in the hub.
    pub wait_stream: Duration,
    /// Frames read from the hub per batch (one body chunk).
    pub batch: usize,
}

impl Default for FlvOutConfig {
    fn default() -> Self {
        FlvOutConfig {
            hevc: HevcMode::Enhanced,
            wait_stream: Duration::from_secs(5),
            batch: 64,
        }
    }
}

/// One HTTP-FLV response in progress, as the admin API lists it.
#[derive(Debug)]
pub struct FlvSession {
    /// `flv-<n>`: what a kick names.
    pub id: String,
    pub stream_key: String,
    pub started: Instant,
    /// Body bytes and FLV tags handed to the connection.
    pub bytes: AtomicU64,
    pub tags: AtomicU64,
    kick: Notify,
}

/// The HTTP-FLV responses in progress (admin API: list, kick). Touched once per response
/// start and end, and by admin requests; the muxing task only adds to its own atomics.
#[derive(Clone, Default)]
pub struct FlvSessions {
    live: Arc<Mutex<HashMap<String, Arc<FlvSession>>>>,
    next: Arc<AtomicU64>,
}

impl FlvSessions {
    fn open(&self, stream_key: &str) -> Arc<FlvSession> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let s = Arc::new(FlvSession {
            id: format!("flv-{n}"),
            stream_key: stream_key.to_owned(),
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            tags: AtomicU64::new(0),
            kick: Notify::new(),
        });
        self.lock().insert(s.id.clone(), s.clone());
        s
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<FlvSession>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The responses in progress.
    pub fn list(&self) -> Vec<Arc<FlvSession>> {
        self.lock().values().cloned().collect()
    }

    /// Ends the response `id`. `false` if there is none.
    pub fn kick(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(s) => {
                // Stored as a permit if the task is not waiting right now.
                s.kick.notify_one();
                true
            }
            None => false,
        }
    }
}

/// State of the HTTP-FLV routes.
#[derive(Clone)]
pub struct FlvOut {
    hub: Arc<Hub>,
    pulls: Option<PullManager>,
    config: FlvOutConfig,
    metrics: Option<Arc<Metrics>>,
    sessions: FlvSessions,
}

impl FlvOut {
    pub fn new(hub: Arc<Hub>, config: FlvOutConfig) -> FlvOut {
        FlvOut {
            hub,
            pulls: None,
            config,
            metrics: None,
            sessions: FlvSessions::default(),
        }
    }

    /// The responses in progress (for the admin API).
    pub fn sessions(&self) -> FlvSessions {
        self.sessions.clone()
    }

    /// Counts responses as `http_flv` sessions and their body bytes as `flv` egress.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> FlvOut {
        self.metrics = Some(metrics);
        self
    }

    /// Pull streams the hub does not have (cascading edges).
    pub fn with_pulls(mut self, pulls: PullManager) -> FlvOut {
        self.pulls = Some(pulls);
        self
    }

    /// `GET /{app}/{stream}.flv`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/{app}/{file}", get(serve_flv))
            .with_state(self)
    }
}

async fn serve_flv(
    State(out): State<FlvOut>,
    Path((app, file)): Path<(String, String)>,
) -> Response {
    let Some(stream) = file.strip_suffix(".flv") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if app == crate::hub::room::ROOM_APP {
        // Rooms are WebRTC-only: their switches rely on the viewer's RTP continuity, which an
        // FLV byte stream does not have (a new source would restart its timestamps and
        // decoder configuration mid-file).
        return (
            StatusCode::NOT_FOUND,
            "co-host rooms play over WebRTC (miniSDP or WHEP), not HTTP-FLV",
        )
            .into_response();
    }
    let key = format!("{app}/{stream}");
    let (stream, lease) = match out.hub.get(&key) {
        Some(s) => (s, None),
        None => {
            let Some(pulls) = &out.pulls else {
                return (StatusCode::NOT_FOUND, "no such stream").into_response();
            };
            let lease = pulls.acquire(&key);
            let deadline = tokio::time::Instant::now() + out.config.wait_stream;
            loop {
                if let Some(s) = out.hub.get(&key) {
                    break (s, Some(lease));
                }
                if tokio::time::Instant::now() >= deadline || !pulls.is_pulling(&key) {
                    return (StatusCode::NOT_FOUND, "stream not available").into_response();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let (tx, rx) = mpsc::channel(8);
    let counted = out.metrics.map(Counted::new);
    let session = Listed {
        session: out.sessions.open(&key),
        all: out.sessions.clone(),
    };
    tokio::spawn(feed(stream, tx, out.config, lease, counted, session));
    Response::builder()
        .header(header::CONTENT_TYPE, "video/x-flv")
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(Body::new(ChannelBody(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// One HTTP-FLV response as a connected `http_flv` session, for as long as it lives.
struct Counted(Arc<Metrics>);

impl Counted {
    fn new(m: Arc<Metrics>) -> Counted {
        m.session_opened(Protocol::HttpFlv, SessionState::Connected);
        Counted(m)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0
            .session_closed(Protocol::HttpFlv, SessionState::Connected);
    }
}

/// A response's entry in [`FlvSessions`], removed when the response ends.
struct Listed {
    session: Arc<FlvSession>,
    all: FlvSessions,
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.all.lock().remove(&self.session.id);
    }
}

/// Muxes the hub stream into FLV bytes until the client goes away, the stream ends or the
/// session is kicked.
async fn feed(
    stream: Arc<Stream>,
    tx: mpsc::Sender<Bytes>,
    config: FlvOutConfig,
    _lease: Option<PullLease>,
    counted: Option<Counted>,
    listed: Listed,
) {
    let me = listed.session.clone();
    let mut reader = HubTagReader::new(stream, config.hevc, config.batch);
    let mut mux: Option<FlvMuxer> = None;
    loop {
        let tags = tokio::select! {
            t = reader.next() => t,
            _ = tx.closed() => return,
            _ = me.kick.notified() => return,
        };
        let Some(tags) = tags else { return };
        let m = mux.get_or_insert_with(|| {
            let s = reader.stream();
            FlvMuxer::new(s.audio_config().is_some(), s.video_config().is_some())
                .with_hevc_mode(config.hevc)
        });
        for t in &tags {
            m.write_tag(t);
        }
        let body = m.take();
        me.tags.fetch_add(tags.len() as u64, Ordering::Relaxed);
        me.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        if let Some(c) = &counted {
            c.0.egress(EgressKind::Flv, tags.len() as u64, body.len() as u64);
        }
        if tx.send(body).await.is_err() {
            return;
        }
    }
}

/// A response body fed by the muxing task.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(http_body::Frame::data(b))))
    }
}
