//! A real browser plays the demo over WHEP: headless Chromium, driven over WebDriver
//! (chromedriver + fantoccini), loads the edge's own player page (`GET /play/live/demo`), which
//! POSTs its offer to `/whep/live/demo`, and must render at least [`MIN_FRAMES`] video frames at
//! the fixture's size (640x360), counted by `requestVideoFrameCallback`: frames the compositor
//! actually presented, not merely packets received.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/setup.sh` installs them;
//! `RTMLIVE_CHROMIUM` / `RTMLIVE_CHROMEDRIVER` override the paths). Without them the test
//! skips with a message, except under `CI=true`, where it fails.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use rtmlive::config::Config;
use rtmlive::server::{RunningServer, start};
use serde_json::{Value, json};

/// Frames the browser must render at the source size.
const MIN_FRAMES: u64 = 30;
/// The demo fixture's size (tests/fixtures/README.md).
const WIDTH: u64 = 640;
const HEIGHT: u64 = 360;
/// From page load to [`MIN_FRAMES`] rendered frames (the demo runs at 25 fps: ~1.2 s of video
/// plus connection setup; generous for a loaded 2-core CI machine).
const PLAY_TIMEOUT: Duration = Duration::from_secs(30);

fn demo_config() -> Config {
    let mut c = rtmlive::config::load_with_env(None, Vec::<(String, String)>::new())
        .expect("standalone defaults are valid")
        .config;
    let lo = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    c.listen.media.bind = lo(0);
    c.listen.http.bind = lo(0);
    c.listen.rtmp.bind = lo(0);
    c
}

/// The program named by the environment variable `var` if set, else the first candidate
/// path; `None` if that is not an existing file.
fn find_tool(var: &str, candidates: &[&str]) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)),
        None => candidates.iter().map(PathBuf::from).find(|p| p.is_file()),
    }
    .filter(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` (after saying why) when the test may skip.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_tool(
        "RTMLIVE_CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let driver = find_tool(
        "RTMLIVE_CHROMEDRIVER",
        &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
    );
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let msg = format!(
                "browser test needs chromium ({}) and chromedriver ({}): apt-get install -y chromium chromium-driver",
                c.map_or("missing".into(), |p| p.display().to_string()),
                d.map_or("missing".into(), |p| p.display().to_string()),
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

/// A child process killed and reaped when dropped, so a failing assertion cleans up too.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port for chromedriver (it cannot report a port it picked itself).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

async fn start_chromedriver(driver: &Path) -> (Reaped, String) {
    let port = free_port();
    let verbose = std::env::var_os("RTMLIVE_BROWSER_LOG").is_some();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(if verbose {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stderr(if verbose {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("chromedriver starts");
    let child = Reaped(child);
    let url = format!("http://127.0.0.1:{port}");
    // Ready when it accepts connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, url)
}

async fn start_browser(driver_url: &str, chromium: &Path, profile: &Path) -> Client {
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-extensions".into(),
        // Loopback WebRTC: host candidates must not be hidden behind mDNS names.
        "--disable-features=WebRtcHideLocalIpsWithMdns".into(),
        "--allow-loopback-in-peer-connection".into(),
        "--autoplay-policy=no-user-gesture-required".into(),
        "--use-fake-ui-for-media-stream".into(),
        format!("--user-data-dir={}", profile.display()),
        "--window-size=800,600".into(),
    ];
    if std::env::var_os("RTMLIVE_BROWSER_LOG").is_some() {
        args.push("--enable-logging=stderr".into());
        args.push("--v=1".into());
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium.display().to_string(), "args": args }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver_url)
        .await
        .expect("WebDriver session with headless Chromium")
}

async fn wait_for_demo(s: &RunningServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if s.hub.get("live/demo").is_some_and(|st| st.has_keyframe()) {
            return;
        }
        assert!(Instant::now() < deadline, "demo stream has no keyframe");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn frames_at_source_size(state: &Value) -> u64 {
    state["framesBySize"][format!("{WIDTH}x{HEIGHT}")]
        .as_u64()
        .unwrap_or(0)
}

/// Loads the player page and polls its `window.rtmlive` until enough frames were rendered, the
/// page failed, or the time is up; returns the last state seen. Errors instead of panicking so
/// the caller always ends the WebDriver session (and with it Chromium) first.
async fn play(client: &Client, page: &str) -> Result<Value, fantoccini::error::CmdError> {
    client.goto(page).await?;
    let deadline = Instant::now() + PLAY_TIMEOUT;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        last = client
            .execute("return window.rtmlive || null;", vec![])
            .await?;
        if frames_at_source_size(&last) >= MIN_FRAMES || last["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(last)
}

/// A scratch directory removed when dropped (Chromium's profile).
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_the_demo_over_whep() {
    let Some((chromium, driver)) = tools() else {
        return;
    };
    let t0 = Instant::now();
    let server = start(&demo_config()).await.expect("server starts");
    wait_for_demo(&server).await;

    let profile = ScratchDir(std::env::temp_dir().join(format!(
        "rtmlive-chromium-{}-{}",
        std::process::id(),
        free_port()
    )));
    let (chromedriver, driver_url) = start_chromedriver(&driver).await;
    let client = start_browser(&driver_url, &chromium, &profile.0).await;
    let page = format!("http://{}/play/live/demo", server.http_addr);
    let outcome = play(&client, &page).await;
    let elapsed = t0.elapsed();
    let state = outcome.as_ref().cloned().unwrap_or(Value::Null);
    eprintln!(
        "browser state after {elapsed:?}: {}",
        serde_json::to_string_pretty(&state).unwrap_or_default()
    );

    if std::env::var_os("RTMLIVE_BROWSER_LOG").is_some() {
        let sdp = client
            .execute("return window.rtmliveSdp || null;", vec![])
            .await
            .unwrap_or(Value::Null);
        eprintln!(
            "offer:\n{}\nanswer:\n{}",
            sdp["offer"].as_str().unwrap_or("-"),
            sdp["answer"].as_str().unwrap_or("-")
        );
    }
    // Clean up before asserting: the session ends Chromium, then chromedriver goes.
    let _ = client.close().await;
    drop(chromedriver);
    drop(profile);
    server.stop().await;

    if let Err(e) = outcome {
        panic!("WebDriver command failed: {e}");
    }
    assert_eq!(state["error"], Value::Null, "the page reported an error");
    assert_eq!(state["answerStatus"], 201, "WHEP answered the offer");
    let frames = frames_at_source_size(&state);
    assert!(
        frames >= MIN_FRAMES,
        "Chromium rendered {frames} frames at {WIDTH}x{HEIGHT} (sizes: {}), want >= {MIN_FRAMES}",
        state["framesBySize"]
    );
    assert_eq!(state["width"], WIDTH);
    assert_eq!(state["height"], HEIGHT);
}
