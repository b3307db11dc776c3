//! Shared helpers of the ingest/origin end-to-end tests: finding ffmpeg, fixtures, free ports.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Path of a committed fixture.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn missing(what: &str) -> Option<PathBuf> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is required under CI=true but was not found");
    }
    eprintln!("skipping: {what} not found");
    None
}

fn works(path: &PathBuf) -> bool {
    Command::new(path)
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Debian's ffmpeg (5.1) from PATH.
pub fn ffmpeg() -> Option<PathBuf> {
    let p = PathBuf::from("ffmpeg");
    if works(&p) {
        Some(p)
    } else {
        missing("ffmpeg")
    }
}

/// The static ffmpeg 9 (HEVC in Enhanced FLV/RTMP): `RTMLIVE_FFMPEG9` or imageio-ffmpeg's.
pub fn ffmpeg9() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("RTMLIVE_FFMPEG9") {
        let p = PathBuf::from(p);
        if works(&p) {
            return Some(p);
        }
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
        ])
        .output();
    if let Ok(o) = out {
        let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if o.status.success() && works(&p) {
            return Some(p);
        }
    }
    missing("ffmpeg 9 (RTMLIVE_FFMPEG9 or imageio-ffmpeg)")
}

/// Number of video packets ffprobe/ffmpeg counts in `file` (decode order, all frames).
pub fn count_video_packets(ffmpeg: &PathBuf, file: &PathBuf) -> usize {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-i"])
        .arg(file)
        .args(["-map", "0:v", "-c", "copy", "-f", "framecrc", "-"])
        .output()
        .expect("run ffmpeg");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count()
}

/// An unused loopback TCP port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtmlive::media::{DemuxEvent, Frame};
use rtmlive::origin::{MediaSink, PullTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a [`TestOrigin`] serves its FLV body.
#[derive(Debug, Clone, Default)]
pub struct OriginOpts {
    /// `Transfer-Encoding: chunked` instead of read-to-close.
    pub chunked: bool,
    /// Pace the body at this rate (live-like); unpaced when `None`.
    pub bytes_per_sec: Option<u64>,
    /// Drop the connection abruptly after this many body bytes (a dying origin).
    pub kill_after: Option<usize>,
    /// Answer `302 Found` with this `Location` instead of the body.
    pub redirect_to: Option<String>,
}

/// A real HTTP/1.1 server on 127.0.0.1 serving one FLV body to every GET, counting connections.
pub struct TestOrigin {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestOrigin {
    pub async fn spawn(body: Vec<u8>, opts: OriginOpts) -> TestOrigin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let body = Arc::new(body);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                conns.spawn(serve_one(sock, body.clone(), opts.clone()));
            }
        });
        TestOrigin {
            addr,
            connections,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops accepting and drops every open connection.
    pub fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for TestOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(mut sock: tokio::net::TcpStream, body: Arc<Vec<u8>>, opts: OriginOpts) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    if let Some(loc) = &opts.redirect_to {
        let _ = sock
            .write_all(
                format!("HTTP/1.1 302 Found\r\nLocation: {loc}\r\nContent-Length: 0\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        return;
    }
    let head = if opts.chunked {
        "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n\r\n"
    } else {
        "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nConnection: close\r\n\r\n"
    };
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let limit = opts.kill_after.unwrap_or(body.len()).min(body.len());
    let step = 4096;
    let mut sent = 0;
    while sent < limit {
        let n = step.min(limit - sent);
        let piece = &body[sent..sent + n];
        let r = if opts.chunked {
            let mut c = format!("{n:x}\r\n").into_bytes();
            c.extend_from_slice(piece);
            c.extend_from_slice(b"\r\n");
            sock.write_all(&c).await
        } else {
            sock.write_all(piece).await
        };
        if r.is_err() {
            return;
        }
        sent += n;
        if let Some(bps) = opts.bytes_per_sec {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / bps as f64)).await;
        }
    }
    if opts.kill_after.is_some() {
        return; // abrupt: no terminating chunk
    }
    if opts.chunked {
        let _ = sock.write_all(b"0\r\n\r\n").await;
    }
}

/// A sink that records everything.
#[derive(Default)]
pub struct Collect {
    pub events: Mutex<Vec<DemuxEvent>>,
    pub gaps: AtomicUsize,
    pub ended: AtomicBool,
    /// Index into `events` at which each gap was signalled.
    pub gap_at: Mutex<Vec<usize>>,
}

impl Collect {
    pub fn frames(&self) -> Vec<Frame> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn video_frames(&self) -> Vec<Frame> {
        self.frames()
            .into_iter()
            .filter(|f| f.codec.is_video())
            .collect()
    }
}

impl MediaSink for Collect {
    fn on_event(&self, ev: DemuxEvent) {
        self.events.lock().unwrap().push(ev);
    }
    fn on_gap(&self) {
        self.gaps.fetch_add(1, Ordering::SeqCst);
        let n = self.events.lock().unwrap().len();
        self.gap_at.lock().unwrap().push(n);
    }
    fn on_end(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }
}

/// Hands out (and remembers) one [`Collect`] per stream key.
#[derive(Default)]
pub struct CollectTarget {
    pub sinks: Mutex<HashMap<String, Arc<Collect>>>,
    pub opened: AtomicUsize,
}

impl CollectTarget {
    pub fn get(&self, key: &str) -> Option<Arc<Collect>> {
        self.sinks.lock().unwrap().get(key).cloned()
    }
}

impl PullTarget for CollectTarget {
    fn open(&self, key: &str) -> Arc<dyn MediaSink> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let c = Arc::new(Collect::default());
        self.sinks.lock().unwrap().insert(key.to_owned(), c.clone());
        c
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}
