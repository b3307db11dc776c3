//! Environment overrides as documented in docs/operations.md ("Environment overrides").

use std::path::Path;
use std::time::Duration;

use rtmlive::config::{Hashing, Location, from_toml_str, load_with_env};

fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const FILE: &str = r#"
[auth]
token_secret = "0123456789abcdef0123"
admin_token = "admin-admin-admin"

[limits]
max_streams = 7
"#;

#[test]
fn overrides_apply_on_top_of_the_file() {
    let loaded = from_toml_str(
        Path::new("edge.toml"),
        FILE,
        env(&[
            ("RTMLIVE_LIMITS__MAX_SESSIONS", "20000"),
            ("RTMLIVE_TIMEOUTS__ICE_CONSENT_MS", "45000"),
            ("RTMLIVE_LISTEN__HTTP__BIND", "0.0.0.0:80"),
            ("RTMLIVE_LISTEN__RTMP__ENABLED", "false"),
            ("RTMLIVE_LOG__FORMAT", "json"),
            ("RTMLIVE_ORIGINS__HEALTH__FAILURE_RATIO", "0.25"),
            ("RTMLIVE_CONFIG", "ignored.toml"),
            ("RTMLIVE_FFMPEG9", "/usr/bin/ffmpeg"),
        ]),
    )
    .unwrap();
    let c = loaded.config;
    assert_eq!(c.limits.max_streams, 7, "file value kept");
    assert_eq!(c.limits.max_sessions, 20000);
    assert_eq!(c.timeouts.ice_consent, Duration::from_secs(45));
    assert_eq!(
        c.listen.http.bind,
        "0.0.0.0:80".parse::<std::net::SocketAddr>().unwrap()
    );
    assert!(!c.listen.rtmp.enabled);
    assert_eq!(c.log.format, rtmlive::config::LogFormat::Json);
    assert_eq!(c.origins.health.failure_ratio, 0.25);
    assert!(!c.auth.open, "file profile");
}

#[test]
fn arrays_and_tables_are_replaced_whole() {
    let loaded = from_toml_str(
        Path::new("edge.toml"),
        FILE,
        env(&[
            (
                "RTMLIVE_ORIGINS__UPSTREAMS",
                r#"[{app="live", urls=["http://o1/{app}/{stream}.flv", "rtmp://o2/{app}/{stream}"], hashing="ordered"}]"#,
            ),
            ("RTMLIVE_AUTH__INGEST_KEYS", r#"{"live/a"="k1", "live/b"="k2"}"#),
            ("RTMLIVE_LISTEN__MEDIA__PUBLIC_ADDRS", r#"["203.0.113.10:8000", "[2001:db8::1]:8000"]"#),
        ]),
    )
    .unwrap();
    let c = loaded.config;
    assert_eq!(c.origins.upstreams.len(), 1);
    assert_eq!(c.origins.upstreams[0].hashing, Hashing::Ordered);
    assert_eq!(c.origins.upstreams[0].urls.len(), 2);
    assert_eq!(c.auth.ingest_keys["live/b"], "k2");
    assert_eq!(c.listen.media.public_addrs.len(), 2);
}

#[test]
fn numeric_looking_secret_stays_a_string() {
    let loaded = load_with_env(
        None,
        env(&[("RTMLIVE_AUTH__TOKEN_SECRET", "12345678901234567890")]),
    )
    .unwrap();
    assert_eq!(loaded.config.auth.token_secret, "12345678901234567890");
}

#[test]
fn no_file_with_env_is_still_the_demo_profile() {
    let loaded = load_with_env(
        None,
        env(&[("RTMLIVE_LISTEN__MEDIA__BIND", "0.0.0.0:9000")]),
    )
    .unwrap();
    assert!(loaded.config.auth.open && loaded.config.demo.enabled);
    assert_eq!(loaded.config.listen.media.bind.port(), 9000);
    assert!(loaded.file.is_none());
}

#[test]
fn warnings_name_their_source() {
    let loaded = load_with_env(None, env(&[("RTMLIVE_AUTH__OPEN", "true")])).unwrap();
    let open = loaded
        .warnings
        .iter()
        .find(|w| w.key.to_string() == "auth.open")
        .unwrap();
    assert_eq!(
        open.location,
        Location::Env {
            var: "RTMLIVE_AUTH__OPEN".into()
        }
    );
    let public = loaded
        .warnings
        .iter()
        .find(|w| w.key.to_string() == "listen.media.public_addrs")
        .unwrap();
    assert_eq!(public.location, Location::Default);
}
