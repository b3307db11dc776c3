//! End to end: the whole edge in-process on loopback (demo stream looped from the committed
//! fixture) and player-test as the viewer, over every playback path.
//!
//! These are the "one real frame from a fixture through the edge to a player" tests: FLV
//! demux → packetize once → hub → miniSDP/WHEP signaling → ICE-lite → DTLS → SRTP → player
//! reassembly → no-drop jitter buffer → playout.

use std::time::Duration;

use player_test::impair::LinkSpec;
use player_test::{PlayOptions, SessionReport};
use rtmlive::config::Config;
use rtmlive::ops::MiniSdpStatus;
use rtmlive::server::{RunningServer, start};

fn demo_config() -> Config {
    let mut c = rtmlive::config::load_with_env(None, Vec::<(String, String)>::new())
        .expect("standalone defaults are valid")
        .config;
    let lo = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    c.listen.media.bind = lo(0);
    c.listen.http.bind = lo(0);
    c.listen.rtmp.bind = lo(0);
    c
}

async fn server() -> RunningServer {
    let s = start(&demo_config()).await.expect("server starts");
    // The demo publishes its first keyframe at once; wait for it so first-frame figures
    // measure the cache-hit path.
    let stream = loop {
        if let Some(s) = s.hub.get("live/demo") {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for _ in 0..200 {
        if stream.has_keyframe() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s
}

async fn play(url: String, secs: u64, impair: LinkSpec) -> SessionReport {
    let opts = PlayOptions {
        url,
        duration: Duration::from_secs(secs),
        first_frame_timeout: Duration::from_secs(5),
        impair,
        ..PlayOptions::default()
    };
    let report = tokio::task::spawn_blocking(move || player_test::play(opts))
        .await
        .expect("player thread");
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    report
}

fn assert_played(r: &SessionReport, min_frames: u64) {
    assert!(r.ok, "session failed: {:?}", r.error);
    assert!(r.first_frame_ms.is_some(), "no first frame");
    assert_eq!(r.frames_dropped, 0, "the no-drop invariant");
    assert!(
        r.frames_released >= min_frames,
        "only {} frames released",
        r.frames_released
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtm_extended_minisdp_plays_the_demo() {
    let s = server().await;
    let url = format!("rtm://{}/live/demo", s.media_addr);
    let r = play(url, 3, LinkSpec::default()).await;
    assert_played(&r, 60);
    assert!(
        s.metrics.minisdp_requests(MiniSdpStatus::Ok) >= 1,
        "answered with status 0"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtm_v0_minisdp_plays_the_demo() {
    let s = server().await;
    let url = format!("rtm://{}/live/demo?v=0", s.media_addr);
    let r = play(url, 3, LinkSpec::default()).await;
    assert_played(&r, 60);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_plays_the_demo() {
    let s = server().await;
    let url = format!("http://{}/whep/live/demo", s.http_addr);
    let r = play(url, 3, LinkSpec::default()).await;
    assert_played(&r, 30);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_flv_plays_the_demo() {
    let s = server().await;
    let url = format!("http://{}/live/demo.flv", s.http_addr);
    let r = play(url, 3, LinkSpec::default()).await;
    assert_played(&r, 60);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_stream_is_refused_with_104() {
    let s = server().await;
    let url = format!("rtm://{}/live/nosuch", s.media_addr);
    let r = play(url, 2, LinkSpec::default()).await;
    assert!(!r.ok);
    assert!(
        s.metrics.minisdp_requests(MiniSdpStatus::NotFound) >= 1,
        "status 104 counted"
    );
    s.stop().await;
}

/// 10% random loss and 50 ms RTT on the receive side: every lost packet is recovered by NACK
/// from the edge's retransmission cache, and no frame is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtm_recovers_every_frame_under_10_percent_loss() {
    let s = server().await;
    let url = format!("rtm://{}/live/demo", s.media_addr);
    let impair = LinkSpec {
        loss: 0.10,
        delay: Duration::from_millis(50),
        ..LinkSpec::default()
    };
    let r = play(url, 4, impair).await;
    assert_played(&r, 60);
    assert!(r.nacks_sent > 0, "loss was emulated, so NACKs were sent");
    assert!(
        r.retransmits_received > 0,
        "the edge served retransmissions"
    );
    s.stop().await;
}
