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
use crate::ops::{Metrics, Protocol, RejectReason};
use crate::origin::sink::{ClaimError, HubTarget};
use crate::signal::http::{
    Resources, bearer, created, error, preflight, refuse_offer, retry_after, unauthorized,
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
    /// Refusals (`rtmlive_sessions_rejected_total{protocol="whip"}`); the sessions themselves
    /// are counted by the lobby and the shard.
    metrics: Option<Arc<Metrics>>,
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
            metrics: None,
        }
    }

    /// Records refused publishes in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn rejected(&self, reason: RejectReason) {
        if let Some(m) = &self.metrics {
            m.session_rejected(Protocol::Whip, reason);
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
    let refuse = |reason: RejectReason, response: Response| {
        state.rejected(reason);
        response
    };
    if let Some(refused) = refuse_offer(&headers, &body) {
        return refuse(RejectReason::BadRequest, refused);
    }
    let Some(key) = crate::signal::negotiate::stream_key(&format!("/{app}/{stream}")) else {
        return refuse(
            RejectReason::BadRequest,
            error(StatusCode::NOT_FOUND, "invalid stream name"),
        );
    };
    if !(state.keys)(&app, key_stream(&key), bearer(&headers)) {
        return refuse(RejectReason::Auth, unauthorized());
    }
    if !state.accepting.load(Ordering::Relaxed) {
        return refuse(
            RejectReason::Draining,
            retry_after(StatusCode::SERVICE_UNAVAILABLE, "draining", "5"),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(
            RejectReason::BadRequest,
            error(StatusCode::BAD_REQUEST, "offer is not UTF-8"),
        );
    };
    let offer = match Sdp::parse(text) {
        Ok(o) => o,
        Err(e) => {
            return refuse(
                RejectReason::BadRequest,
                error(StatusCode::BAD_REQUEST, &format!("malformed SDP: {e}")),
            );
        }
    };
    if let Some(r) = too_many_tracks(&offer) {
        return refuse(RejectReason::BadRequest, r);
    }
    let ufrag = ufrag_for_shard(WHIP_SHARD, &random_ice_string(8));
    let neg = match negotiate_publish(&state.local, &offer, ufrag.clone()) {
        Ok(n) => n,
        Err(e) => {
            return refuse(
                RejectReason::BadRequest,
                error(StatusCode::BAD_REQUEST, &e.to_string()),
            );
        }
    };
    // One publisher per stream: the stream's only publishing slot is taken.
    let (sink, claim) = match state.target.claim(&key, crate::ops::StreamSource::Whip) {
        Ok(c) => c,
        Err(e @ ClaimError::Reserved(_)) => {
            return refuse(
                RejectReason::BadRequest,
                error(StatusCode::FORBIDDEN, &e.to_string()),
            );
        }
        Err(e @ ClaimError::Busy(_)) => {
            return refuse(
                RejectReason::Limit,
                error(StatusCode::CONFLICT, &e.to_string()),
            );
        }
    };
    let now = Instant::now();
    tracing::info!(stream = %key, "WHIP publish negotiated");
    let (id, etag, token) = state.resources.create(ufrag);
    let ingest = RtpIngest::new(sink, now, Some(Box::new((claim, token))));
    let session = ViewerSession::new(now, neg.session);
    let inserted = state
        .lobby
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert_ingest(session, Box::new(ingest));
    if let Some(r) = lobby_refusal(inserted) {
        return refuse(RejectReason::Limit, r);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Hub, HubConfig, PublisherConfig};
    use crate::transport::dtls::DtlsIdentity;
    use crate::transport::rtcp::NtpClock;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, header};
    use std::time::Duration;
    use tower::ServiceExt as _;

    /// The offer ffmpeg 9's `whip` muxer sends (default flags: `a=setup:passive`).
    const FFMPEG_OFFER: &str = "v=0\r\no=FFmpeg 4489045141692799359 2 IN IP4 127.0.0.1\r\n\
s=FFmpegPublishSession\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\n\
a=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:56c5450b\r\na=ice-pwd:f532c5489a2a27b9837908619f8e68e5\r\n\
a=fingerprint:sha-256 33:CC:D5:93:F4:A9:C3:DB:07:37:C3:E1:E6:7A:4F:EC:EB:78:0D:67:BB:B7:51:56:98:1B:52:33:3B:99:A7:4D\r\n\
a=setup:passive\r\na=mid:0\r\na=sendonly\r\na=msid:FFmpeg audio\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=ssrc:3747628942 cname:FFmpeg\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 106 105\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:56c5450b\r\n\
a=ice-pwd:f532c5489a2a27b9837908619f8e68e5\r\n\
a=fingerprint:sha-256 33:CC:D5:93:F4:A9:C3:DB:07:37:C3:E1:E6:7A:4F:EC:EB:78:0D:67:BB:B7:51:56:98:1B:52:33:3B:99:A7:4D\r\n\
a=setup:passive\r\na=mid:1\r\na=sendonly\r\na=msid:FFmpeg video\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
a=rtpmap:106 H264/90000\r\n\
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42000d\r\n\
a=rtcp-fb:106 nack\r\na=rtpmap:105 rtx/90000\r\na=fmtp:105 apt=106\r\n\
a=ssrc-group:FID 3747628943 3747628944\r\na=ssrc:3747628943 cname:FFmpeg\r\n";

    fn state() -> (Arc<WhipState>, Arc<Mutex<Lobby>>, Arc<Hub>) {
        state_with(Arc::new(|app: &str, stream: &str, key: Option<&str>| {
            app == "live" && stream == "w" && key == Some("secret")
        }))
    }

    fn state_with(keys: KeyCheck) -> (Arc<WhipState>, Arc<Mutex<Lobby>>, Arc<Hub>) {
        let hub = Arc::new(Hub::new(HubConfig::default()));
        let lobby = Lobby::new(8);
        let local = LocalDescription {
            identity: Arc::new(DtlsIdentity::generate().unwrap()),
            candidates: vec!["127.0.0.1:4000".parse().unwrap()],
            ntp: NtpClock::from_system(),
            ice_connect_timeout: Duration::from_secs(10),
            ice_consent_timeout: Duration::from_secs(30),
            dtls_timeout: Duration::from_secs(10),
        };
        let state = Arc::new(WhipState::new(
            local,
            lobby.clone(),
            Arc::new(HubTarget::new(hub.clone(), PublisherConfig::default())),
            keys,
            Arc::new(AtomicBool::new(true)),
            KickList::default(),
        ));
        (state, lobby, hub)
    }

    async fn call(
        router: &Router,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = router
            .clone()
            .oneshot(req.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    const SDP: (&str, &str) = ("content-type", "application/sdp");
    const AUTH: (&str, &str) = ("authorization", "Bearer secret");

    #[tokio::test]
    async fn the_room_namespace_cannot_be_published_to() {
        let (state, lobby, hub) = state_with(Arc::new(|_: &str, _: &str, _: Option<&str>| true));
        let app = router(state);
        let (st, _, body) = call(&app, "POST", "/whip/room/show", &[SDP], FFMPEG_OFFER).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("room/show is reserved"), "{body}");
        assert_eq!(lobby.lock().unwrap().len(), 0);
        assert!(hub.get("room/show").is_none(), "no stream was created");
    }

    #[tokio::test]
    async fn publish_lifecycle_over_http() {
        let (state, lobby, hub) = state();
        let app = router(state.clone());
        let (st, ..) = call(&app, "POST", "/whip/live/w", &[AUTH], FFMPEG_OFFER).await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (st, h, _) = call(&app, "POST", "/whip/live/w", &[SDP], FFMPEG_OFFER).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert_eq!(h.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
        let (st, ..) = call(&app, "POST", "/whip/live/w", &[SDP, AUTH], "v=0\r\nbad").await;
        assert_eq!(st, StatusCode::BAD_REQUEST);

        let (st, h, answer) = call(&app, "POST", "/whip/live/w", &[SDP, AUTH], FFMPEG_OFFER).await;
        assert_eq!(st, StatusCode::CREATED, "{answer}");
        assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), "application/sdp");
        let location = h
            .get(header::LOCATION)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(location.starts_with("/whip/live/w/"));
        let etag = h.get(header::ETAG).unwrap().to_str().unwrap().to_owned();
        // ffmpeg insisted on being the DTLS server: the edge is active; it only receives.
        assert!(answer.contains("a=setup:active"), "{answer}");
        assert!(answer.contains("a=recvonly"));
        assert!(answer.contains("a=rtpmap:106 H264/90000"));
        assert!(answer.contains("a=rtpmap:105 rtx/90000"));
        assert!(answer.contains("a=rtpmap:111 opus/48000/2"));
        assert!(answer.contains("a=ice-lite"));
        assert_eq!(lobby.lock().unwrap().len(), 1);

        // One publisher per key.
        let (st, ..) = call(&app, "POST", "/whip/live/w", &[SDP, AUTH], FFMPEG_OFFER).await;
        assert_eq!(st, StatusCode::CONFLICT);

        let frag = ("content-type", "application/trickle-ice-sdpfrag");
        let (st, ..) = call(&app, "PATCH", &location, &[frag], "a=candidate:1\r\n").await;
        assert_eq!(st, StatusCode::PRECONDITION_REQUIRED);
        let if_match = ("if-match", etag.as_str());
        let (st, ..) = call(
            &app,
            "PATCH",
            &location,
            &[frag, if_match],
            "a=candidate:1\r\n",
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let restart = "a=ice-ufrag:x\r\na=ice-pwd:y\r\n";
        let (st, ..) = call(&app, "PATCH", &location, &[frag, if_match], restart).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

        // DELETE ends the parked session, frees the key and ends the stream.
        let (st, ..) = call(&app, "DELETE", &location, &[], "").await;
        assert_eq!(st, StatusCode::OK);
        assert!(lobby.lock().unwrap().is_empty());
        assert!(hub.get("live/w").is_some_and(|s| s.is_closed()));
        let (st, ..) = call(&app, "DELETE", &location, &[], "").await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, ..) = call(&app, "POST", "/whip/live/w", &[SDP, AUTH], FFMPEG_OFFER).await;
        assert_eq!(st, StatusCode::CREATED);
        // A session that ends without DELETE is forgotten by the HTTP side.
        lobby
            .lock()
            .unwrap()
            .expire(Instant::now() + Duration::from_secs(60));
        assert!(lobby.lock().unwrap().is_empty());
        let (st, ..) = call(&app, "POST", "/whip/live/w", &[SDP, AUTH], FFMPEG_OFFER).await;
        assert_eq!(st, StatusCode::CREATED);
        assert_eq!(state.resources.len(), 1);

        let (st, h, _) = call(&app, "OPTIONS", "/whip/live/w", &[], "").await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert!(h.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS));
    }

    #[tokio::test]
    async fn a_receive_only_offer_is_refused() {
        let (state, ..) = state();
        let app = router(state);
        let offer = FFMPEG_OFFER.replace("a=sendonly", "a=recvonly");
        let (st, _, body) = call(&app, "POST", "/whip/live/w", &[SDP, AUTH], &offer).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(body.contains("does not send"), "{body}");
    }
}
