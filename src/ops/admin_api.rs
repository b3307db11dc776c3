//! The admin HTTP API (JSON), `/metrics`, `/healthz` and `/readyz`.
//!
//! Data comes from an [`AdminBackend`] that the server implements over the hub, transport and
//! origin components. Its contract keeps admin traffic off the media path: every method answers
//! from snapshots or atomics that media code publishes, and commands (close, kick) are posted
//! with a non-blocking send; no method waits for a media task. The routes are described in
//! `docs/admin-api.openapi.yaml`.
//!
//! `/api/v1/*` requires `Authorization: Bearer <auth.admin_token>` when a token is configured;
//! `/healthz`, `/readyz` and `/metrics` never do (probes and scrapers).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::labels::{Label as _, Protocol, SessionState, StreamSource};
use super::metrics::{Exposition, Metrics};
use super::shutdown::Shutdown;

/// One stream as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub app: String,
    pub stream: String,
    pub source: StreamSource,
    /// Sessions currently subscribed.
    pub viewers: u64,
    /// e.g. `"h264"`, `"h265"`; `None` until the first sequence header.
    pub video_codec: Option<String>,
    /// e.g. `"aac"`, `"opus"`.
    pub audio_codec: Option<String>,
    pub ingress_bitrate_bps: u64,
    pub egress_bitrate_bps: u64,
    /// Milliseconds since the stream started.
    pub uptime_ms: u64,
    /// Bytes currently held in the GOP cache.
    pub gop_cache_bytes: u64,
}

/// One session as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub protocol: Protocol,
    pub state: SessionState,
    pub app: String,
    pub stream: String,
    pub remote_addr: Option<SocketAddr>,
    /// Milliseconds since the session was created.
    pub age_ms: u64,
    pub bytes_sent: u64,
    pub packets_sent: u64,
    pub nacks_received: u64,
    pub retransmits: u64,
    /// Round-trip time from RTCP, when known.
    pub rtt_ms: Option<f64>,
}

/// Health of one configured origin URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginHealth {
    /// The `origins.upstreams[].app` entry it belongs to.
    pub app: String,
    pub url: String,
    pub state: OriginState,
    /// Pull attempts and failures in the current health window.
    pub attempts: u64,
    pub failures: u64,
    /// Time left before an unhealthy origin is tried again.
    pub cooldown_remaining_ms: Option<u64>,
    pub active_pulls: u64,
}

/// Whether an origin is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginState {
    Healthy,
    /// Skipped until its cool-down ends.
    Unhealthy,
}

/// One co-host room (`/api/v1/rooms`): viewers play it as `room/<room>` and follow it when
/// it is pointed at another source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub room: String,
    /// The stream (`app/stream`) its viewers are moved to (at its next keyframe).
    pub source: String,
    /// How many times the room was switched.
    pub generation: u64,
    /// Viewers following the room.
    pub viewers: u64,
}

/// Why a room request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("room names are 1-128 characters of A-Z a-z 0-9 - _ .")]
    InvalidName,
    #[error("a source is a stream name \"app/stream\" (not a room)")]
    InvalidSource,
    #[error("the room exists")]
    Exists,
    #[error("no such room")]
    NotFound,
    #[error("limits.max_rooms reached")]
    Limit,
    #[error("co-host rooms are off on this server (limits.max_rooms = 0)")]
    Disabled,
    #[error("the source stream is not published here and no origin serves its app")]
    SourceNotFound,
    #[error("the source stream cannot be served now (stream limit or draining)")]
    SourceUnavailable,
    #[error("this server has no co-host rooms")]
    Unsupported,
}

