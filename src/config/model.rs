//! The configuration model: one struct per TOML section.
//!
//! Every field has a default, so an empty file (or no file) is a complete configuration. Unknown
//! keys are rejected (`deny_unknown_fields`): a misspelt key silently falling back to a default is
//! the most common way an operator thinks a limit is set when it is not.
//!
//! Two defaults depend on whether a file is used at all: without a file rtmlive is the standalone
//! demo ([`Config::default`]: open mode, demo source on); with a file, `auth.open` and
//! `demo.enabled` default to `false`, because a file means a deployment.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration as ms;
use super::duration::optional as optional_ms;

/// The whole configuration. `Config::default()` is the standalone demo (no file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: ListenConfig,
    pub timeouts: TimeoutConfig,
    pub limits: LimitConfig,
    /// Defaults to the file profile (`open = false`) when the `[auth]` table is absent from a file.
    #[serde(default)]
    pub auth: AuthConfig,
    pub origins: OriginsConfig,
    /// Defaults to the file profile (`enabled = false`) when `[demo]` is absent from a file.
    #[serde(default)]
    pub demo: DemoConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
}

impl Default for Config {
    /// The standalone demo: what `rtmlive` runs with no config file.
    fn default() -> Self {
        Config {
            listen: ListenConfig::default(),
            timeouts: TimeoutConfig::default(),
            limits: LimitConfig::default(),
            auth: AuthConfig {
                open: true,
                ..AuthConfig::default()
            },
            origins: OriginsConfig::default(),
            demo: DemoConfig {
                enabled: true,
                ..DemoConfig::default()
            },
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

const ANY_V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Listening sockets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    pub media: MediaListen,
    pub http: HttpListen,
    pub rtmp: RtmpListen,
    pub admin: AdminListen,
}

/// The one UDP port for miniSDP signaling, STUN, DTLS, SRTP and RTCP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaListen {
    pub bind: SocketAddr,
    /// Addresses advertised to players as ICE candidates (NAT mapping, relay, load balancer).
    /// Empty: see [`MediaListen::advertised`].
    pub public_addrs: Vec<SocketAddr>,
}

impl Default for MediaListen {
    fn default() -> Self {
        MediaListen {
            bind: SocketAddr::new(ANY_V4, 8000),
            public_addrs: Vec::new(),
        }
    }
}

impl MediaListen {
    /// The candidate addresses to put in answers: `public_addrs` if set; otherwise the bind address
    /// if it names a concrete IP; otherwise loopback on the bind port (the local standalone demo).
    pub fn advertised(&self) -> Vec<SocketAddr> {
        if !self.public_addrs.is_empty() {
            return self.public_addrs.clone();
        }
        if self.bind.ip().is_unspecified() {
            let loopback = match self.bind.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            };
            vec![SocketAddr::new(loopback, self.bind.port())]
        } else {
            vec![self.bind]
        }
    }
}

/// HTTP: WHEP, WHIP, HTTP-FLV and (unless `listen.admin.bind` is set) admin API and `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpListen {
    pub bind: SocketAddr,
}

impl Default for HttpListen {
    fn default() -> Self {
        HttpListen {
            bind: SocketAddr::new(ANY_V4, 8080),
        }
    }
}

/// RTMP ingest (publish).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpListen {
    pub enabled: bool,
    pub bind: SocketAddr,
}

impl Default for RtmpListen {
    fn default() -> Self {
        RtmpListen {
            enabled: true,
            bind: SocketAddr::new(ANY_V4, 1935),
        }
    }
}

/// Admin API, `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminListen {
    /// A separate listener (e.g. `127.0.0.1:9090`), or `None` (key absent) to serve the admin
    /// routes on the HTTP listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
}

impl ListenConfig {
    /// Where the admin routes are served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.bind.unwrap_or(self.http.bind)
    }
}

