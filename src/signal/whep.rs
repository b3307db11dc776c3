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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{patch, post};
use rtm_sdp::Sdp;

use super::auth::{TokenAuthority, TokenKind};
use super::http::{
    Resources, bearer, created, error, preflight, refuse_offer, retry_after, unauthorized,
};
use super::negotiate::{LocalDescription, negotiate, random_ice_string};
use super::{ResolveError, StreamResolver};
use crate::ops::{Metrics, Protocol, RejectReason, Stage};
use crate::server::media_source::HubSource;
use crate::transport::ViewerSession;
use crate::transport::shard::ShardError;
use crate::transport::shard::{Lobby, ufrag_for_shard};
use crate::transport::socket::KickList;

/// Shard id embedded in WHEP ufrags: lobby sessions are adopted by whichever shard sees the
/// first STUN packet, so the id only marks the origin of the ufrag.
const WHEP_SHARD: u16 = 0xffff;

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
    resources: Resources,
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
            resources: Resources::new(lobby.clone(), kicks.clone()),
            lobby,
            tokens,
            accepting,
            kicks,
            metrics: None,
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

async fn create(
    State(state): State<Arc<WhepState>>,
    Path((app, stream)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    if let Some(refused) = refuse_offer(&headers, &body) {
        state.rejected(RejectReason::BadRequest);
        return refused;
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
            return unauthorized();
        }
    }
    if !state.accepting.load(Ordering::Relaxed) {
        state.rejected(RejectReason::Draining);
        return retry_after(StatusCode::SERVICE_UNAVAILABLE, "draining", "5");
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
    if let Some(r) = too_many_tracks(&offer) {
        state.rejected(RejectReason::BadRequest);
        return r;
    }
    let resolved = match state.resolver.resolve(&key) {
        Ok(s) => s,
        Err(ResolveError::NotFound) => {
            state.rejected(RejectReason::NotFound);
            return error(StatusCode::NOT_FOUND, "no such stream");
        }
        Err(ResolveError::Unavailable) => {
            state.rejected(RejectReason::Limit);
            return retry_after(StatusCode::SERVICE_UNAVAILABLE, "stream unavailable", "2");
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
    let (id, etag, token) = state.resources.create(ufrag);
    let hold: Box<dyn Send> = Box::new((resolved.hold, token));
    let mut source =
        HubSource::for_resolved(&resolved.stream, resolved.room.as_ref()).with_hold(Some(hold));
    if let Some(m) = &state.metrics {
        source = source.with_metrics(m.clone());
    }
    let inserted = state
        .lobby
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(session, Box::new(source));
    if let Some(r) = lobby_refusal(inserted) {
        state.rejected(RejectReason::Limit);
        return r;
    }
    let location = format!("/whep/{app}/{stream}/{id}", stream = key_stream(&key));
    if let Some(m) = &state.metrics {
        m.observe_stage(Stage::AnswerSent, received.elapsed());
    }
    created(neg.answer.to_sdp_string(), &location, &etag)
}

/// 406 for an offer with more than one audio or video section (no partial answers).
pub(crate) fn too_many_tracks(offer: &Sdp) -> Option<Response> {
    let kinds = |k: &str| {
        offer
            .media
            .iter()
            .filter(|m| m.kind.as_str() == k && m.port != 0)
            .count()
    };
    (kinds("audio") > 1 || kinds("video") > 1).then(|| {
        error(
            StatusCode::NOT_ACCEPTABLE,
            "at most one audio and one video section",
        )
    })
}

/// The HTTP answer to a lobby that refused a session (`None`: it did not).
pub(crate) fn lobby_refusal(inserted: Result<(), ShardError>) -> Option<Response> {
    match inserted {
        Ok(()) => None,
        Err(ShardError::PendingFull) => Some(retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many pending sessions",
            "1",
        )),
        Err(e) => Some(error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
    }
}

pub(crate) fn key_stream(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, s)| s)
}

async fn update(
    State(state): State<Arc<WhepState>>,
    Path((_app, _stream, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.resources.patch(&id, &headers, &body)
}

async fn remove(
    State(state): State<Arc<WhepState>>,
    Path((_app, _stream, id)): Path<(String, String, String)>,
) -> Response {
    state.resources.delete(&id)
}
