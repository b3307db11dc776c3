//! Co-host rooms on the real server (in-process, loopback), with player-test as the viewer:
//! a room is created through the admin API, a player plays `room/<name>` over miniSDP, and the
//! operator switches the room between two live sources while it plays. The player must see
//! one continuous RTP stream (no gap to NACK, no frame lost, no stall), the session must move
//! to the new source, and `rtmlive_switch_events_total` must count each viewer's switch.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use player_test::PlayOptions;
use rtmlive::hub::PublisherConfig;
use rtmlive::ingest::demo_source::{self, DemoLoop};
use rtmlive::origin::HubTarget;
use rtmlive::server::start;
use support::*;

const SWITCHES: &str = "rtmlive_switch_events_total";
const MINISDP_CONNECTED: &str = r#"rtmlive_sessions{protocol="minisdp",state="connected"}"#;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// The stream the admin API lists the one miniSDP session on.
async fn session_stream(http_addr: std::net::SocketAddr) -> Option<String> {
    let (_, body) = http(http_addr, "GET", "/api/v1/sessions?protocol=minisdp").await;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let s = v["sessions"].as_array()?.first()?;
    Some(format!("{}/{}", s["app"].as_str()?, s["stream"].as_str()?))
}

async fn wait_for_session_on(http_addr: std::net::SocketAddr, stream: &str) {
    for _ in 0..60 {
        if session_stream(http_addr).await.as_deref() == Some(stream) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the session never moved to {stream}: {:?}",
        session_stream(http_addr).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_moves_its_viewer_between_sources_without_a_gap() {
    let server = start(&base_config()).await.expect("server starts");
    wait_for_demo(&server).await;
    // The second source: another clip looped live as `live/guest` (same codecs and clocks,
    // another picture size, as a co-host mix would differ from a solo stream).
    let target = HubTarget::new(server.hub.clone(), PublisherConfig::default());
    let guest = DemoLoop::from_file(&fixture("h264_aac.flv")).expect("fixture");
    let guest_task = tokio::spawn(demo_source::run(guest, target.sink_for("live/guest")));
    for _ in 0..300 {
        if server
            .hub
            .get("live/guest")
            .is_some_and(|s| s.has_keyframe())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let api = server.http_addr;

    // Refusals first.
    let post = |body: &'static str| http_json(api, "POST", "/api/v1/rooms", body);
    assert_eq!(post(r#"{"room":"a b","source":"live/demo"}"#).await.0, 400);
    assert_eq!(post(r#"{"room":"show","source":"room/x"}"#).await.0, 400);
    assert_eq!(post(r#"{"room":"show","source":"live/nope"}"#).await.0, 422);
    assert_eq!(post(r#"{"room":"show"}"#).await.0, 400);
    // Created, listed, not twice.
    let (status, body) = post(r#"{"room":"show","source":"live/demo"}"#).await;
    assert_eq!(status, 201, "{body}");
    assert!(body.contains(r#""source":"live/demo""#), "{body}");
    assert_eq!(
        post(r#"{"room":"show","source":"live/guest"}"#).await.0,
        409
    );
    let (_, list) = http(api, "GET", "/api/v1/rooms").await;
    assert!(list.contains(r#""room":"show""#), "{list}");
    // A room that does not exist cannot be played.
    let missing = play(PlayOptions {
        url: format!("rtm://{}/room/nope", server.media_addr),
        duration: Duration::from_secs(1),
        first_frame_timeout: Duration::from_secs(1),
        ..PlayOptions::default()
    })
    .await;
    assert!(!missing.ok);

    let before = Scrape::take(api).await;
    let player = tokio::spawn(play(PlayOptions {
        url: format!("rtm://{}/room/show", server.media_addr),
        duration: Duration::from_secs(7),
        first_frame_timeout: Duration::from_secs(5),
        ..PlayOptions::default()
    }));
    scrape_until(api, Duration::from_secs(5), "viewer connected", |s| {
        s.get(MINISDP_CONNECTED) == 1.0
    })
    .await;
    wait_for_session_on(api, "live/demo").await;
    let (_, one) = http(api, "GET", "/api/v1/rooms/show").await;
    assert!(one.contains(r#""viewers":1"#), "{one}");

    // Solo → guest, while playing.
    let (status, body) = http_json(
        api,
        "PATCH",
        "/api/v1/rooms/show",
        r#"{"source":"live/guest"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""generation":1"#), "{body}");
    wait_for_session_on(api, "live/guest").await;
    scrape_until(api, Duration::from_secs(3), "first switch counted", |s| {
        s.get(SWITCHES) == before.get(SWITCHES) + 1.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    // ... and back.
    let (status, _) = http_json(
        api,
        "PATCH",
        "/api/v1/rooms/show",
        r#"{"source":"live/demo"}"#,
    )
    .await;
    assert_eq!(status, 200);
    wait_for_session_on(api, "live/demo").await;
    assert_eq!(
        http_json(
            api,
            "PATCH",
            "/api/v1/rooms/nope",
            r#"{"source":"live/demo"}"#
        )
        .await
        .0,
        404
    );

    let report = player.await.expect("player task");
    let after = Scrape::take(api).await;
    assert_eq!(after.get(SWITCHES) - before.get(SWITCHES), 2.0);
    assert!(report.ok, "{report:?}");
    // One continuous RTP stream: nothing missing, nothing lost, no stall.
    assert_eq!(report.video_buffer.packets_missing, 0, "{report:?}");
    assert_eq!(report.audio_buffer.packets_missing, 0, "{report:?}");
    assert_eq!(report.frames_dropped, 0, "{report:?}");
    assert_eq!(report.loss.after_recovery, 0.0, "{report:?}");
    assert_eq!(report.stalls, 0, "{report:?}");

    // Rooms are WebRTC-only.
    let (status, body) = http(api, "GET", "/room/show.flv").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("WebRTC"), "{body}");

    // Deleted: gone from the list, a second delete is 404.
    assert_eq!(http(api, "DELETE", "/api/v1/rooms/show").await.0, 204);
    assert_eq!(http(api, "DELETE", "/api/v1/rooms/show").await.0, 404);
    assert_eq!(http(api, "GET", "/api/v1/rooms/show").await.0, 404);
    guest_task.abort();
    server.stop().await;
}
