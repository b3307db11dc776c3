//! The `rtmlive` binary's shutdown (issue 7), signals and all: SIGTERM starts the drain
//! (`/readyz` answers 503) while an HTTP-FLV viewer keeps receiving its stream; the process
//! ends that viewer and exits 0 at the drain deadline, or at once on a second signal.
//! (What WebRTC players are told during the drain, on the same `RunningServer::drain`, is in
//! `player-test/tests/drain_e2e.rs`.)

mod ingest_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ingest_support::free_port;

/// The binary on loopback ports, killed when the test ends however it ends.
struct Server {
    child: Child,
    http: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the standalone demo with a `drain_ms` drain deadline; returns when it is ready.
    fn start(drain_ms: u64) -> Self {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtmlive"));
        // The tests must not see overrides from the developer's shell.
        for (k, _) in std::env::vars() {
            if k.starts_with("RTMLIVE_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .env(
                "RTMLIVE_LISTEN__MEDIA__BIND",
                format!("127.0.0.1:{}", free_port()),
            )
            .env("RTMLIVE_LISTEN__HTTP__BIND", http.to_string())
            .env("RTMLIVE_LISTEN__RTMP__ENABLED", "false")
            .env("RTMLIVE_TIMEOUTS__SHUTDOWN_DRAIN_MS", drain_ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rtmlive starts");
        let server = Server { child, http };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.status("/readyz") != Some(200) {
            assert!(Instant::now() < deadline, "the server never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Status of a `GET`, or `None` if nothing answers.
    fn status(&self, path: &str) -> Option<u16> {
        let mut s = TcpStream::connect_timeout(&self.http, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    }

    /// An HTTP-FLV viewer of the demo stream that has received its first 16 KiB.
    fn flv_viewer(&self) -> TcpStream {
        let mut s = TcpStream::connect(self.http).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET /live/demo.flv HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut got = 0;
        let mut buf = [0u8; 4096];
        while got < 16 * 1024 {
            let n = s.read(&mut buf).expect("FLV bytes");
            assert!(n > 0, "the FLV response ended early");
            got += n;
        }
        s
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits up to `within` for the process to exit.
    fn exit_within(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads `viewer` to its end; the bytes read and when the end came.
fn read_to_end(mut viewer: TcpStream) -> (usize, Instant) {
    let mut got = 0;
    let mut buf = [0u8; 4096];
    loop {
        match viewer.read(&mut buf) {
            Ok(0) | Err(_) => return (got, Instant::now()),
            Ok(n) => got += n,
        }
    }
}

#[test]
fn sigterm_drains_until_the_deadline_while_the_viewer_keeps_its_stream() {
    let drain = Duration::from_millis(2000);
    let mut server = Server::start(drain.as_millis() as u64);
    let viewer = server.flv_viewer();
    let term = Instant::now();
    server.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(1);
    while server.status("/readyz") != Some(503) {
        assert!(Instant::now() < deadline, "/readyz did not turn 503");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.status("/healthz"), Some(200), "still serving");
    let (bytes, ended) = read_to_end(viewer);
    let held = ended - term;
    // The demo stream is ~1 Mbit/s: the viewer got its stream through the drain.
    assert!(bytes > 64 * 1024, "{bytes} bytes during the drain");
    assert!(
        held >= drain - Duration::from_millis(200) && held < drain + Duration::from_secs(2),
        "the viewer was held {held:?} for a {drain:?} drain"
    );
    let status = server.exit_within(Duration::from_secs(3));
    assert!(status.success(), "{status}");
}

#[test]
fn a_second_signal_ends_the_drain_at_once() {
    let mut server = Server::start(30_000);
    let viewer = server.flv_viewer();
    server.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(1);
    while server.status("/readyz") != Some(503) {
        assert!(Instant::now() < deadline, "/readyz did not turn 503");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = Instant::now();
    server.signal("INT");
    let status = server.exit_within(Duration::from_secs(3));
    assert!(status.success(), "{status}");
    let (_, ended) = read_to_end(viewer);
    assert!(
        ended - second < Duration::from_secs(3),
        "the viewer was ended with the process, not at the 30 s deadline"
    );
}
