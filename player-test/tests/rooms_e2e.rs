//! Co-host rooms on the real server (in-process, loopback), with player-test as the viewers:
//! a room is created through the admin API, two players play `room/<name>` (one over miniSDP,
//! one over WHEP), and the operator switches the room between two live sources of different
//! picture sizes while they play. Each player must see one continuous RTP stream (no gap to
//! NACK, no frame lost, no stall, presentation times that keep increasing), must be shown the
//! new source's pictures after each switch (told by the SPS in its keyframes, not by the
//! server's word), and `rtmlive_switch_events_total` must count every viewer's switch.
//!
//! A second test has the room's host drop and reconnect (a new stream under the same name):
//! the room follows it, and its viewer keeps playing without re-signaling.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use player_test::picture::PictureSize;
use player_test::{PlayOptions, SessionReport};
use rtmlive::hub::PublisherConfig;
use rtmlive::ingest::demo_source::{self, DemoLoop};
use rtmlive::origin::HubTarget;
use rtmlive::origin::sink::MediaSink;
use rtmlive::server::{RunningServer, start};
use support::*;

const SWITCHES: &str = "rtmlive_switch_events_total";
/// The demo stream (`tests/fixtures/demo.flv`) and the other clip (`h264_aac.flv`).
const DEMO_SIZE: (u32, u32) = (640, 360);
const GUEST_SIZE: (u32, u32) = (320, 240);

/// The server's tests share two cores with the players: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// Loops fixture `file` live as `key` through its own publisher, like an RTMP host.
fn publish(
    target: &HubTarget,
    key: &str,
    file: &str,
) -> (Arc<dyn MediaSink>, tokio::task::JoinHandle<()>) {
    let sink: Arc<dyn MediaSink> = target.sink_for(key);
    let clip = DemoLoop::from_file(&fixture(file)).expect("fixture");
    let task = tokio::spawn(demo_source::run(clip, sink.clone()));
    (sink, task)
}

