//! HTTP-FLV playback through the public entry point, against a minimal HTTP server serving a
//! committed fixture at its real-time pace (what an edge's HTTP-FLV output does live).

use std::time::{Duration, Instant};

use player_test::{PlayOptions, play};
use rtmlive::media::flv::{DemuxEvent, FlvDemuxer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn fixture() -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/h264_aac.flv",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Serves the file with chunked encoding, each FLV tag when its timestamp comes due.
async fn serve(listener: TcpListener, flv: Vec<u8>) {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut req = [0u8; 2048];
    let _ = s.read(&mut req).await.unwrap();
    s.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let start = Instant::now();
    // FLV header (9 bytes) + PreviousTagSize0 (4), then tags.
    let mut pos = 13;
    let mut chunks = vec![flv[..13].to_vec()];
    while pos + 11 <= flv.len() {
        let size = u32::from_be_bytes([0, flv[pos + 1], flv[pos + 2], flv[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([flv[pos + 7], flv[pos + 4], flv[pos + 5], flv[pos + 6]]);
        let end = (pos + 11 + size + 4).min(flv.len());
        chunks.push(flv[pos..end].to_vec());
        let due = start + Duration::from_millis(u64::from(ts));
        tokio::time::sleep_until(due.into()).await;
        for c in chunks.drain(..) {
            let head = format!("{:x}\r\n", c.len());
            if s.write_all(head.as_bytes()).await.is_err()
                || s.write_all(&c).await.is_err()
                || s.write_all(b"\r\n").await.is_err()
            {
                return;
            }
        }
        pos = end;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
}

#[test]
fn http_flv_plays_every_frame_with_first_keyframe_stage() {
    let flv = fixture();
    let mut d = FlvDemuxer::new();
    d.push(&flv);
    let mut frames = 0u64;
    while let Some(ev) = d.poll().unwrap() {
        if let DemuxEvent::Frame(_) = ev {
            frames += 1;
        }
    }
    // Bound with std and registered inside the server thread's own runtime (a tokio listener
    // belongs to the runtime that created it).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move { serve(TcpListener::from_std(listener).unwrap(), flv).await });
    });
    let report = play(PlayOptions {
        url: format!("http://127.0.0.1:{port}/live/fixture.flv"),
        duration: Duration::from_secs(10),
        first_frame_timeout: Duration::from_secs(5),
        ..PlayOptions::default()
    });
    server.join().unwrap();
    // The server ends the stream after the fixture: that is reported, after every frame played.
    assert_eq!(report.error.as_deref(), Some("server closed the stream"));
    assert_eq!(report.protocol, "flv");
    let s = report.stages;
    assert!(s.offer_sent.is_some() && s.answer.is_some() && s.first_rtp.is_some());
    let ff = report.first_frame_ms.expect("first keyframe");
    assert!(ff < 500.0, "first frame at {ff} ms from a local server");
    assert_eq!(report.frames_released, frames);
    assert_eq!(report.frames_dropped, 0);
    assert_eq!(report.video.out_of_order, 0);
    assert!(report.video.played_ms > 1500.0, "{:?}", report.video);
    assert_eq!(
        report.stalls, 0,
        "paced at real time: no render gap over 200 ms"
    );
}
