//! The admin router over an in-test backend: routes, status codes, JSON shapes, bearer token,
//! readiness during drain, and scrape-time per-stream/per-origin metrics.

use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use rtmlive::ops::admin_api::*;
use rtmlive::ops::{Metrics, Protocol, SessionState, Shutdown, StreamSource};
use tower::ServiceExt;

/// A backend holding plain vectors; records the commands it receives.
#[derive(Default)]
struct TestBackend {
    streams: Mutex<Vec<StreamInfo>>,
    sessions: Mutex<Vec<SessionInfo>>,
    origins: Vec<OriginHealth>,
}

impl AdminBackend for TestBackend {
    fn list_streams(&self) -> Vec<StreamInfo> {
        self.streams.lock().unwrap().clone()
    }
    fn close_stream(&self, app: &str, stream: &str) -> bool {
        let mut s = self.streams.lock().unwrap();
        let before = s.len();
        s.retain(|x| !(x.app == app && x.stream == stream));
        s.len() != before
    }
    fn list_sessions(&self) -> Vec<SessionInfo> {
        self.sessions.lock().unwrap().clone()
    }
    fn kick_session(&self, id: &str) -> bool {
        let mut s = self.sessions.lock().unwrap();
        let before = s.len();
        s.retain(|x| x.id != id);
        s.len() != before
    }
    fn origin_health(&self) -> Vec<OriginHealth> {
        self.origins.clone()
    }
}

fn stream(app: &str, name: &str, viewers: u64) -> StreamInfo {
    StreamInfo {
        app: app.into(),
        stream: name.into(),
        source: StreamSource::Origin,
        viewers,
        video_codec: Some("h264".into()),
        audio_codec: Some("aac".into()),
        ingress_bitrate_bps: 2_000_000,
        egress_bitrate_bps: 2_000_000 * viewers,
        uptime_ms: 1234,
        gop_cache_bytes: 500_000,
    }
}

fn session(id: &str, protocol: Protocol, name: &str) -> SessionInfo {
    SessionInfo {
        id: id.into(),
        protocol,
        state: SessionState::Connected,
        app: "live".into(),
        stream: name.into(),
        remote_addr: Some("192.0.2.7:50000".parse().unwrap()),
        age_ms: 5000,
        bytes_sent: 1_000_000,
        packets_sent: 900,
        nacks_received: 3,
        retransmits: 4,
        rtt_ms: Some(21.5),
    }
}

fn setup(token: Option<&str>) -> (axum::Router, Arc<TestBackend>, Shutdown) {
    let backend = Arc::new(TestBackend {
        streams: Mutex::new(vec![stream("live", "a", 2), stream("live", "b\"q", 0)]),
        sessions: Mutex::new(vec![
            session("s1", Protocol::MiniSdp, "a"),
            session("s2", Protocol::Whep, "a"),
            session("s3", Protocol::Whep, "x"),
        ]),
        origins: vec![
            OriginHealth {
                app: "live".into(),
                url: "http://o1/{app}/{stream}.flv".into(),
                state: OriginState::Healthy,
                attempts: 10,
                failures: 0,
                cooldown_remaining_ms: None,
                active_pulls: 1,
            },
            OriginHealth {
                app: "live".into(),
                url: "http://o2/{app}/{stream}.flv".into(),
                state: OriginState::Unhealthy,
                attempts: 4,
                failures: 4,
                cooldown_remaining_ms: Some(9000),
                active_pulls: 0,
            },
        ],
    });
    let shutdown = Shutdown::new();
    let router = router(AdminState {
        backend: backend.clone(),
        metrics: Metrics::new(),
        shutdown: shutdown.clone(),
        token: token.map(Arc::from),
    });
    (router, backend, shutdown)
}

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, String) {
    call_json(router, method, uri, token, None).await
}