async fn wait_for_keyframe(server: &RunningServer, key: &str) {
    for _ in 0..300 {
        if server.hub.get(key).is_some_and(|s| s.has_keyframe()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{key} never got a keyframe");
}

/// The streams the admin API lists the WebRTC sessions on.
async fn session_streams(http_addr: SocketAddr) -> Vec<String> {
    let (_, body) = http(http_addr, "GET", "/api/v1/sessions").await;
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return Vec::new();
    };
    v["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["protocol"] != "http_flv")
        .filter_map(|s| Some(format!("{}/{}", s["app"].as_str()?, s["stream"].as_str()?)))
        .collect()
}

/// Waits until `n` sessions are listed, all on `stream` (snapshots lag up to a second).
async fn wait_for_sessions_on(http_addr: SocketAddr, n: usize, stream: &str) {
    for _ in 0..60 {
        let on = session_streams(http_addr).await;
        if on.len() == n && on.iter().all(|s| s == stream) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the sessions never all moved to {stream}: {:?}",
        session_streams(http_addr).await
    );
}

async fn switch(api: SocketAddr, room: &str, source: &str) -> serde_json::Value {
    let (status, body) = http_json(
        api,
        "PATCH",
        &format!("/api/v1/rooms/{room}"),
        &format!(r#"{{"source":"{source}"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

fn sizes(r: &SessionReport) -> Vec<(u32, u32)> {
    r.video_sizes
        .iter()
        .map(|&PictureSize { width, height, .. }| (width, height))
        .collect()
}

/// One continuous RTP stream: nothing missing, nothing lost, time never going back.
fn assert_continuous(r: &SessionReport) {
    assert!(r.ok, "{r:?}");
    assert_eq!(r.video_buffer.packets_missing, 0, "{r:?}");
    assert_eq!(r.audio_buffer.packets_missing, 0, "{r:?}");
    assert_eq!(r.frames_dropped, 0, "{r:?}");
    assert_eq!(r.loss.after_recovery, 0.0, "{r:?}");
    assert_eq!(r.video.out_of_order, 0, "{r:?}");
    assert_eq!(r.audio.out_of_order, 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_moves_its_viewers_between_sources_without_a_gap() {
    let _serial = SERIAL.lock().await;
    let server = start(&base_config()).await.expect("server starts");
    wait_for_demo(&server).await;
    // The second source: another clip looped live as `live/guest` (same codecs and clocks,
    // another picture size, as a co-host mix would differ from a solo stream).
    let target = HubTarget::new(server.hub.clone(), PublisherConfig::default());
    let (_guest, guest_task) = publish(&target, "live/guest", "h264_aac.flv");
    wait_for_keyframe(&server, "live/guest").await;
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
    let viewer = |url: String| {
        tokio::spawn(play(PlayOptions {
            url,
            duration: Duration::from_secs(10),
            first_frame_timeout: Duration::from_secs(5),
            ..PlayOptions::default()
        }))
    };
    let minisdp = viewer(format!("rtm://{}/room/show", server.media_addr));
    let whep = viewer(format!("http://{api}/whep/room/show"));
    wait_for_sessions_on(api, 2, "live/demo").await;
    let (_, one) = http(api, "GET", "/api/v1/rooms/show").await;
    assert!(one.contains(r#""viewers":2"#), "{one}");
    // Let both play the solo stream a while (a keyframe of it each, at least).
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Solo → guest, while playing: each viewer switches once.
    let room = switch(api, "show", "live/guest").await;
    assert_eq!(room["generation"], 1, "{room}");
    wait_for_sessions_on(api, 2, "live/guest").await;
    scrape_until(api, Duration::from_secs(3), "both switches counted", |s| {
        s.get(SWITCHES) == before.get(SWITCHES) + 2.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // ... and back.
    switch(api, "show", "live/demo").await;
    wait_for_sessions_on(api, 2, "live/demo").await;
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

    let reports = [
        minisdp.await.expect("player task"),
        whep.await.expect("player task"),
    ];
    let after = Scrape::take(api).await;
    assert_eq!(
        after.get(SWITCHES) - before.get(SWITCHES),
        4.0,
        "2 viewers × 2 switches"
    );
    for r in &reports {
        assert_continuous(r);
        assert_eq!(r.stalls, 0, "{r:?}");
        // What the player decoded the parameter sets of: solo, guest, solo again.
        assert_eq!(sizes(r), [DEMO_SIZE, GUEST_SIZE, DEMO_SIZE], "{r:?}");
    }

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_follows_its_host_across_a_reconnect() {
    let _serial = SERIAL.lock().await;
    let server = start(&base_config()).await.expect("server starts");
    let api = server.http_addr;
    let target = HubTarget::new(server.hub.clone(), PublisherConfig::default());
    let (first_sink, first_task) = publish(&target, "live/host", "h264_aac.flv");
    wait_for_keyframe(&server, "live/host").await;
    let (status, body) = http_json(
        api,
        "POST",
        "/api/v1/rooms",
        r#"{"room":"solo","source":"live/host"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let before = Scrape::take(api).await;
    let player = tokio::spawn(play(PlayOptions {
        url: format!("rtm://{}/room/solo", server.media_addr),
        duration: Duration::from_secs(6),
        first_frame_timeout: Duration::from_secs(5),
        ..PlayOptions::default()
    }));
    wait_for_sessions_on(api, 1, "live/host").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // The host's encoder drops and reconnects at once, with other settings: its stream ends
    // and a new one is published under the same name.
    let ended = server.hub.get("live/host").expect("stream");
    first_task.abort();
    let _ = first_task.await;
    first_sink.on_end();
    assert!(ended.is_closed());
    let (_second_sink, second_task) = publish(&target, "live/host", "demo.flv");
    let second = server.hub.get("live/host").expect("new stream");
    assert!(
        !Arc::ptr_eq(&ended, &second),
        "a new stream, as a reconnect gets"
    );

    scrape_until(api, Duration::from_secs(3), "the viewer followed", |s| {
        s.get(SWITCHES) == before.get(SWITCHES) + 1.0
    })
    .await;
    let (_, room) = http(api, "GET", "/api/v1/rooms/solo").await;
    assert!(room.contains(r#""generation":1"#), "{room}");
    assert!(room.contains(r#""source":"live/host""#), "{room}");

    let r = player.await.expect("player task");
    assert_continuous(&r);
    // Shown the reconnected encoder's pictures, on the same session.
    assert_eq!(sizes(&r), [GUEST_SIZE, DEMO_SIZE], "{r:?}");
    // The host was gone for a moment: at most one short pause, never a re-signal.
    assert!(r.stalls <= 1, "{r:?}");
    assert!(r.stall_time_ms < 1500.0, "{r:?}");
    assert_eq!(r.repulls, 0, "{r:?}");
    second_task.abort();
    server.stop().await;
}
