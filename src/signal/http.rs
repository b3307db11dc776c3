//! HTTP pieces WHEP and WHIP share: CORS, errors, content types, Bearer tokens, and the session
//! resources behind `PATCH`/`DELETE` on a session URL.
//!
//! Both protocols create a session with `POST` (offer in, `201 Created` + answer + `Location` +
//! `ETag` out), accept trickle `PATCH`es (ignored: the edge is ICE-lite and learns the peer's
//! address from its own connectivity checks) and refuse ICE restarts (422), and end a session
//! with `DELETE`. Only what the session carries (media out or in) differs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::negotiate::random_ice_string;
use crate::transport::shard::Lobby;
use crate::transport::socket::KickList;

/// Largest offer accepted (browsers' offers are 3-6 KB).
pub const MAX_OFFER: usize = 64 * 1024;

/// Adds the CORS headers every response carries.
pub fn cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link"),
    );
}

/// A plain-text error with CORS headers.
pub fn error(status: StatusCode, msg: &str) -> Response {
    let mut r = (status, msg.to_owned()).into_response();
    cors(r.headers_mut());
    r
}

/// An error with `Retry-After: secs`.
pub fn retry_after(status: StatusCode, msg: &str, secs: &'static str) -> Response {
    let mut r = error(status, msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
    r
}

/// 401 with `WWW-Authenticate: Bearer`.
pub fn unauthorized() -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "a valid Bearer token is required");
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// The CORS pre-flight answer (`OPTIONS` on the endpoint and on session URLs).
pub async fn preflight() -> Response {
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

/// Whether the request's media type (parameters ignored) is `want`.
/// The first checks of every WHIP/WHEP offer: an `application/sdp` body of at most
/// [`MAX_OFFER`] bytes. Returns the refusal to send (415 or 413), if any.
pub fn refuse_offer(headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    if !content_type_is(headers, "application/sdp") {
        return Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "offer must be application/sdp",
        ));
    }
    (body.len() > MAX_OFFER).then(|| error(StatusCode::PAYLOAD_TOO_LARGE, "offer too large"))
}

pub fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The `201 Created` answer: SDP body, `Location`, `ETag`.
pub fn created(answer_sdp: String, location: &str, etag: &str) -> Response {
    let mut r = (StatusCode::CREATED, answer_sdp).into_response();
    let h = r.headers_mut();
    cors(h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    r
}

/// A session as the HTTP side knows it.
struct Resource {
    ufrag: String,
    etag: String,
    /// Dead once the session is gone (the session holds the [`SessionToken`]).
    alive: Weak<()>,
}

/// Held by a session's media side for as long as the session lives: lets [`Resources`] forget
/// sessions that ended without a `DELETE` (BYE, consent expiry, never connected).
pub type SessionToken = Arc<()>;

/// The sessions created over HTTP, by their unguessable id (the last segment of the session
/// URL), with what `PATCH` and `DELETE` need.
pub struct Resources {
    map: Mutex<HashMap<String, Resource>>,
    lobby: Arc<Mutex<Lobby>>,
    kicks: KickList,
}

impl Resources {
    pub fn new(lobby: Arc<Mutex<Lobby>>, kicks: KickList) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            lobby,
            kicks,
        }
    }

    /// Records a new session (local ICE ufrag `ufrag`) and forgets those that ended; returns
    /// the new session's id and ETag, and the token its media side must hold.
    pub fn create(&self, ufrag: String) -> (String, String, SessionToken) {
        let id = random_ice_string(22);
        let etag = format!("\"{}\"", random_ice_string(12));
        let token = SessionToken::default();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, r| r.alive.strong_count() > 0);
        map.insert(
            id.clone(),
            Resource {
                ufrag,
                etag: etag.clone(),
                alive: Arc::downgrade(&token),
            },
        );
        (id, etag, token)
    }

    /// Sessions known (ended ones are forgotten on the next [`Self::create`]).
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `PATCH` on a session URL: trickle candidates are accepted (204) and ignored; an ICE
    /// restart is refused (422). `If-Match` is required (428) and must match (412).
    pub fn patch(&self, id: &str, headers: &HeaderMap, body: &Bytes) -> Response {
        let etag = match self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            Some(r) => r.etag.clone(),
            None => return error(StatusCode::NOT_FOUND, "no such session"),
        };
        if !content_type_is(headers, "application/trickle-ice-sdpfrag") {
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
        let text = String::from_utf8_lossy(body);
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

    /// `DELETE` on a session URL: ends the session, wherever it is (still parked in the lobby,
    /// or on a shard, which closes it when it reads the kick).
    pub fn delete(&self, id: &str) -> Response {
        let res = self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        let Some(r) = res else {
            return error(StatusCode::NOT_FOUND, "no such session");
        };
        let parked = self
            .lobby
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(r.ufrag.as_bytes());
        if !parked {
            self.kicks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((r.ufrag, Instant::now()));
        }
        let mut resp = StatusCode::OK.into_response();
        cors(resp.headers_mut());
        resp
    }
}
