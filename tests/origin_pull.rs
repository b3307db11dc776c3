//! The pull manager against real HTTP origins on loopback: single flight, failover with one gap
//! and health ejection, linger, redirects, malformed FLV.

mod ingest_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ingest_support::{CollectTarget, OriginOpts, TestOrigin, fixture, wait_for};
use rtmlive::media::{DemuxEvent, Frame, FrameKind};
use rtmlive::origin::health::HealthConfig;
use rtmlive::origin::upstreams::{Selection, Upstream, UpstreamSet};
use rtmlive::origin::{PullConfig, PullManager, PullTimeouts};

fn config(upstreams: Vec<Upstream>) -> PullConfig {
    PullConfig {
        upstreams: UpstreamSet::new(upstreams, Selection::Ordered),
        health: HealthConfig {
            window: Duration::from_secs(30),
            min_samples: 2,
            failure_ratio: 0.5,
            cooldown: Duration::from_millis(800),
            max_samples: 64,
        },
        timeouts: PullTimeouts {
            connect: Duration::from_secs(1),
            first_byte: Duration::from_secs(1),
            first_keyframe: Duration::from_secs(2),
            stall: Duration::from_millis(700),
        },
        linger: Duration::from_millis(300),
        retry_delay: Duration::from_millis(100),
        max_failed_rounds: 2,
        ..PullConfig::default()
    }
}

/// A pull manager with the test [`config`] over `upstreams`, delivering into a fresh collector.
fn manager(upstreams: Vec<Upstream>) -> (PullManager, Arc<CollectTarget>) {
    let target = Arc::new(CollectTarget::default());
    (PullManager::new(config(upstreams), target.clone()), target)
}