async fn call_json(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    json_body: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match json_body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_owned())
        }
        None => Body::empty(),
    };
    let resp = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn streams_list_get_and_close() {
    let (r, backend, _) = setup(None);
    let (st, body) = call(&r, "GET", "/api/v1/streams", None).await;
    assert_eq!(st, StatusCode::OK);
    let v = json(&body);
    assert_eq!(v["streams"].as_array().unwrap().len(), 2);
    assert_eq!(v["streams"][0]["viewers"], 2);
    assert_eq!(v["streams"][0]["source"], "origin");

    let (st, body) = call(&r, "GET", "/api/v1/streams/live/a", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(json(&body)["video_codec"], "h264");
    let (st, body) = call(&r, "GET", "/api/v1/streams/live/nope", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["error"], "stream not found");

    let (st, _) = call(&r, "DELETE", "/api/v1/streams/live/a", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(backend.list_streams().len(), 1);
    let (st, _) = call(&r, "DELETE", "/api/v1/streams/live/a", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sessions_list_filter_and_kick() {
    let (r, backend, _) = setup(None);
    let (st, body) = call(&r, "GET", "/api/v1/sessions", None).await;
    assert_eq!(st, StatusCode::OK);
    let v = json(&body);
    assert_eq!(v["sessions"].as_array().unwrap().len(), 3);
    assert_eq!(v["sessions"][0]["protocol"], "minisdp");
    assert_eq!(v["sessions"][0]["remote_addr"], "192.0.2.7:50000");

    let (_, body) = call(
        &r,
        "GET",
        "/api/v1/sessions?stream=live/a&protocol=whep",
        None,
    )
    .await;
    let ids: Vec<String> = json(&body)["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["s2"]);

    let (st, _) = call(&r, "DELETE", "/api/v1/sessions/s1", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(backend.list_sessions().len(), 2);
    let (st, body) = call(&r, "DELETE", "/api/v1/sessions/s1", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["error"], "session not found");
}

#[tokio::test]
async fn origins_health() {
    let (r, _, _) = setup(None);
    let (st, body) = call(&r, "GET", "/api/v1/origins", None).await;
    assert_eq!(st, StatusCode::OK);
    let v = json(&body);
    assert_eq!(v["origins"][1]["state"], "unhealthy");
    assert_eq!(v["origins"][1]["cooldown_remaining_ms"], 9000);
}

#[tokio::test]
async fn bearer_token_guards_the_api_only() {
    let (r, _, _) = setup(Some("s3cret-token"));
    let (st, _) = call(&r, "GET", "/api/v1/streams", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = call(&r, "GET", "/api/v1/streams", Some("wrong")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = call(&r, "DELETE", "/api/v1/sessions/s1", Some("wrong")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = call(&r, "GET", "/api/v1/streams", Some("s3cret-token")).await;
    assert_eq!(st, StatusCode::OK);
    for open in ["/healthz", "/readyz", "/metrics"] {
        let (st, _) = call(&r, "GET", open, None).await;
        assert_eq!(st, StatusCode::OK, "{open}");
    }
}

#[tokio::test]
async fn readyz_fails_while_draining() {
    let (r, _, shutdown) = setup(None);
    assert_eq!(
        call(&r, "GET", "/readyz", None).await,
        (StatusCode::OK, "ready\n".into())
    );
    shutdown.begin_drain();
    assert_eq!(
        call(&r, "GET", "/readyz", None).await,
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into())
    );
    assert_eq!(
        call(&r, "GET", "/healthz", None).await,
        (StatusCode::OK, "ok\n".into())
    );
}

#[tokio::test]
async fn metrics_include_viewers_and_origin_health() {
    let (r, backend, _) = setup(None);
    let (st, body) = call(&r, "GET", "/metrics", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("rtmlive_stream_viewers{app=\"live\",stream=\"a\"} 2\n"),
        "{body}"
    );
    assert!(body.contains("rtmlive_stream_viewers{app=\"live\",stream=\"b\\\"q\"} 0\n"));
    assert!(
        body.contains(
            "rtmlive_origin_healthy{app=\"live\",url=\"http://o2/{app}/{stream}.flv\"} 0\n"
        )
    );
    assert!(body.contains(
        "rtmlive_origin_active_pulls{app=\"live\",url=\"http://o1/{app}/{stream}.flv\"} 1\n"
    ));
    // Viewers move with the snapshot.
    backend.streams.lock().unwrap()[0].viewers = 7;
    let (_, body) = call(&r, "GET", "/metrics", None).await;
    assert!(body.contains("rtmlive_stream_viewers{app=\"live\",stream=\"a\"} 7\n"));
}

/// Every path and method in docs/admin-api.openapi.yaml is routed (a handler answers, not the
/// router's empty 404/405).
#[tokio::test]
async fn openapi_document_matches_the_router() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/admin-api.openapi.yaml"
    ))
    .unwrap();
    let (r, _, _) = setup(None);
    let mut checked = 0;
    let mut path = None::<String>;
    for line in doc.lines() {
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = Some(format!("/{p}"));
            continue;
        }
        if !line.is_empty() && !line.starts_with(' ') {
            // A top-level key (`components:`) ends the paths section.
            path = None;
            continue;
        }
        let method = match line.trim_end() {
            "    get:" => "GET",
            "    delete:" => "DELETE",
            "    post:" => "POST",
            "    patch:" => "PATCH",
            "    put:" => panic!("unexpected method in {line}"),
            _ => continue,
        };
        let Some(p) = &path else { continue };
        let uri = p
            .replace("{app}", "live")
            .replace("{stream}", "a")
            .replace("{id}", "s3")
            .replace("{room}", "show");
        let body = matches!(method, "POST" | "PATCH").then_some("{}");
        let (status, body) = call_json(&r, method, &uri, None, body).await;
        assert!(
            status.is_success() || !body.is_empty(),
            "{method} {p}: {status} with empty body (not routed)"
        );
        checked += 1;
    }
    assert_eq!(checked, 14, "paths × methods in the document");
}

#[tokio::test]
async fn rooms_need_a_backend_that_has_them() {
    let (r, _, _) = setup(None);
    let (status, body) = call(&r, "GET", "/api/v1/rooms", None).await;
    assert_eq!(
        (status, json(&body)["rooms"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let create = r#"{"room":"show","source":"live/a"}"#;
    let (status, body) = call_json(&r, "POST", "/api/v1/rooms", None, Some(create)).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    let (status, body) = call_json(&r, "POST", "/api/v1/rooms", None, Some("not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json(&body)["error"].as_str().is_some());
    let (status, _) = call(&r, "GET", "/api/v1/rooms/show", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Resolves the open streams of a hub, like an edge without origins; `busy/*` is unavailable
/// (an edge at its stream limit).
struct HubStreams(rtmlive::hub::Hub);

impl rtmlive::signal::StreamResolver for HubStreams {
    fn resolve(
        &self,
        key: &str,
    ) -> Result<rtmlive::signal::Resolved, rtmlive::signal::ResolveError> {
        use rtmlive::signal::{ResolveError, Resolved};
        if key.starts_with("busy/") {
            return Err(ResolveError::Unavailable);
        }
        let stream = self
            .0
            .get(key)
            .filter(|s| !s.is_closed())
            .ok_or(ResolveError::NotFound)?;
        Ok(Resolved {
            stream,
            hold: None,
            room: None,
        })
    }
}

/// The server's room directory behind the router, over a hub holding `live/a` and `live/b`.
struct RoomsBackend {
    rooms: rtmlive::server::rooms::Rooms,
    streams: HubStreams,
}

impl AdminBackend for RoomsBackend {
    fn list_streams(&self) -> Vec<StreamInfo> {
        Vec::new()
    }
    fn close_stream(&self, _: &str, _: &str) -> bool {
        false
    }
    fn list_sessions(&self) -> Vec<SessionInfo> {
        Vec::new()
    }
    fn kick_session(&self, _: &str) -> bool {
        false
    }
    fn origin_health(&self) -> Vec<OriginHealth> {
        Vec::new()
    }
    fn list_rooms(&self) -> Vec<RoomInfo> {
        self.rooms.list()
    }
    fn room(&self, room: &str) -> Option<RoomInfo> {
        self.rooms.info_of(room)
    }
    fn create_room(&self, room: &str, source: &str) -> Result<RoomInfo, RoomError> {
        self.rooms.create(room, source, &self.streams)
    }
    fn switch_room(&self, room: &str, source: &str) -> Result<RoomInfo, RoomError> {
        self.rooms.switch(room, source, &self.streams)
    }
    fn delete_room(&self, room: &str) -> bool {
        self.rooms.delete(room)
    }
}

fn rooms_router(max_rooms: usize) -> axum::Router {
    let hub = rtmlive::hub::Hub::new(rtmlive::hub::HubConfig::default());
    hub.get_or_create("live/a");
    hub.get_or_create("live/b");
    router(AdminState {
        backend: Arc::new(RoomsBackend {
            rooms: rtmlive::server::rooms::Rooms::new(max_rooms),
            streams: HubStreams(hub),
        }),
        metrics: Metrics::new(),
        shutdown: Shutdown::new(),
        token: Some(Arc::from("t")),
    })
}

#[tokio::test]
async fn rooms_create_list_switch_delete() {
    let r = rooms_router(2);
    let t = Some("t");
    let create = r#"{"room":"show","source":"live/a"}"#;
    let (st, _) = call_json(&r, "POST", "/api/v1/rooms", None, Some(create)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "token protected");

    let (st, body) = call_json(&r, "POST", "/api/v1/rooms", t, Some(create)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(
        json(&body),
        serde_json::json!({"room": "show", "source": "live/a", "generation": 0, "viewers": 0})
    );
    let (st, body) = call(&r, "GET", "/api/v1/rooms", t).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(json(&body)["rooms"][0]["room"], "show");

    let switch = r#"{"source":"live/b"}"#;
    let (st, body) = call_json(&r, "PATCH", "/api/v1/rooms/show", t, Some(switch)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        (
            json(&body)["source"].clone(),
            json(&body)["generation"].clone()
        ),
        (serde_json::json!("live/b"), serde_json::json!(1))
    );
    let (st, body) = call(&r, "GET", "/api/v1/rooms/show", t).await;
    assert_eq!(
        (st, json(&body)["source"].clone()),
        (StatusCode::OK, "live/b".into())
    );

    let (st, _) = call(&r, "DELETE", "/api/v1/rooms/show", t).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, body) = call(&r, "DELETE", "/api/v1/rooms/show", t).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["error"], "no such room");
    let (st, _) = call(&r, "GET", "/api/v1/rooms/show", t).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, body) = call(&r, "GET", "/api/v1/rooms", t).await;
    assert_eq!(json(&body)["rooms"], serde_json::json!([]));
}

#[tokio::test]
async fn room_refusals_are_json_errors_with_the_right_status() {
    let r = rooms_router(2);
    let t = Some("t");
    let post = |body: &'static str| call_json(&r, "POST", "/api/v1/rooms", t, Some(body));
    let cases = [
        (
            r#"{"room":"a b","source":"live/a"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"room":"x","source":"room/show"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"room":"x","source":"live"}"#, StatusCode::BAD_REQUEST),
        (r#"{"room":"x"}"#, StatusCode::BAD_REQUEST),
        (r#"not json"#, StatusCode::BAD_REQUEST),
        (
            r#"{"room":"x","source":"live/nope"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"room":"x","source":"busy/a"}"#,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ];
    for (body, status) in cases {
        let (st, resp) = post(body).await;
        assert_eq!(st, status, "{body}: {resp}");
        assert!(json(&resp)["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(
        post(r#"{"room":"one","source":"live/a"}"#).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        post(r#"{"room":"one","source":"live/b"}"#).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post(r#"{"room":"two","source":"live/b"}"#).await.0,
        StatusCode::CREATED
    );
    let (st, body) = post(r#"{"room":"three","source":"live/a"}"#).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "max_rooms = 2");
    assert!(body.contains("max_rooms"), "{body}");

    let patch = |uri: &'static str, body: &'static str| call_json(&r, "PATCH", uri, t, Some(body));
    let cases = [
        (
            "/api/v1/rooms/nope",
            r#"{"source":"live/a"}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/rooms/one",
            r#"{"source":"live/nope"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/rooms/one",
            r#"{"source":"room/two"}"#,
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/rooms/one", r#"{}"#, StatusCode::BAD_REQUEST),
    ];
    for (uri, body, status) in cases {
        let (st, resp) = patch(uri, body).await;
        assert_eq!(st, status, "{uri} {body}: {resp}");
    }
    let (_, body) = call(&r, "GET", "/api/v1/rooms/one", t).await;
    assert_eq!(
        json(&body)["generation"],
        0,
        "refused switches change nothing"
    );

    let off = rooms_router(0);
    let (st, body) = call_json(
        &off,
        "POST",
        "/api/v1/rooms",
        t,
        Some(r#"{"room":"show","source":"live/a"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_IMPLEMENTED);
    assert!(body.contains("max_rooms = 0"), "{body}");
}