/// Every timeout. Keys end in `_ms` (integer milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutConfig {
    /// No STUN consent check from the player for this long → the session is closed (RFC 7675).
    #[serde(rename = "ice_consent_ms", with = "ms")]
    pub ice_consent: Duration,
    /// First DTLS record → handshake complete.
    #[serde(rename = "dtls_handshake_ms", with = "ms")]
    pub dtls_handshake: Duration,
    /// Answer sent → DTLS complete. A pending session that does not connect in time is freed.
    #[serde(rename = "session_setup_ms", with = "ms")]
    pub session_setup: Duration,
    /// Origin pull start → TCP connected.
    #[serde(rename = "origin_connect_ms", with = "ms")]
    pub origin_connect: Duration,
    /// Origin pull start → first response byte.
    #[serde(rename = "origin_first_byte_ms", with = "ms")]
    pub origin_first_byte: Duration,
    /// Origin pull start → first video keyframe.
    #[serde(rename = "origin_first_keyframe_ms", with = "ms")]
    pub origin_first_keyframe: Duration,
    /// No data from a running origin pull for this long → fail over to the next origin.
    #[serde(rename = "origin_stall_ms", with = "ms")]
    pub origin_stall: Duration,
    /// Keep pulling a stream this long after its last viewer left (fast rejoin, zapping back).
    #[serde(rename = "stream_linger_ms", with = "ms")]
    pub stream_linger: Duration,
    /// SIGTERM → exit at the latest after this long, even if sessions are still playing.
    #[serde(rename = "shutdown_drain_ms", with = "ms")]
    pub shutdown_drain: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            ice_consent: Duration::from_secs(30),
            dtls_handshake: Duration::from_secs(10),
            session_setup: Duration::from_secs(15),
            origin_connect: Duration::from_secs(3),
            origin_first_byte: Duration::from_secs(5),
            origin_first_keyframe: Duration::from_secs(8),
            origin_stall: Duration::from_secs(5),
            stream_linger: Duration::from_secs(10),
            shutdown_drain: Duration::from_secs(30),
        }
    }
}

/// Resource limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitConfig {
    /// Playback sessions (miniSDP + WHEP + HTTP-FLV) in any state.
    pub max_sessions: u32,
    /// Sessions answered but not yet DTLS-connected (bounds the damage of an offer flood).
    pub max_pending_sessions: u32,
    /// Distinct streams (pulled, ingested or demo).
    pub max_streams: u32,
    /// Co-host rooms (admin API `/api/v1/rooms`); 0 turns rooms off.
    pub max_rooms: u32,
    /// Per stream: bytes of frames kept from the last keyframe on.
    pub gop_cache_max_bytes: u64,
    /// Per stream: media duration kept in the GOP cache.
    #[serde(rename = "gop_cache_max_duration_ms", with = "ms")]
    pub gop_cache_max_duration: Duration,
    /// Per stream: bytes of RTP packets kept for retransmission (no-drop: at least one GOP).
    pub retransmit_cache_max_bytes: u64,
    /// A viewer more than this far behind the newest media is moved to the newest keyframe
    /// (a GOP jump). Absent: never jump while the viewer's backlog is still cached (pure no-drop).
    #[serde(
        rename = "viewer_max_lag_ms",
        with = "optional_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub viewer_max_lag: Option<Duration>,
    /// WHIP ingest: how long out-of-order RTP is held while a gap is repaired by NACK.
    #[serde(rename = "ingest_jitter_ms", with = "ms")]
    pub ingest_jitter: Duration,
    /// Largest accepted HTTP request body (WHEP/WHIP SDP offers).
    pub http_max_body_bytes: u32,
    /// SO_RCVBUF / SO_SNDBUF requested for the media UDP socket.
    pub udp_socket_buffer_bytes: u32,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            max_sessions: 10_000,
            max_pending_sessions: 4_096,
            max_streams: 1_000,
            max_rooms: 256,
            gop_cache_max_bytes: 32 * 1024 * 1024,
            gop_cache_max_duration: Duration::from_secs(20),
            retransmit_cache_max_bytes: 48 * 1024 * 1024,
            viewer_max_lag: None,
            ingest_jitter: Duration::from_millis(200),
            http_max_body_bytes: 64 * 1024,
            udp_socket_buffer_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Secrets and access control.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Open mode (demo): playback and ingest need no token or stream key.
    pub open: bool,
    /// HMAC-SHA256 key for play tokens. Required (≥ 16 bytes) unless `open`.
    pub token_secret: String,
    /// Bearer token for `/api/v1/*`. Empty: the admin API is unauthenticated.
    pub admin_token: String,
    /// Ingest (RTMP/WHIP publish) stream keys: `"app/stream" = "key"`.
    pub ingest_keys: BTreeMap<String, String>,
}

impl std::fmt::Debug for AuthConfig {
    // Secrets never reach logs through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("open", &self.open)
            .field("token_secret", &redact(&self.token_secret))
            .field("admin_token", &redact(&self.admin_token))
            .field("ingest_keys", &self.ingest_keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The placeholder printed instead of a secret.
pub const REDACTED: &str = "<redacted>";

pub(crate) fn redact(s: &str) -> &str {
    if s.is_empty() { "" } else { REDACTED }
}

/// Upstream origins to pull streams from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OriginsConfig {
    /// Tried in order: the first entry whose `app` matches (exact name, or `*`) is used.
    pub upstreams: Vec<UpstreamConfig>,
    pub health: OriginHealthConfig,
}

/// Origins for the streams of one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// App name (first path segment of `app/stream`), or `*` for every app.
    pub app: String,
    /// URL templates: `http://host[:port]/...` (HTTP-FLV) or `rtmp://host[:port]/...`, with
    /// `{stream}` and optionally `{app}` placeholders.
    pub urls: Vec<String>,
    #[serde(default)]
    pub hashing: Hashing,
}

