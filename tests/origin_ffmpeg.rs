//! Origin pulls against real ffmpeg servers: HTTP-FLV (`-listen 1` over HTTP, chunked) and
//! RTMP (`-listen 1` rtmp, our play client), H.264 with B-frames and HEVC.

mod ingest_support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ingest_support::{count_video_packets, ffmpeg, ffmpeg9, fixture, free_port};
use rtmlive::media::{DemuxEvent, FrameKind};
use rtmlive::origin::http_flv::HttpFlvOptions;
use rtmlive::origin::rtmp_play::RtmpPlayOptions;
use rtmlive::origin::source::{Source, SourceOptions};

fn serve(ff: &PathBuf, file: &str, url: &str) -> Child {
    Command::new(ff)
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(fixture(file))
        .args(["-c", "copy", "-f", "flv", "-listen", "1", url])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg")
}

fn opts() -> SourceOptions {
    SourceOptions {
        http: HttpFlvOptions::default(),
        rtmp: RtmpPlayOptions::default(),
    }
}

/// Opens `url` as soon as ffmpeg listens, reads to the end, returns the events.
async fn pull_all(url: &str) -> Vec<DemuxEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut source = loop {
        match Source::open(url, &opts()).await {
            Ok(s) => break s,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("could not open {url}: {e}"),
        }
    };
    let mut events = Vec::new();
    let read = async {
        loop {
            match source.next_event().await {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => panic!("pull failed: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("pull timed out");
    events
}

fn check(events: &[DemuxEvent], expected_video: usize) {
    let video: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Frame(f) if f.codec.is_video() => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(video.len(), expected_video, "every video frame");
    assert_eq!(video[0].kind, FrameKind::Key);
    assert!(video.windows(2).all(|w| w[0].dts <= w[1].dts));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, DemuxEvent::VideoConfig(_)))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, DemuxEvent::AudioConfig(_)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_http_flv_from_ffmpeg() {
    let Some(ff) = ffmpeg() else { return };
    let file = "h264_bframes_aac.flv";
    let port = free_port();
    let mut child = serve(&ff, file, &format!("http://127.0.0.1:{port}/live/x.flv"));
    let events = pull_all(&format!("http://127.0.0.1:{port}/live/x.flv")).await;
    let _ = child.kill();
    let _ = child.wait();
    check(&events, count_video_packets(&ff, &fixture(file)));
    // B-frames survive with their composition offsets.
    assert!(
        events
            .iter()
            .any(|e| matches!(e, DemuxEvent::Frame(f) if f.kind == FrameKind::B))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plays_rtmp_from_ffmpeg() {
    let Some(ff) = ffmpeg() else { return };
    let file = "h264_aac.flv";
    let port = free_port();
    let mut child = serve(&ff, file, &format!("rtmp://127.0.0.1:{port}/live/x"));
    let events = pull_all(&format!("rtmp://127.0.0.1:{port}/live/x")).await;
    let _ = child.kill();
    let _ = child.wait();
    check(&events, count_video_packets(&ff, &fixture(file)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plays_hevc_over_enhanced_rtmp_from_ffmpeg9() {
    let Some(ff) = ffmpeg9() else { return };
    let file = "hevc_enhanced_aac.flv";
    let port = free_port();
    let mut child = serve(&ff, file, &format!("rtmp://127.0.0.1:{port}/live/h"));
    let events = pull_all(&format!("rtmp://127.0.0.1:{port}/live/h")).await;
    let _ = child.kill();
    let _ = child.wait();
    check(&events, count_video_packets(&ff, &fixture(file)));
    assert!(events.iter().any(
        |e| matches!(e, DemuxEvent::VideoConfig(c) if c.codec == rtmlive::media::Codec::H265)
    ));
}
