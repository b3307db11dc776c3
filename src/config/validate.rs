//! Semantic checks the type system cannot express: port 0, overlapping listeners, timeout
//! ordering, secrets missing for the chosen mode, malformed origin URLs.
//!
//! Checks produce [`Finding`]s keyed by [`KeyPath`]; the loader turns the key into a file
//! position or an environment variable name. Every message text here is documented in
//! `docs/operations.md` ("Validation messages") and asserted in `tests/config_errors.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::error::{KeyPath, Severity};
use super::model::Config;

/// A problem found in a [`Config`], before it is given a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub key: KeyPath,
    pub problem: String,
    pub expected: String,
    /// Another key the finding is about (the other listener, the other timeout): the location
    /// shown when `key` itself is not written in the file.
    pub related: Option<KeyPath>,
}

/// Shortest accepted `auth.token_secret`: HMAC-SHA256 keys shorter than this are guessable.
pub const MIN_SECRET_BYTES: usize = 16;
/// Secrets starting with this are the placeholders of `deploy/rtmlive.toml`.
pub const PLACEHOLDER_PREFIX: &str = "CHANGE-ME";
/// Smallest accepted `limits.gop_cache_max_bytes`: one 1080p keyframe alone can exceed 500 kB.
pub const MIN_GOP_CACHE_BYTES: u64 = 1024 * 1024;
/// Smallest accepted `limits.http_max_body_bytes`: a WHEP offer from a browser is ~4-8 kB.
pub const MIN_HTTP_BODY_BYTES: u32 = 4096;
/// Smallest accepted `metrics.stats_queue_capacity`.
pub const MIN_STATS_QUEUE: u32 = 16;

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn error(&mut self, key: KeyPath, problem: impl Into<String>, expected: impl Into<String>) {
        self.push(Severity::Error, key, problem, expected);
    }
    fn warn(&mut self, key: KeyPath, problem: impl Into<String>, expected: impl Into<String>) {
        self.push(Severity::Warning, key, problem, expected);
    }
    fn push(
        &mut self,
        severity: Severity,
        key: KeyPath,
        problem: impl Into<String>,
        expected: impl Into<String>,
    ) {
        self.0.push(Finding {
            severity,
            key,
            problem: problem.into(),
            expected: expected.into(),
            related: None,
        });
    }

    /// Attaches a related key to the last finding.
    fn related(&mut self, key: KeyPath) {
        if let Some(last) = self.0.last_mut() {
            last.related = Some(key);
        }
    }
}

/// All findings for `config`, errors and warnings, in key order of the documentation.
/// `base_dir` resolves a relative `demo.fixture` (the config file's directory).
pub fn check(config: &Config, base_dir: Option<&Path>) -> Vec<Finding> {
    let mut f = Findings::default();
    listeners(config, &mut f);
    timeouts(config, &mut f);
    limits(config, &mut f);
    auth(config, &mut f);
    origins(config, &mut f);
    demo(config, base_dir, &mut f);
    log(config, &mut f);
    if config.metrics.stats_queue_capacity < MIN_STATS_QUEUE {
        f.error(
            KeyPath::dotted("metrics.stats_queue_capacity"),
            format!("{} is too small", config.metrics.stats_queue_capacity),
            format!("at least {MIN_STATS_QUEUE}"),
        );
    }
    f.0
}

fn port_zero(f: &mut Findings, key: KeyPath, addr: SocketAddr) {
    if addr.port() == 0 {
        f.error(
            key,
            "port 0 is not allowed",
            "a fixed port 1-65535 (players, proxies and advertised candidates must know it)",
        );
    }
}

