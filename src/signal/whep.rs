//! WHEP (WebRTC-HTTP egress): browsers and standard WebRTC players.
//!
//! `POST /whep/{app}/{stream}` with an SDP offer creates a session and answers `201 Created`
//! with the SDP answer and a `Location` (the session URL, unguessable). The session is parked
//! in the transport's lobby until its first STUN request arrives on the media port, after which
//! it is indistinguishable from a miniSDP session: same negotiation ([`super::negotiate`]),
//! same transport, same media path. Private RTP extensions are sent only when the offer
//! negotiated them.
//!
//! The edge is ICE-lite and lists all its candidates in the answer, so trickle `PATCH`es with
//! candidates are accepted and ignored (204: the edge learns the client's address from STUN);
//! ICE restarts are not supported (422). `DELETE` ends the session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use rtm_sdp::Sdp;

use super::auth::{TokenAuthority, TokenKind};
use super::negotiate::{LocalDescription, negotiate, random_ice_string};
use super::{ResolveError, StreamResolver};
use crate::ops::{Metrics, Protocol, RejectReason, Stage};
use crate::server::media_source::HubSource;
use crate::transport::ViewerSession;
use crate::transport::shard::ShardError;
use crate::transport::shard::{Lobby, ufrag_for_shard};
use crate::transport::socket::KickList;

/// Largest offer accepted (browsers' offers are 3-6 KB).
const MAX_OFFER: usize = 64 * 1024;
/// Shard id embedded in WHEP ufrags: lobby sessions are adopted by whichever shard sees the
/// first STUN packet, so the id only marks the origin of the ufrag.
const WHEP_SHARD: u16 = 0xffff;

/// A WHEP session as the HTTP side knows it.
struct Resource {
    ufrag: String,
    etag: String,
}

/// Shared state of the WHEP routes.
pub struct WhepState {
    pub local: LocalDescription,
    pub resolver: Arc<dyn StreamResolver>,
    pub lobby: Arc<Mutex<Lobby>>,
    /// `None`: open mode.
    pub tokens: Option<TokenAuthority>,
    pub accepting: Arc<AtomicBool>,
    /// Sessions to end: the media side closes sessions whose ufrag is posted here.
    pub kicks: KickList,
    /// Refusals, answer timing, GOP jumps of WHEP viewers (`None`: not recorded).
    pub metrics: Option<Arc<Metrics>>,
    resources: Mutex<HashMap<String, Resource>>,
}

impl WhepState {
    pub fn new(
        local: LocalDescription,
        resolver: Arc<dyn StreamResolver>,
        lobby: Arc<Mutex<Lobby>>,
        tokens: Option<TokenAuthority>,
        accepting: Arc<AtomicBool>,
        kicks: KickList,
    ) -> Self {
        Self {
            local,
            resolver,
            lobby,
            tokens,
            accepting,
            kicks,
            metrics: None,
            resources: Mutex::new(HashMap::new()),
        }
    }

    /// Records refusals, answer timing and viewers' jumps in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn rejected(&self, reason: RejectReason) {
        if let Some(m) = &self.metrics {
            m.session_rejected(Protocol::Whep, reason);
        }
    }
}

/// The WHEP routes.
pub fn router(state: Arc<WhepState>) -> Router {
    Router::new()
        .route("/whep/{app}/{stream}", post(create).options(preflight))
        .route(
            "/whep/{app}/{stream}/{id}",
            patch(update).delete(remove).options(preflight),
        )
        .with_state(state)
}

fn cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link"),
    );
}

fn error(status: StatusCode, msg: &str) -> Response {
    let mut r = (status, msg.to_owned()).into_response();
    cors(r.headers_mut());
    r
}

async fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    cors(h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    r
}

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn create(
    State(state): State<Arc<WhepState>>,
    Path((app, stream)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    if !content_type_is(&headers, "application/sdp") {
        state.rejected(RejectReason::BadRequest);
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "offer must be application/sdp",
        );
    }
    if body.len() > MAX_OFFER {
        state.rejected(RejectReason::BadRequest);
        return error(StatusCode::PAYLOAD_TOO_LARGE, "offer too large");
    }
    let key = match super::negotiate::stream_key(&format!("/{app}/{stream}")) {
        Some(k) => k,
        None => {
            state.rejected(RejectReason::BadRequest);
            return error(StatusCode::NOT_FOUND, "invalid stream name");
        }
    };
    if let Some(tokens) = &state.tokens {
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ok = bearer(&headers).is_some_and(|t| {
            tokens.decode_base64(t).is_ok_and(|claims| {
                claims.kind == TokenKind::Pull
                    && claims.stream == key
                    && claims.expiry >= now_unix
                    && claims.binding.is_empty()
            })
        });
        if !ok {
            state.rejected(RejectReason::Auth);
            let mut r = error(StatusCode::UNAUTHORIZED, "a valid Bearer token is required");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    if !state.accepting.load(Ordering::Relaxed) {
        state.rejected(RejectReason::Draining);
        let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "draining");
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        state.rejected(RejectReason::BadRequest);
        return error(StatusCode::BAD_REQUEST, "offer is not UTF-8");
    };
    let offer = match Sdp::parse(text) {
        Ok(o) => o,
        Err(e) => {
            state.rejected(RejectReason::BadRequest);
            return error(StatusCode::BAD_REQUEST, &format!("malformed SDP: {e}"));
        }
    };
    let kinds = |k: &str| {
        offer
            .media
            .iter()
            .filter(|m| m.kind.as_str() == k && m.port != 0)
            .count()
    };
    if kinds("audio") > 1 || kinds("video") > 1 {
        state.rejected(RejectReason::BadRequest);
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "at most one audio and one video section",
        );
    }
    let resolved = match state.resolver.resolve(&key) {
        Ok(s) => s,
        Err(ResolveError::NotFound) => {
            state.rejected(RejectReason::NotFound);
            return error(StatusCode::NOT_FOUND, "no such stream");
        }
        Err(ResolveError::Unavailable) => {
            state.rejected(RejectReason::Limit);
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "stream unavailable");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            return r;
        }
    };
    let ufrag = ufrag_for_shard(WHEP_SHARD, &random_ice_string(8));
    let neg = match negotiate(&state.local, &offer, &resolved.stream, ufrag.clone()) {
        Ok(n) => n,
        Err(e) => {
            state.rejected(RejectReason::BadRequest);
            return error(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    // Created "at the offer", so the session's stage timings start when the request arrived.
    let session = ViewerSession::new(received, neg.session);
    let mut source = HubSource::new(&resolved.stream).with_hold(resolved.hold);
    if let Some(m) = &state.metrics {
        source = source.with_metrics(m.clone());
    }
    let inserted = state
        .lobby
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(session, Box::new(source));
    match inserted {
        Ok(()) => {}
        Err(ShardError::PendingFull) => {
            state.rejected(RejectReason::Limit);
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "too many pending sessions");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
    let id = random_ice_string(22).replace(['+', '/'], "x");
    let etag = format!("\"{}\"", random_ice_string(12).replace(['+', '/'], "y"));
    let location = format!("/whep/{app}/{stream}/{id}", stream = key_stream(&key));
    state
        .resources
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            id,
            Resource {
                ufrag,
                etag: etag.clone(),
            },
        );
    let mut r = (StatusCode::CREATED, neg.answer.to_sdp_string()).into_response();
    let h = r.headers_mut();
    cors(h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(m) = &state.metrics {
        m.observe_stage(Stage::AnswerSent, received.elapsed());
    }
    r
}

fn key_stream(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, s)| s)
}

async fn update(
    State(state): State<Arc<WhepState>>,
    Path((_app, _stream, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let etag = match state
        .resources
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
    {
        Some(r) => r.etag.clone(),
        None => return error(StatusCode::NOT_FOUND, "no such session"),
    };
    if !content_type_is(&headers, "application/trickle-ice-sdpfrag") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/trickle-ice-sdpfrag",
        );
    }
    let Some(if_match) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return error(StatusCode::PRECONDITION_REQUIRED, "If-Match is required");
    };
    if if_match.trim() != "*" && if_match.trim() != etag {
        return error(StatusCode::PRECONDITION_FAILED, "ETag mismatch");
    }
    let text = String::from_utf8_lossy(&body);
    if text.lines().any(|l| l.starts_with("a=ice-ufrag:")) {
        // An ICE restart: not supported by this edge (trickle is).
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ICE restart is not supported",
        );
    }
    // Candidates are not needed by an ICE-lite server: it learns the client's address from
    // the client's own connectivity checks.
    let mut r = StatusCode::NO_CONTENT.into_response();
    cors(r.headers_mut());
    r
}

async fn remove(
    State(state): State<Arc<WhepState>>,
    Path((_app, _stream, id)): Path<(String, String, String)>,
) -> Response {
    let res = state
        .resources
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
    match res {
        Some(r) => {
            state
                .kicks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((r.ufrag, Instant::now()));
            let mut resp = StatusCode::OK.into_response();
            cors(resp.headers_mut());
            resp
        }
        None => error(StatusCode::NOT_FOUND, "no such session"),
    }
}
