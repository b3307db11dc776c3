//! WHIP (RFC 9725): WebRTC broadcasters publish H.264 + Opus over HTTP-signaled WebRTC.
//!
//! `POST /whip/{app}/{stream}` with an SDP offer (`application/sdp`, sendonly) and
//! `Authorization: Bearer <key>` creates a publisher session: the stream key is checked with
//! the same policy as RTMP publishing (a configured `auth.ingest_keys["app/stream"]`, else a
//! signed publish token, else open mode), the key is claimed (one publisher per stream, RTMP
//! or WHIP: `409 Conflict` otherwise), and the answer (`recvonly`, ICE-lite, all candidates)
//! comes back as `201 Created` with the session URL in `Location` and an `ETag`.
//!
//! The session then takes the same path as a WHEP viewer's: it waits in the transport's lobby
//! until its first STUN request reaches a shard, which adopts it. From there its media goes
//! the other way: the session decrypts, reorders and NACK-repairs the publisher's RTP, and an
//! [`RtpIngest`] turns it into frames for the hub's publisher, so viewers of `app/stream`
//! (miniSDP, WHEP, HTTP-FLV) get it like any pulled stream.
//!
//! `DELETE` on the session URL ends the publish (the hub stream closes); so do RTCP BYE,
//! DTLS close_notify and ICE consent expiry. `PATCH` behaves as for WHEP (trickle 204, ICE
//! restart 422). The edge is the DTLS server: offers with `a=setup:passive` are refused (400;
//! ffmpeg needs `-whip_flags dtls_active`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{patch, post};
use rtm_sdp::Sdp;

use super::rtmp_server::KeyCheck;
use super::rtp_ingest::RtpIngest;
use crate::origin::sink::HubTarget;
use crate::signal::http::{
    MAX_OFFER, Resources, bearer, content_type_is, created, error, preflight, retry_after,
    unauthorized,
};
use crate::signal::negotiate::{LocalDescription, negotiate_publish, random_ice_string};
use crate::signal::whep::{key_stream, lobby_refusal, too_many_tracks};
use crate::transport::ViewerSession;
use crate::transport::shard::{Lobby, ufrag_for_shard};
use crate::transport::socket::KickList;

/// Shard id embedded in WHIP ufrags (lobby sessions are adopted by whichever shard sees the
/// first STUN packet; the id only marks where the ufrag came from).
const WHIP_SHARD: u16 = 0xfffe;

/// Shared state of the WHIP routes.
pub struct WhipState {
    local: LocalDescription,
    lobby: Arc<Mutex<Lobby>>,
    target: Arc<HubTarget>,
    keys: KeyCheck,
    accepting: Arc<AtomicBool>,
    resources: Resources,
}

impl WhipState {
    /// `keys` decides who may publish (the server passes the RTMP ingest policy);
    /// `target` is where published streams go.
    pub fn new(
        local: LocalDescription,
        lobby: Arc<Mutex<Lobby>>,
        target: Arc<HubTarget>,
        keys: KeyCheck,
        accepting: Arc<AtomicBool>,
        kicks: KickList,
    ) -> Self {
        Self {
            local,
            resources: Resources::new(lobby.clone(), kicks),
            lobby,
            target,
            keys,
            accepting,
        }
    }
}

/// The WHIP routes.
pub fn router(state: Arc<WhipState>) -> Router {
    Router::new()
        .route("/whip/{app}/{stream}", post(create).options(preflight))
        .route(
            "/whip/{app}/{stream}/{id}",
            patch(update).delete(remove).options(preflight),
        )
        .with_state(state)
}

async fn create(
    State(state): State<Arc<WhipState>>,
    Path((app, stream)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !content_type_is(&headers, "application/sdp") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "offer must be application/sdp",
        );
    }
    if body.len() > MAX_OFFER {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "offer too large");
    }
    let Some(key) = crate::signal::negotiate::stream_key(&format!("/{app}/{stream}")) else {
        return error(StatusCode::NOT_FOUND, "invalid stream name");
    };
    if !(state.keys)(&app, key_stream(&key), bearer(&headers)) {
        return unauthorized();
    }
    if !state.accepting.load(Ordering::Relaxed) {
        return retry_after(StatusCode::SERVICE_UNAVAILABLE, "draining", "5");
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "offer is not UTF-8");
    };
    let offer = match Sdp::parse(text) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("malformed SDP: {e}")),
    };
    if let Some(r) = too_many_tracks(&offer) {
        return r;
    }
    let ufrag = ufrag_for_shard(WHIP_SHARD, &random_ice_string(8));
    let neg = match negotiate_publish(&state.local, &offer, ufrag.clone()) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let (sink, claim) = match state.target.claim(&key) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::CONFLICT, &e),
    };
    let now = Instant::now();
    tracing::info!(stream = %key, "WHIP publish negotiated");
    let ingest = RtpIngest::new(sink, now, Some(Box::new(claim)));
    let session = ViewerSession::new(now, neg.session);
    let inserted = state
        .lobby
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert_ingest(session, Box::new(ingest));
    if let Some(r) = lobby_refusal(inserted) {
        return r;
    }
    let (id, etag) = state.resources.create(ufrag);
    let location = format!("/whip/{app}/{stream}/{id}", stream = key_stream(&key));
    created(neg.answer.to_sdp_string(), &location, &etag)
}

async fn update(
    State(state): State<Arc<WhipState>>,
    Path((_app, _stream, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.resources.patch(&id, &headers, &body)
}

async fn remove(
    State(state): State<Arc<WhipState>>,
    Path((_app, _stream, id)): Path<(String, String, String)>,
) -> Response {
    state.resources.delete(&id)
}