/// Two TCP binds conflict when their ports match and their IPs match or either is a wildcard.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn listeners(c: &Config, f: &mut Findings) {
    let l = &c.listen;
    port_zero(f, KeyPath::dotted("listen.media.bind"), l.media.bind);
    for (i, a) in l.media.public_addrs.iter().enumerate() {
        let key = KeyPath::dotted("listen.media.public_addrs").index(i);
        port_zero(f, key.clone(), *a);
        if a.ip().is_unspecified() {
            f.error(
                key,
                format!("{} cannot be advertised", a.ip()),
                "an address players can reach (public IP of this host, NAT or relay)",
            );
        }
    }
    if l.media.public_addrs.is_empty() && l.media.bind.ip().is_unspecified() {
        f.warn(
            KeyPath::dotted("listen.media.public_addrs"),
            format!(
                "is empty and listen.media.bind is {}: players are told {}",
                l.media.bind.ip(),
                l.media
                    .advertised()
                    .first()
                    .map_or(String::new(), ToString::to_string)
            ),
            "the address players use to reach this host, unless they all run on it",
        );
    }
    port_zero(f, KeyPath::dotted("listen.http.bind"), l.http.bind);
    let mut tcp: Vec<(KeyPath, SocketAddr)> =
        vec![(KeyPath::dotted("listen.http.bind"), l.http.bind)];
    if l.rtmp.enabled {
        port_zero(f, KeyPath::dotted("listen.rtmp.bind"), l.rtmp.bind);
        tcp.push((KeyPath::dotted("listen.rtmp.bind"), l.rtmp.bind));
    }
    if let Some(admin) = l.admin.bind {
        port_zero(f, KeyPath::dotted("listen.admin.bind"), admin);
        tcp.push((KeyPath::dotted("listen.admin.bind"), admin));
    }
    for (i, (key, addr)) in tcp.iter().enumerate() {
        if addr.port() == 0 {
            continue;
        }
        if let Some((other_key, other)) = tcp[..i].iter().find(|(_, o)| overlaps(*o, *addr)) {
            f.error(
                key.clone(),
                format!("{addr} overlaps {other_key} ({other})"),
                "a distinct address or port for each TCP listener (omit listen.admin.bind to serve the admin API on the HTTP listener)",
            );
            f.related(other_key.clone());
        }
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn timeouts(c: &Config, f: &mut Findings) {
    let t = &c.timeouts;
    let positive = [
        ("ice_consent_ms", t.ice_consent),
        ("dtls_handshake_ms", t.dtls_handshake),
        ("session_setup_ms", t.session_setup),
        ("origin_connect_ms", t.origin_connect),
        ("origin_first_byte_ms", t.origin_first_byte),
        ("origin_first_keyframe_ms", t.origin_first_keyframe),
        ("origin_stall_ms", t.origin_stall),
    ];
    for (name, d) in positive {
        if d.is_zero() {
            f.error(
                KeyPath::dotted("timeouts").key(name),
                "must be greater than 0",
                "a duration in milliseconds > 0",
            );
        }
    }
    let ordered = [
        (
            "session_setup_ms",
            t.session_setup,
            "dtls_handshake_ms",
            t.dtls_handshake,
        ),
        (
            "origin_first_byte_ms",
            t.origin_first_byte,
            "origin_connect_ms",
            t.origin_connect,
        ),
        (
            "origin_first_keyframe_ms",
            t.origin_first_keyframe,
            "origin_first_byte_ms",
            t.origin_first_byte,
        ),
    ];
    for (later, later_d, earlier, earlier_d) in ordered {
        if later_d < earlier_d {
            f.error(
                KeyPath::dotted("timeouts").key(later),
                format!(
                    "({} ms) is shorter than timeouts.{earlier} ({} ms)",
                    ms(later_d),
                    ms(earlier_d)
                ),
                format!("{later} >= {earlier} (both are measured from the same start)"),
            );
            f.related(KeyPath::dotted("timeouts").key(earlier));
        }
    }
}

fn at_least_one(f: &mut Findings, key: &str, v: u64) {
    if v == 0 {
        f.error(
            KeyPath::dotted(key),
            "must be at least 1",
            "an integer >= 1",
        );
    }
}

fn limits(c: &Config, f: &mut Findings) {
    let l = &c.limits;
    at_least_one(f, "limits.max_sessions", l.max_sessions.into());
    at_least_one(
        f,
        "limits.max_pending_sessions",
        l.max_pending_sessions.into(),
    );
    at_least_one(f, "limits.max_streams", l.max_streams.into());
    if l.max_pending_sessions > l.max_sessions {
        f.error(
            KeyPath::dotted("limits.max_pending_sessions"),
            format!(
                "({}) exceeds limits.max_sessions ({})",
                l.max_pending_sessions, l.max_sessions
            ),
            "max_pending_sessions <= max_sessions",
        );
        f.related(KeyPath::dotted("limits.max_sessions"));
    }
    if l.gop_cache_max_bytes < MIN_GOP_CACHE_BYTES {
        f.error(
            KeyPath::dotted("limits.gop_cache_max_bytes"),
            format!("({}) is below 1 MiB", l.gop_cache_max_bytes),
            format!("at least {MIN_GOP_CACHE_BYTES} bytes"),
        );
    }
    if l.gop_cache_max_duration.is_zero() {
        f.error(
            KeyPath::dotted("limits.gop_cache_max_duration_ms"),
            "must be greater than 0",
            "a duration in milliseconds > 0",
        );
    }
    if l.retransmit_cache_max_bytes < l.gop_cache_max_bytes {
        f.error(
            KeyPath::dotted("limits.retransmit_cache_max_bytes"),
            format!(
                "({}) is smaller than limits.gop_cache_max_bytes ({})",
                l.retransmit_cache_max_bytes, l.gop_cache_max_bytes
            ),
            "retransmit_cache_max_bytes >= gop_cache_max_bytes (no-drop: a whole GOP must be retransmittable)",
        );
        f.related(KeyPath::dotted("limits.gop_cache_max_bytes"));
    }
    if l.viewer_max_lag.is_some_and(|d| d.is_zero()) {
        f.error(
            KeyPath::dotted("limits.viewer_max_lag_ms"),
            "must be greater than 0",
            "a duration in milliseconds > 0, or no key for pure no-drop",
        );
    }
    if l.http_max_body_bytes < MIN_HTTP_BODY_BYTES {
        f.error(
            KeyPath::dotted("limits.http_max_body_bytes"),
            format!("({}) is too small for an SDP offer", l.http_max_body_bytes),
            format!("at least {MIN_HTTP_BODY_BYTES} bytes"),
        );
    }
}

fn is_stream_name(s: &str) -> bool {
    let mut parts = s.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

const STREAM_NAME: &str = "app/stream (letters, digits, '_', '-', '.')";

/// `room/<name>` plays a co-host room: a stream configured there could never be played.
const ROOM_RESERVED: &str =
    "another app: room/<name> plays a co-host room (admin API /api/v1/rooms), never a stream";

fn is_room_app(app: &str) -> bool {
    app == crate::hub::room::ROOM_APP
}

fn auth(c: &Config, f: &mut Findings) {
    let a = &c.auth;
    if !a.open && a.token_secret.is_empty() {
        f.error(
            KeyPath::dotted("auth.token_secret"),
            "is empty while auth.open = false",
            format!(
                "a secret of at least {MIN_SECRET_BYTES} bytes, or auth.open = true (demo only)"
            ),
        );
        f.related(KeyPath::dotted("auth.open"));
    } else if !a.token_secret.is_empty() && a.token_secret.len() < MIN_SECRET_BYTES {
        f.error(
            KeyPath::dotted("auth.token_secret"),
            format!("is shorter than {MIN_SECRET_BYTES} bytes"),
            format!("at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"),
        );
    }
    let admin = c.listen.admin_addr();
    if a.admin_token.is_empty() && !admin.ip().is_loopback() {
        let key = KeyPath::dotted("auth.admin_token");
        let problem = format!("is empty while the admin API listens on {admin} (not loopback)");
        let expected = "an admin token, or listen.admin.bind on a loopback address";
        if a.open {
            f.warn(key, problem, expected);
        } else {
            f.error(key, problem, expected);
        }
        f.related(if c.listen.admin.bind.is_some() {
            KeyPath::dotted("listen.admin.bind")
        } else {
            KeyPath::dotted("listen.http.bind")
        });
    }
    for (name, key) in &a.ingest_keys {
        let path = KeyPath::dotted("auth.ingest_keys").key(name.clone());
        if !is_stream_name(name) {
            f.error(path, "is not a stream name", STREAM_NAME);
        } else if crate::hub::room::is_room_key(name) {
            f.error(path, "is in the reserved app `room`", ROOM_RESERVED);
        } else if key.is_empty() {
            f.error(path, "is empty", "a non-empty stream key");
        }
    }
    let placeholders = [
        ("auth.token_secret", a.token_secret.as_str()),
        ("auth.admin_token", a.admin_token.as_str()),
    ];
    for (key, value) in placeholders {
        if value.starts_with(PLACEHOLDER_PREFIX) {
            f.warn(
                KeyPath::dotted(key),
                "is still the example placeholder",
                "a random secret (e.g. `openssl rand -hex 32`)",
            );
        }
    }
    if a.open {
        f.warn(
            KeyPath::dotted("auth.open"),
            "is true: anyone can play and publish any stream",
            "auth.open = false with auth.token_secret set, outside demos",
        );
    }
}

/// Checks one origin URL template; returns what is wrong with it.
fn url_problem(url: &str) -> Option<String> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if let Some(r) = url.strip_prefix("rtmp://") {
        r
    } else if url.starts_with("https://") || url.starts_with("rtmps://") {
        return Some(format!(
            "`{url}` uses TLS, which origin pulls do not support"
        ));
    } else {
        return Some(format!("`{url}` has no http:// or rtmp:// scheme"));
    };
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => ("", None),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(port) = port
        && !matches!(port.parse::<u16>(), Ok(p) if p != 0)
    {
        return Some(format!("`{url}` has an invalid port `{port}`"));
    }
    if host.is_empty() || host.contains('{') {
        return Some(format!("`{url}` has no host"));
    }
    if !url.contains("{stream}") {
        return Some(format!("`{url}` has no {{stream}} placeholder"));
    }
    let mut s = url;
    while let Some(start) = s.find('{') {
        let tail = &s[start..];
        let Some(end) = tail.find('}') else {
            return Some(format!("`{url}` has an unclosed `{{`"));
        };
        let name = &tail[1..end];
        if name != "app" && name != "stream" {
            return Some(format!("`{url}` has an unknown placeholder {{{name}}}"));
        }
        s = &tail[end + 1..];
    }
    None
}

const URL_EXPECTED: &str =
    "http://host[:port]/path or rtmp://host[:port]/path with {stream} (and optionally {app})";

fn origins(c: &Config, f: &mut Findings) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, u) in c.origins.upstreams.iter().enumerate() {
        let base = KeyPath::dotted("origins.upstreams").index(i);
        if u.app.is_empty() || u.app.contains('/') || (u.app.contains('*') && u.app != "*") {
            f.error(
                base.clone().key("app"),
                format!("`{}` is not an app name", u.app),
                "an app name without '/', or \"*\" for every app",
            );
        } else if is_room_app(&u.app) {
            f.error(
                base.clone().key("app"),
                format!("`{}` is reserved", u.app),
                ROOM_RESERVED,
            );
        } else if let Some(first) = seen.insert(u.app.as_str(), i) {
            f.error(
                base.clone().key("app"),
                format!("`{}` duplicates origins.upstreams[{first}].app", u.app),
                "one entry per app (list several URLs in one entry)",
            );
        }
        if u.urls.is_empty() {
            f.error(
                base.clone().key("urls"),
                "is empty",
                "at least one origin URL",
            );
        }
        for (j, url) in u.urls.iter().enumerate() {
            if let Some(p) = url_problem(url) {
                f.error(base.clone().key("urls").index(j), p, URL_EXPECTED);
            }
        }
    }
    let h = &c.origins.health;
    if !(h.failure_ratio > 0.0 && h.failure_ratio <= 1.0) {
        f.error(
            KeyPath::dotted("origins.health.failure_ratio"),
            format!("{} is out of range", h.failure_ratio),
            "a ratio in (0, 1]",
        );
    }
    at_least_one(f, "origins.health.min_attempts", h.min_attempts.into());
    for (name, d) in [("window_ms", h.window), ("cooldown_ms", h.cooldown)] {
        if d.is_zero() {
            f.error(
                KeyPath::dotted("origins.health").key(name),
                "must be greater than 0",
                "a duration in milliseconds > 0",
            );
        }
    }
}

