//! Whole paths through the edge: ffmpeg publishes RTMP into rtmlive B's hub, B serves it as
//! HTTP-FLV, and both a real player (ffmpeg) and rtmlive A (pull manager, cascading) pull it.
//! Also the demo source through the hub and HTTP-FLV out.

mod ingest_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ingest_support::{CollectTarget, ffmpeg, ffmpeg9, fixture, wait_for};
use rtmlive::hub::{Hub, HubConfig, PublisherConfig};
use rtmlive::ingest::demo_source::{self, DemoLoop};
use rtmlive::ingest::flv_out::{FlvOut, FlvOutConfig};
use rtmlive::ingest::rtmp_server::{KeyCheck, RtmpServer, RtmpServerConfig};
use rtmlive::media::{Codec, FrameKind};
use rtmlive::origin::upstreams::{Selection, Upstream, UpstreamSet};
use rtmlive::origin::{HubTarget, PullConfig, PullManager};

struct EdgeB {
    hub: Arc<Hub>,
    target: Arc<HubTarget>,
    rtmp: SocketAddr,
    http: SocketAddr,
}

async fn start_b() -> EdgeB {
    let hub = Arc::new(Hub::new(HubConfig::default()));
    let target = Arc::new(HubTarget::new(hub.clone(), PublisherConfig::default()));
    let keys: KeyCheck = Arc::new(|_: &str, _: &str, key: Option<&str>| key == Some("k"));
    let rtmp = RtmpServer::bind(
        RtmpServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..RtmpServerConfig::default()
        },
        keys,
        target.clone(),
    )
    .await
    .unwrap();
    let rtmp_addr = rtmp.local_addr().unwrap();
    tokio::spawn(rtmp.run());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let router = FlvOut::new(hub.clone(), FlvOutConfig::default()).router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    EdgeB {
        hub,
        target,
        rtmp: rtmp_addr,
        http,
    }
}

fn publish(ff: &PathBuf, file: &str, url: &str) -> std::process::Child {
    Command::new(ff)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "1",
            "-i",
        ])
        .arg(fixture(file))
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg")
}

fn edge_a(b: &EdgeB) -> (PullManager, Arc<CollectTarget>) {
    let target = Arc::new(CollectTarget::default());
    let config = PullConfig {
        upstreams: UpstreamSet::new(
            vec![Upstream::new("b", format!("http://{}", b.http))],
            Selection::Rendezvous,
        ),
        ..PullConfig::default()
    };
    (PullManager::new(config, target.clone()), target)
}

/// A real player (ffmpeg) decodes one second of `url` without error.
async fn assert_plays(ff: PathBuf, url: String) {
    let player = tokio::task::spawn_blocking(move || {
        Command::new(ff)
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-i",
                &url,
                "-t",
                "1",
                "-f",
                "null",
                "-",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        player.status.success(),
        "player: {}",
        String::from_utf8_lossy(&player.stderr)
    );
}

async fn publish_then_pull(ff: PathBuf, file: &str, codec: Codec) {
    let b = start_b().await;
    let mut child = publish(&ff, file, &format!("rtmp://{}/live/x?key=k", b.rtmp));
    assert!(
        wait_for(Duration::from_secs(10), || b
            .hub
            .get("live/x")
            .is_some_and(|s| s.has_keyframe()))
        .await,
        "publish reached the hub"
    );

    // rtmlive A pulls HTTP-FLV from B.
    let (a, collected) = edge_a(&b);
    let lease = a.acquire("live/x");
    assert!(
        wait_for(Duration::from_secs(10), || collected
            .get("live/x")
            .is_some_and(|c| c.video_frames().len() > 30))
        .await,
        "A received frames"
    );
    let c = collected.get("live/x").unwrap();
    let video = c.video_frames();
    assert_eq!(video[0].kind, FrameKind::Key);
    assert!(video.iter().all(|f| f.codec == codec));
    assert!(video.windows(2).all(|w| w[0].dts <= w[1].dts));
    drop(lease);

    // A real player decodes B's HTTP-FLV output.
    let url = format!("http://{}/live/x.flv", b.http);
    assert_plays(ff, url).await;
    let _ = child.kill();
    let _ = child.wait();
    drop(b.target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_rtmp_publish_to_http_flv_pull_and_player() {
    let Some(ff) = ffmpeg() else { return };
    publish_then_pull(ff, "h264_bframes_aac.flv", Codec::H264).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_enhanced_rtmp_publish_to_http_flv_pull_and_player() {
    let Some(ff) = ffmpeg9() else { return };
    publish_then_pull(ff, "hevc_enhanced_aac.flv", Codec::H265).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_source_through_hub_and_http_flv() {
    let b = start_b().await;
    let demo = DemoLoop::from_file(&fixture("demo.flv")).unwrap();
    let sink = b.target.sink_for("live/demo");
    let task = tokio::spawn(demo_source::run(demo, sink));
    let (a, collected) = edge_a(&b);
    let _lease = a.acquire("live/demo");
    assert!(
        wait_for(Duration::from_secs(10), || collected
            .get("live/demo")
            .is_some_and(|c| c.video_frames().len() > 25))
        .await
    );
    let video = collected.get("live/demo").unwrap().video_frames();
    assert_eq!(video[0].kind, FrameKind::Key);
    assert!(video.windows(2).all(|w| w[0].dts < w[1].dts));
    task.abort();
}

/// RTMP all the way: ffmpeg publishes to B, rtmlive A plays it from B over RTMP (our client
/// against our server), and ffmpeg plays it from B over RTMP too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_publish_then_rtmp_play_from_our_server() {
    let Some(ff) = ffmpeg() else { return };
    let b = start_b().await;
    let mut child = publish(
        &ff,
        "h264_aac.flv",
        &format!("rtmp://{}/live/r?key=k", b.rtmp),
    );
    assert!(
        wait_for(Duration::from_secs(10), || b
            .hub
            .get("live/r")
            .is_some_and(|s| s.has_keyframe()))
        .await
    );
    let target = Arc::new(CollectTarget::default());
    let config = PullConfig {
        upstreams: UpstreamSet::new(
            vec![Upstream::new(
                "b",
                format!("rtmp://{}/{{app}}/{{stream}}?key=k", b.rtmp),
            )],
            Selection::Ordered,
        ),
        ..PullConfig::default()
    };
    let a = PullManager::new(config, target.clone());
    let _lease = a.acquire("live/r");
    assert!(
        wait_for(Duration::from_secs(10), || target
            .get("live/r")
            .is_some_and(|c| c.video_frames().len() > 20))
        .await,
        "A plays from B over RTMP"
    );
    let video = target.get("live/r").unwrap().video_frames();
    assert_eq!(video[0].kind, FrameKind::Key);

    let url = format!("rtmp://{}/live/r?key=k", b.rtmp);
    assert_plays(ff, url).await;
    let _ = child.kill();
    let _ = child.wait();
}
