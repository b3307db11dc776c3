//! A drain on the real server (in-process, loopback), seen by a real player:
//!
//! * the player is told at the *start* of the drain (a miniSDP stop packet, status 102, naming
//!   its session), long before the deadline, so it could re-pull elsewhere;
//! * its session is counted as `draining`, new offers are refused (`reason="draining"`) and
//!   `/readyz` turns 503;
//! * media keeps flowing until the server stops, then RTCP BYE ends the session; no frame is
//!   lost on the way.

mod support;

use std::time::{Duration, Instant};

use player_test::PlayOptions;
use rtmlive::server::start;
use support::*;

const MINISDP_CONNECTED: &str = r#"rtmlive_sessions{protocol="minisdp",state="connected"}"#;
const MINISDP_DRAINING: &str = r#"rtmlive_sessions{protocol="minisdp",state="draining"}"#;
const REFUSED_DRAINING: &str =
    r#"rtmlive_sessions_rejected_total{protocol="minisdp",reason="draining"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_hear_of_the_drain_at_its_start_and_play_until_its_end() {
    let server = start(&base_config()).await.expect("server starts");
    wait_for_demo(&server).await;
    let url = format!("rtm://{}/live/demo", server.media_addr);
    let http_addr = server.http_addr;

    let started = Instant::now();
    let player = tokio::spawn(play(PlayOptions {
        url: url.clone(),
        duration: Duration::from_secs(20),
        first_frame_timeout: Duration::from_secs(8),
        ..PlayOptions::default()
    }));
    scrape_until(http_addr, Duration::from_secs(8), "player connected", |s| {
        s.get(MINISDP_CONNECTED) == 1.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(http(http_addr, "GET", "/readyz").await.0, 200);

    // The drain starts.
    let drain_at = started.elapsed();
    server.begin_drain();
    let during = scrape_until(http_addr, Duration::from_secs(2), "session draining", |s| {
        s.get(MINISDP_DRAINING) == 1.0
    })
    .await;
    assert_eq!(during.get(MINISDP_CONNECTED), 0.0, "{during:?}");
    assert_eq!(http(http_addr, "GET", "/readyz").await.0, 503);

    // A newcomer is refused.
    let late = play(PlayOptions {
        url,
        duration: Duration::from_secs(2),
        first_frame_timeout: Duration::from_secs(2),
        ..PlayOptions::default()
    })
    .await;
    assert!(!late.ok, "an offer during the drain was served: {late:?}");
    let refused = scrape_until(http_addr, Duration::from_secs(2), "refusal counted", |s| {
        s.get(REFUSED_DRAINING) >= 1.0
    })
    .await;
    assert_eq!(refused.get(MINISDP_DRAINING), 1.0);

    // The deadline: the server stops (BYE, close_notify).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stop_at = started.elapsed();
    server.stop().await;
    let report = player.await.expect("player task");

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let notice = report
        .server_stop_ms
        .unwrap_or_else(|| panic!("no stop packet reached the player: {report:?}"));
    assert_eq!(report.server_stop_status, Some(102), "{report:?}");
    // Told at the start (the worker notices within a tick), not at the end.
    assert!(
        notice >= ms(drain_at) - 50.0 && notice < ms(drain_at) + 500.0,
        "stop packet at {notice:.0} ms, drain began at {:.0} ms",
        ms(drain_at)
    );
    assert!(notice + 1000.0 < ms(stop_at), "notice too close to the end");
    // Media flowed after the notice, up to the end, then BYE.
    let last = report.last_media_ms.expect("media received");
    assert!(
        last > notice + 1000.0 && last > ms(stop_at) - 250.0,
        "media stopped at {last:.0} ms; notice at {notice:.0} ms, server stop at {:.0} ms",
        ms(stop_at)
    );
    let bye = report
        .bye_ms
        .unwrap_or_else(|| panic!("no BYE: {report:?}"));
    assert!(
        bye >= ms(stop_at) - 50.0,
        "BYE at {bye:.0} ms, stop at {:.0}",
        ms(stop_at)
    );
    assert!(report.first_frame_ms.is_some());
    assert_eq!(report.frames_dropped, 0, "{report:?}");
    assert!(
        report.duration_ms < 15_000.0,
        "the player ran to its own end instead of the server's: {report:?}"
    );
}