impl RoomError {
    fn status(self) -> StatusCode {
        match self {
            RoomError::InvalidName | RoomError::InvalidSource => StatusCode::BAD_REQUEST,
            RoomError::Exists => StatusCode::CONFLICT,
            RoomError::NotFound => StatusCode::NOT_FOUND,
            RoomError::SourceNotFound => StatusCode::UNPROCESSABLE_ENTITY,
            RoomError::Limit | RoomError::SourceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            RoomError::Unsupported | RoomError::Disabled => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

/// What the admin API reads and commands. Implemented by the server over its components.
///
/// Contract: every method returns promptly without waiting on media tasks; reads come from
/// published snapshots/atomics, commands are queued with a non-blocking send.
pub trait AdminBackend: Send + Sync + 'static {
    fn list_streams(&self) -> Vec<StreamInfo>;

    fn stream(&self, app: &str, stream: &str) -> Option<StreamInfo> {
        self.list_streams()
            .into_iter()
            .find(|s| s.app == app && s.stream == stream)
    }

    /// Closes a stream (its viewers get a stop). `false` if there is no such stream.
    fn close_stream(&self, app: &str, stream: &str) -> bool;

    fn list_sessions(&self) -> Vec<SessionInfo>;

    /// Ends a session. `false` if there is no such session.
    fn kick_session(&self, id: &str) -> bool;

    fn origin_health(&self) -> Vec<OriginHealth>;

    /// Whether listeners are bound and the server can take sessions (`/readyz`).
    fn ready(&self) -> bool {
        true
    }

    fn list_rooms(&self) -> Vec<RoomInfo> {
        Vec::new()
    }

    fn room(&self, room: &str) -> Option<RoomInfo> {
        self.list_rooms().into_iter().find(|r| r.room == room)
    }

    /// Creates a room showing `source` (starting its origin pull if needed).
    fn create_room(&self, _room: &str, _source: &str) -> Result<RoomInfo, RoomError> {
        Err(RoomError::Unsupported)
    }

    /// Points a room at `source`: its viewers move at the source's next keyframe.
    fn switch_room(&self, _room: &str, _source: &str) -> Result<RoomInfo, RoomError> {
        Err(RoomError::Unsupported)
    }

    /// Removes a room; its viewers stay on their current stream. `false` if there is none.
    fn delete_room(&self, _room: &str) -> bool {
        false
    }
}

/// Everything the router needs.
#[derive(Clone)]
pub struct AdminState {
    pub backend: Arc<dyn AdminBackend>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    /// `None` or empty: `/api/v1` is open.
    pub token: Option<Arc<str>>,
}

/// The admin routes. Merge into the HTTP router or serve on `listen.admin.bind`.
pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/api/v1/streams", get(list_streams))
        .route(
            "/api/v1/streams/{app}/{stream}",
            get(get_stream).delete(close_stream),
        )
        .route("/api/v1/sessions", get(list_sessions))
        .route("/api/v1/sessions/{id}", axum::routing::delete(kick_session))
        .route("/api/v1/origins", get(origins))
        .route("/api/v1/rooms", get(list_rooms).post(create_room))
        .route(
            "/api/v1/rooms/{room}",
            get(get_room).patch(switch_room).delete(delete_room),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .with_state(state)
}

/// `{"error": "..."}` with a status.
fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Length-independent timing is not needed (the length is not secret); content comparison is
/// constant-time so the token cannot be guessed byte by byte.
fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn require_token(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.token.as_deref().filter(|t| !t.is_empty()) else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if token_matches(t.as_bytes(), expected.as_bytes()) => next.run(req).await,
        _ => {
            let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if !state.shutdown.is_accepting() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if !state.backend.ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let streams = state.backend.list_streams();
    for source in StreamSource::ALL {
        let n = streams.iter().filter(|s| s.source == *source).count();
        state.metrics.set_streams(*source, n as i64);
    }
    let mut e = Exposition::default();
    state.metrics.render_into(&mut e);
    e.header(
        "rtmlive_stream_viewers",
        "Viewers per stream (from the stream snapshot at scrape time).",
        "gauge",
    );
    for s in &streams {
        e.sample(
            "rtmlive_stream_viewers",
            &[("app", &s.app), ("stream", &s.stream)],
            s.viewers,
        );
    }
    let origins = state.backend.origin_health();
    e.header(
        "rtmlive_origin_healthy",
        "1 if the origin is in use, 0 while it cools down after failures.",
        "gauge",
    );
    for o in &origins {
        e.sample(
            "rtmlive_origin_healthy",
            &[("app", &o.app), ("url", &o.url)],
            u8::from(o.state == OriginState::Healthy),
        );
    }
    e.header(
        "rtmlive_origin_active_pulls",
        "Pulls in progress per origin.",
        "gauge",
    );
    for o in &origins {
        e.sample(
            "rtmlive_origin_active_pulls",
            &[("app", &o.app), ("url", &o.url)],
            o.active_pulls,
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        e.finish(),
    )
        .into_response()
}

#[derive(Serialize)]
struct Streams {
    streams: Vec<StreamInfo>,
}

async fn list_streams(State(state): State<AdminState>) -> Json<Streams> {
    Json(Streams {
        streams: state.backend.list_streams(),
    })
}

async fn get_stream(
    State(state): State<AdminState>,
    Path((app, stream)): Path<(String, String)>,
) -> Response {
    match state.backend.stream(&app, &stream) {
        Some(s) => Json(s).into_response(),
        None => error(StatusCode::NOT_FOUND, "stream not found"),
    }
}

async fn close_stream(
    State(state): State<AdminState>,
    Path((app, stream)): Path<(String, String)>,
) -> Response {
    if state.backend.close_stream(&app, &stream) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "stream not found")
    }
}

#[derive(Serialize)]
struct Sessions {
    sessions: Vec<SessionInfo>,
}

/// `?stream=app/stream` and `?protocol=whep` filter the list.
#[derive(Deserialize)]
struct SessionFilter {
    stream: Option<String>,
    protocol: Option<Protocol>,
}

async fn list_sessions(
    State(state): State<AdminState>,
    Query(filter): Query<SessionFilter>,
) -> Json<Sessions> {
    let sessions = state
        .backend
        .list_sessions()
        .into_iter()
        .filter(|s| {
            filter
                .stream
                .as_deref()
                .is_none_or(|k| k.split_once('/') == Some((s.app.as_str(), s.stream.as_str())))
        })
        .filter(|s| filter.protocol.is_none_or(|p| p == s.protocol))
        .collect();
    Json(Sessions { sessions })
}

async fn kick_session(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    if state.backend.kick_session(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "session not found")
    }
}

#[derive(Serialize)]
struct Origins {
    origins: Vec<OriginHealth>,
}

async fn origins(State(state): State<AdminState>) -> Json<Origins> {
    Json(Origins {
        origins: state.backend.origin_health(),
    })
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn token_comparison() {
        assert!(token_matches(b"abc", b"abc"));
        assert!(!token_matches(b"abd", b"abc"));
        assert!(!token_matches(b"ab", b"abc"));
        assert!(!token_matches(b"", b"abc"));
    }
}

#[derive(Serialize)]
struct Rooms {
    rooms: Vec<RoomInfo>,
}

async fn list_rooms(State(state): State<AdminState>) -> Json<Rooms> {
    Json(Rooms {
        rooms: state.backend.list_rooms(),
    })
}

async fn get_room(State(state): State<AdminState>, Path(room): Path<String>) -> Response {
    match state.backend.room(&room) {
        Some(r) => Json(r).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such room"),
    }
}

/// `POST /api/v1/rooms` body.
#[derive(Deserialize)]
struct CreateRoom {
    room: String,
    source: String,
}

/// `PATCH /api/v1/rooms/{room}` body.
#[derive(Deserialize)]
struct SwitchRoom {
    source: String,
}

fn room_result(r: Result<RoomInfo, RoomError>, ok: StatusCode) -> Response {
    match r {
        Ok(info) => (ok, Json(info)).into_response(),
        Err(e) => error(e.status(), &e.to_string()),
    }
}

async fn create_room(
    State(state): State<AdminState>,
    body: Result<Json<CreateRoom>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(req)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "body must be JSON {\"room\": \"...\", \"source\": \"app/stream\"}",
        );
    };
    room_result(
        state.backend.create_room(&req.room, &req.source),
        StatusCode::CREATED,
    )
}

async fn switch_room(
    State(state): State<AdminState>,
    Path(room): Path<String>,
    body: Result<Json<SwitchRoom>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(req)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "body must be JSON {\"source\": \"app/stream\"}",
        );
    };
    room_result(
        state.backend.switch_room(&room, &req.source),
        StatusCode::OK,
    )
}

async fn delete_room(State(state): State<AdminState>, Path(room): Path<String>) -> Response {
    if state.backend.delete_room(&room) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such room")
    }
}
