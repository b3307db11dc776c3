//! Helpers shared by the end-to-end tests that run the real server in-process: configs on
//! loopback, waiting for the demo stream, plain HTTP, and `/metrics` scrapes.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use player_test::{PlayOptions, SessionReport};
use rtmlive::config::Config;
use rtmlive::server::RunningServer;

/// The standalone defaults, every listener on an ephemeral loopback port.
pub fn base_config() -> Config {
    let mut c = rtmlive::config::load_with_env(None, Vec::<(String, String)>::new())
        .expect("standalone defaults are valid")
        .config;
    let lo = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    c.listen.media.bind = lo(0);
    c.listen.http.bind = lo(0);
    c.listen.rtmp.bind = lo(0);
    c
}

pub async fn wait_for_demo(s: &RunningServer) {
    for _ in 0..300 {
        if s.hub.get("live/demo").is_some_and(|st| st.has_keyframe()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the demo stream never got a keyframe");
}

/// Plays on a blocking thread (player-test runs its own runtime).
pub async fn play(o: PlayOptions) -> SessionReport {
    tokio::task::spawn_blocking(move || player_test::play(o))
        .await
        .expect("player thread")
}

pub async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    http_body(addr, method, path, &[], b"").await
}

/// A request with a JSON body.
pub async fn http_json(addr: SocketAddr, method: &str, path: &str, json: &str) -> (u16, String) {
    http_body(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        json.as_bytes(),
    )
    .await
}

pub async fn http_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let resp = player_test::http::request(&addr.to_string(), method, path, headers, body)
        .await
        .expect("HTTP request");
    let (head, body) = resp.body(Duration::from_secs(5)).await.expect("body");
    (head.status, String::from_utf8_lossy(&body).into_owned())
}

/// `/metrics` as `sample → value` (`name{labels}` exactly as exposed).
#[derive(Debug, Clone, Default)]
pub struct Scrape(pub HashMap<String, f64>);

impl Scrape {
    pub async fn take(addr: SocketAddr) -> Scrape {
        let (status, text) = http(addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        Scrape(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .filter_map(|l| {
                    let (k, v) = l.rsplit_once(' ')?;
                    Some((k.to_owned(), v.parse().ok()?))
                })
                .collect(),
        )
    }

    pub fn get(&self, sample: &str) -> f64 {
        self.0.get(sample).copied().unwrap_or(0.0)
    }
}

/// Asserts that each sample grew from `before` to `after`.
pub fn assert_grew(before: &Scrape, after: &Scrape, what: &str, samples: &[&str]) {
    for s in samples {
        assert!(
            after.get(s) > before.get(s),
            "{what}: {s} did not grow ({} → {})",
            before.get(s),
            after.get(s)
        );
    }
}

/// Polls until `f(scrape)` holds (or panics after `within`).
pub async fn scrape_until(
    addr: SocketAddr,
    within: Duration,
    what: &str,
    f: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + within;
    loop {
        let s = Scrape::take(addr).await;
        if f(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: not reached; last {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
