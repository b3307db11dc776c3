//! WHIP interop: the `whip` muxer of the static ffmpeg 9 (`imageio-ffmpeg`, or
//! `$RTMLIVE_FFMPEG9`) publishes H.264 + Opus to the edge running in-process, and player-test
//! plays the published stream over miniSDP/WebRTC.
//!
//! ffmpeg → HTTP POST offer → ICE-lite → DTLS → SRTP receive (reorder/NACK/PLI) → RTP
//! depacketize → hub publisher (packetize once) → viewer session → player. Under `CI=true` a
//! missing ffmpeg 9 fails the test instead of skipping it. The edge asks the publisher for its
//! first keyframe with PLIs, and `rtmlive_pli_sent_total` counts them; the publisher counts as
//! a `whip` session and its media as `whip` ingress.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use player_test::{PlayOptions, SessionReport};
use rtmlive::config::Config;
use rtmlive::media::Codec;
use rtmlive::server::start;
use support::{Scrape, assert_grew, base_config, http};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn ffmpeg9() -> Option<String> {
    let path = std::env::var("RTMLIVE_FFMPEG9").ok().or_else(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    let ok = path.as_ref().is_some_and(|p| {
        Command::new(p)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if ok {
        return path;
    }
    assert!(
        !in_ci(),
        "ffmpeg 9 (imageio-ffmpeg) is required under CI=true (run scripts/setup.sh)"
    );
    eprintln!("skipping: ffmpeg 9 (imageio-ffmpeg) not found");
    None
}

fn config() -> Config {
    let mut c = base_config();
    c.demo.enabled = false;
    c
}

/// Kills the publisher when the test ends, however it ends.
struct Publisher(Child);

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `dtls_active`: ffmpeg is the DTLS client (`a=setup:active`) and the edge the server; by
/// default ffmpeg offers `a=setup:passive` and the edge connects as the DTLS client.
fn publish(ffmpeg: &str, url: &str, secs: u32, dtls_active: bool) -> Publisher {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "warning", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args(["-c:v", "libx264", "-profile:v", "baseline", "-bf", "0"])
        .args(["-g", "25", "-tune", "zerolatency", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "libopus", "-ac", "2", "-ar", "48000"])
        .stdin(Stdio::null());
    if dtls_active {
        cmd.args(["-whip_flags", "dtls_active"]);
    }
    let child = cmd
        .args(["-f", "whip", url])
        .spawn()
        .expect("ffmpeg starts");
    Publisher(child)
}

async fn play(url: String, secs: u64) -> SessionReport {
    let opts = PlayOptions {
        url,
        duration: Duration::from_secs(secs),
        first_frame_timeout: Duration::from_secs(5),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_over_whip_and_a_player_plays_it() {
    publish_and_play(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_as_dtls_client_publishes_over_whip() {
    publish_and_play(true).await;
}

async fn publish_and_play(dtls_active: bool) {
    let Some(ffmpeg) = ffmpeg9() else { return };
    let s = start(&config()).await.expect("server starts");
    let url = format!("http://{}/whip/live/w", s.http_addr);
    let mut publisher = publish(&ffmpeg, &url, 8, dtls_active);

    // The published stream reaches the hub with both decoder configurations and a keyframe.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        if let Some(st) = s.hub.get("live/w")
            && st.has_keyframe()
            && st.video_config().is_some()
            && st.audio_config().is_some()
        {
            break st;
        }
        if let Ok(Some(status)) = publisher.0.try_wait() {
            panic!("ffmpeg exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "no keyframe from the WHIP publisher"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let video = stream.video_config().expect("video config");
    assert_eq!(video.codec, Codec::H264);
    assert_eq!((video.width, video.height), (320, 240));
    assert_eq!(stream.audio_config().map(|a| a.codec), Some(Codec::Opus));
    // The ingest waited for (and asked for) its first keyframe: PLIs went to the publisher.
    // (Flushed to the metrics once per shard iteration: a few milliseconds.)
    let deadline = Instant::now() + Duration::from_secs(2);
    let publishing = loop {
        let m = Scrape::take(s.http_addr).await;
        if m.get("rtmlive_pli_sent_total") >= 1.0 {
            break m;
        }
        assert!(Instant::now() < deadline, "no PLI sent to the publisher");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The publisher is a WHIP session (not a WHEP one), and its media is WHIP ingress.
    assert_eq!(
        publishing.get(r#"rtmlive_sessions{protocol="whip",state="connected"}"#),
        1.0
    );
    assert_eq!(
        publishing.get(r#"rtmlive_sessions_opened_total{protocol="whip"}"#),
        1.0
    );
    assert_eq!(
        publishing.get(r#"rtmlive_sessions_opened_total{protocol="whep"}"#),
        0.0
    );
    assert!(publishing.get(r#"rtmlive_ingress_packets_total{source="whip"}"#) > 0.0);
    assert_eq!(publishing.get(r#"rtmlive_streams{source="whip"}"#), 1.0);
    assert_eq!(publishing.get(r#"rtmlive_streams{source="rtmp"}"#), 0.0);
    assert!(publishing.get(r#"rtmlive_ingress_bytes_total{source="whip"}"#) > 0.0);
    // A POST that is no SDP offer is refused and counted.
    let (status, _) = http(s.http_addr, "POST", "/whip/live/other").await;
    assert_eq!(status, 415);
    assert_grew(
        &publishing,
        &Scrape::take(s.http_addr).await,
        "refused WHIP POST",
        &[r#"rtmlive_sessions_rejected_total{protocol="whip",reason="bad_request"}"#],
    );

    // A viewer plays it over WebRTC (miniSDP), video and Opus audio, nothing dropped.
    let r = play(format!("rtm://{}/live/w", s.media_addr), 4).await;
    assert!(r.ok, "session failed: {:?}", r.error);
    assert!(r.first_frame_ms.is_some(), "no first frame");
    assert_eq!(r.frames_dropped, 0, "the no-drop invariant");
    assert!(
        r.video.frames_presented >= 50,
        "only {} video frames played",
        r.video.frames_presented
    );
    assert!(
        r.audio.frames_presented >= 50,
        "only {} audio frames played",
        r.audio.frames_presented
    );

    // The publisher leaves (ffmpeg's DELETE at the end of its input): the stream ends.
    let status = tokio::task::spawn_blocking(move || {
        let st = publisher.0.wait();
        drop(publisher);
        st
    })
    .await
    .expect("wait thread")
    .expect("ffmpeg ran");
    assert!(status.success(), "ffmpeg failed: {status}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !stream.is_closed() {
        assert!(
            Instant::now() < deadline,
            "the stream did not end after the publisher left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = Scrape::take(s.http_addr).await;
    for state in ["pending", "connected"] {
        let sample = format!(r#"rtmlive_sessions{{protocol="whip",state="{state}"}}"#);
        assert_eq!(after.get(&sample), 0.0, "{sample} after the publisher left");
    }
    s.stop().await;
}