/// How a stream picks its origin among `urls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Hashing {
    /// Rendezvous hashing on `app/stream`: every edge pulls a stream from the same origin, and
    /// losing one origin moves only its streams.
    #[default]
    Rendezvous,
    /// Always the first healthy URL in list order (primary/backup).
    Ordered,
}

/// When an origin is considered unhealthy and skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OriginHealthConfig {
    /// Sliding window over which pull outcomes are counted.
    #[serde(rename = "window_ms", with = "ms")]
    pub window: Duration,
    /// Failed / attempted pulls in the window at or above which the origin is marked unhealthy.
    pub failure_ratio: f64,
    /// Attempts needed in the window before the ratio is trusted.
    pub min_attempts: u32,
    /// How long an unhealthy origin is skipped before it is tried again.
    #[serde(rename = "cooldown_ms", with = "ms")]
    pub cooldown: Duration,
}

impl Default for OriginHealthConfig {
    fn default() -> Self {
        OriginHealthConfig {
            window: Duration::from_secs(30),
            failure_ratio: 0.5,
            min_attempts: 3,
            cooldown: Duration::from_secs(15),
        }
    }
}

/// The built-in demo source: a file looped as a live stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    pub enabled: bool,
    /// FLV file to loop. Relative paths are resolved against the config file's directory.
    /// Absent: the demo source's built-in default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixture: Option<PathBuf>,
    /// Stream key the demo is published under (`app/stream`).
    pub stream: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            enabled: false,
            fixture: None,
            stream: "live/demo".to_owned(),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `info,rtmlive::transport=debug`.
    pub level: String,
    /// Per-packet problems: at most this many messages per kind per interval.
    pub per_packet_limit: u32,
    #[serde(rename = "per_packet_interval_ms", with = "ms")]
    pub per_packet_interval: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".to_owned(),
            per_packet_limit: 10,
            per_packet_interval: Duration::from_secs(10),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Statistics plumbing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Capacity of the bounded queue from media code to the stats consumer; samples beyond it
    /// are dropped and counted (`rtmlive_stats_queue_dropped_total`).
    pub stats_queue_capacity: u32,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            stats_queue_capacity: 8_192,
        }
    }
}

impl Config {
    /// A copy with every secret replaced by [`REDACTED`], for printing.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        c.auth.token_secret = redact(&c.auth.token_secret).to_owned();
        c.auth.admin_token = redact(&c.auth.admin_token).to_owned();
        for v in c.auth.ingest_keys.values_mut() {
            *v = redact(v).to_owned();
        }
        c
    }

    /// The configuration as TOML (secrets included: use [`Config::redacted`] first to print).
    pub fn to_toml_string(&self) -> String {
        // Serialization of this model cannot fail: no maps with non-string keys, no None inside
        // arrays. A failure would be a programming error caught by the round-trip unit test.
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot serialize config: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_through_toml() {
        let c = Config::default();
        let text = c.to_toml_string();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn empty_file_uses_deployment_profile() {
        let c: Config = toml::from_str("").unwrap();
        assert!(!c.auth.open);
        assert!(!c.demo.enabled);
        assert_eq!(c.listen, Config::default().listen);
    }

    #[test]
    fn advertised_addresses() {
        let mut m = MediaListen::default();
        assert_eq!(
            m.advertised(),
            vec!["127.0.0.1:8000".parse::<std::net::SocketAddr>().unwrap()]
        );
        m.bind = "192.0.2.1:9000".parse().unwrap();
        assert_eq!(m.advertised(), vec![m.bind]);
        m.public_addrs = vec!["203.0.113.5:443".parse().unwrap()];
        assert_eq!(m.advertised(), m.public_addrs);
    }

    #[test]
    fn debug_and_redacted_hide_secrets() {
        let mut c = Config::default();
        c.auth.token_secret = "supersecretsupersecret".into();
        c.auth.ingest_keys.insert("live/a".into(), "k3y".into());
        assert!(!format!("{c:?}").contains("supersecret"));
        let text = c.redacted().to_toml_string();
        assert!(
            !text.contains("supersecret") && !text.contains("k3y"),
            "{text}"
        );
    }
}