fn demo(c: &Config, base_dir: Option<&Path>, f: &mut Findings) {
    let d = &c.demo;
    if !d.enabled {
        return;
    }
    if !is_stream_name(&d.stream) {
        f.error(
            KeyPath::dotted("demo.stream"),
            format!("`{}` is not a stream name", d.stream),
            STREAM_NAME,
        );
    } else if crate::hub::room::is_room_key(&d.stream) {
        f.error(
            KeyPath::dotted("demo.stream"),
            format!("`{}` is in the reserved app `room`", d.stream),
            ROOM_RESERVED,
        );
    }
    if let Some(fixture) = &d.fixture {
        let resolved = match base_dir {
            Some(dir) if fixture.is_relative() => dir.join(fixture),
            _ => fixture.clone(),
        };
        if !resolved.is_file() {
            f.error(
                KeyPath::dotted("demo.fixture"),
                format!("file {} does not exist", resolved.display()),
                "a readable FLV file, or no demo.fixture for the built-in default",
            );
        }
    }
}

fn log(c: &Config, f: &mut Findings) {
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&c.log.level) {
        f.error(
            KeyPath::dotted("log.level"),
            format!("`{}` is not a valid filter ({e})", c.log.level),
            "a tracing filter such as `info` or `info,rtmlive::transport=debug`",
        );
    }
    at_least_one(f, "log.per_packet_limit", c.log.per_packet_limit.into());
    if c.log.per_packet_interval.is_zero() {
        f.error(
            KeyPath::dotted("log.per_packet_interval_ms"),
            "must be greater than 0",
            "a duration in milliseconds > 0",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(c: &Config) -> Vec<String> {
        check(c, None)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| format!("{}: {}", f.key, f.problem))
            .collect()
    }

    #[test]
    fn standalone_default_has_no_errors() {
        assert_eq!(errors(&Config::default()), Vec::<String>::new());
    }

    #[test]
    fn url_templates() {
        assert_eq!(url_problem("http://o1:8080/{app}/{stream}.flv"), None);
        assert_eq!(url_problem("rtmp://[::1]:1935/live/{stream}"), None);
        assert!(url_problem("https://o1/{stream}").unwrap().contains("TLS"));
        assert!(url_problem("ftp://o1/{stream}").unwrap().contains("scheme"));
        assert!(url_problem("http:///{stream}").unwrap().contains("no host"));
        assert!(url_problem("http://o:0/{stream}").unwrap().contains("port"));
        assert!(
            url_problem("http://o/{id}")
                .unwrap()
                .contains("no {stream}")
        );
        assert!(
            url_problem("http://o/{stream}/{x}")
                .unwrap()
                .contains("{x}")
        );
        assert!(
            url_problem("http://o/{stream}/{x")
                .unwrap()
                .contains("unclosed")
        );
    }

    #[test]
    fn overlapping_listeners() {
        assert!(overlaps(
            "0.0.0.0:80".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap()
        ));
        assert!(!overlaps(
            "10.0.0.1:80".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap()
        ));
        assert!(!overlaps(
            "0.0.0.0:80".parse().unwrap(),
            "0.0.0.0:81".parse().unwrap()
        ));
    }

    #[test]
    fn stream_names() {
        assert!(is_stream_name("live/demo"));
        assert!(is_stream_name("a.b/c-d_1"));
        assert!(!is_stream_name("live"));
        assert!(!is_stream_name("live/"));
        assert!(!is_stream_name("a/b/c"));
        assert!(!is_stream_name("a/b c"));
    }
}