/// The video frames among demuxer events.
fn video_frames(events: &[DemuxEvent]) -> Vec<Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Frame(f) if f.codec.is_video() => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn demo() -> Vec<u8> {
    std::fs::read(fixture("demo.flv")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_viewers_open_one_upstream_connection() {
    let origin = TestOrigin::spawn(
        demo(),
        OriginOpts {
            chunked: true,
            bytes_per_sec: Some(200_000),
            ..OriginOpts::default()
        },
    )
    .await;
    let (mgr, target) = manager(vec![Upstream::new("a", format!("http://{}", origin.addr))]);
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let m = mgr.clone();
        tasks.push(tokio::spawn(async move { m.acquire("live/cold") }));
    }
    let mut leases = Vec::new();
    for t in tasks {
        leases.push(t.await.unwrap());
    }
    let got_frames = wait_for(Duration::from_secs(5), || {
        target
            .get("live/cold")
            .is_some_and(|c| c.frames().len() > 20)
    })
    .await;
    assert!(got_frames);
    assert_eq!(origin.connections.load(Ordering::SeqCst), 1);
    assert_eq!(mgr.connections_opened(), 1);
    assert_eq!(target.opened.load(Ordering::SeqCst), 1);
    let info = mgr.pulls();
    assert_eq!((info.len(), info[0].viewers), (1, 1000));
    assert_eq!(info[0].upstream.as_deref(), Some("a"));
    // The first frame delivered is a keyframe.
    let c = target.get("live/cold").unwrap();
    assert_eq!(c.video_frames()[0].kind, FrameKind::Key);

    // Linger: all leave, the pull ends about `linger` later.
    drop(leases);
    assert!(mgr.is_pulling("live/cold"));
    assert!(wait_for(Duration::from_secs(3), || !mgr.is_pulling("live/cold")).await);
    assert!(wait_for(Duration::from_secs(1), || c.ended.load(Ordering::SeqCst)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_returning_within_linger_keeps_the_pull() {
    let origin = TestOrigin::spawn(
        demo(),
        OriginOpts {
            bytes_per_sec: Some(100_000),
            ..OriginOpts::default()
        },
    )
    .await;
    let (mgr, _target) = manager(vec![Upstream::new("a", format!("http://{}", origin.addr))]);
    mgr.viewer_joined("live/x");
    tokio::time::sleep(Duration::from_millis(300)).await;
    mgr.viewer_left("live/x");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lease = mgr.acquire("live/x");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(mgr.is_pulling("live/x"));
    assert_eq!(origin.connections.load(Ordering::SeqCst), 1);
    drop(lease);
}

/// Primary dies mid-stream: the pull switches to the backup, resumes on a keyframe after one
/// gap of at most 1 s + one GOP with continuous timestamps; the primary is ejected and comes
/// back after its cool-down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_backup_with_one_gap_and_health_ejection() {
    let body = demo();
    let primary = TestOrigin::spawn(
        body.clone(),
        OriginOpts {
            bytes_per_sec: Some(45_000), // about real time (261 KB over 6 s)
            kill_after: Some(body.len() / 3),
            ..OriginOpts::default()
        },
    )
    .await;
    let backup = TestOrigin::spawn(
        body,
        OriginOpts {
            chunked: true,
            bytes_per_sec: Some(45_000),
            ..OriginOpts::default()
        },
    )
    .await;
    let (mgr, target) = manager(vec![
        Upstream::new("primary", format!("http://{}", primary.addr)),
        Upstream::new("backup", format!("http://{}", backup.addr)),
    ]);
    let _lease = mgr.acquire("live/demo");
    assert!(
        wait_for(Duration::from_secs(10), || mgr.pulls().first().is_some_and(
            |p| p.upstream.as_deref() == Some("backup") && p.frames > 60
        ))
        .await
    );
    let c = target.get("live/demo").unwrap();
    assert_eq!(c.gaps.load(Ordering::SeqCst), 1);
    assert_eq!(mgr.pulls()[0].gaps, 1);

    // The first video frame after the gap is a keyframe, and the DTS gap is bounded.
    let gap_at = c.gap_at.lock().unwrap()[0];
    let events = c.events.lock().unwrap().clone();
    let before = video_frames(&events[..gap_at]);
    let after = video_frames(&events[gap_at..]);
    assert_eq!(after[0].kind, FrameKind::Key);
    let gap_ms = after[0].dts - before.last().unwrap().dts;
    // demo.flv has a keyframe every 12 frames at 25 fps (480 ms).
    assert!(gap_ms > 0 && gap_ms <= 1000 + 480, "gap {gap_ms} ms");
    let all = c.video_frames();
    assert!(
        all.windows(2).all(|w| w[0].dts <= w[1].dts),
        "DTS monotonic"
    );

    // Health: primary had one success and one failure → ratio 0.5 → ejected.
    let h = mgr.health();
    let p = h.iter().find(|s| s.id == "primary").unwrap();
    assert_eq!((p.state, p.ejections), ("ejected", 1));
    tokio::time::sleep(Duration::from_millis(900)).await;
    let h = mgr.health();
    let p = h.iter().find(|s| s.id == "primary").unwrap();
    assert_eq!(p.state, "probation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_and_garbage_fails_over() {
    let real = TestOrigin::spawn(
        demo(),
        OriginOpts {
            bytes_per_sec: Some(100_000),
            ..OriginOpts::default()
        },
    )
    .await;
    let redirect = TestOrigin::spawn(
        Vec::new(),
        OriginOpts {
            redirect_to: Some(real.url("/live/r.flv")),
            ..OriginOpts::default()
        },
    )
    .await;
    let garbage =
        TestOrigin::spawn(b"<html>not flv</html>".repeat(100), OriginOpts::default()).await;
    let (mgr, target) = manager(vec![
        Upstream::new("garbage", format!("http://{}", garbage.addr)),
        Upstream::new("redirect", format!("http://{}", redirect.addr)),
    ]);
    let _lease = mgr.acquire("live/r");
    assert!(
        wait_for(Duration::from_secs(5), || target
            .get("live/r")
            .is_some_and(|c| c.frames().len() > 50))
        .await
    );
    assert_eq!(garbage.connections.load(Ordering::SeqCst), 1);
    assert_eq!(real.connections.load(Ordering::SeqCst), 1);
    // Nothing was delivered before the good upstream: no gap.
    assert_eq!(target.get("live/r").unwrap().gaps.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_upstreams_failing_ends_the_stream() {
    // A port with nothing listening.
    let port = ingest_support::free_port();
    let (mgr, target) = manager(vec![Upstream::new(
        "dead",
        format!("http://127.0.0.1:{port}"),
    )]);
    let _lease = mgr.acquire("live/none");
    assert!(wait_for(Duration::from_secs(5), || !mgr.is_pulling("live/none")).await);
    let c = target.get("live/none").unwrap();
    assert!(c.ended.load(Ordering::SeqCst));
    assert!(c.frames().is_empty());
    assert_eq!(mgr.connections_opened(), 2, "max_failed_rounds = 2");
}
