//! Bad configurations produce the documented messages (docs/operations.md, "Validation
//! messages"). Each case is a file body (plus environment) and the exact text of the error.

use std::path::Path;

use rtmlive::config::{ConfigError, from_toml_str};

/// Appended to cases that are not about auth, so open mode keeps the auth rules quiet.
const OPEN: &str = "\n[auth]\nopen = true\n";

/// Cases that must see the file exactly as written.
const WITHOUT_OPEN: &[&str] = &[
    "syntax error",
    "no secret without open mode",
    "short secret",
    "public admin API without token",
];

struct Case {
    name: &'static str,
    toml: &'static str,
    env: &'static [(&'static str, &'static str)],
    error: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "syntax error",
        toml: "x = [\n",
        env: &[],
        error: "bad.toml:1:6: unclosed array, expected `]`",
    },
    Case {
        name: "unknown key",
        toml: "[listen.media]\nbnd = \"0.0.0.0:8000\"\n",
        env: &[],
        error: "bad.toml:2:1: listen.media.bnd: unknown field `bnd`, expected `bind` or `public_addrs`",
    },
    Case {
        name: "unknown section",
        toml: "[limit]\nmax_sessions = 1\n",
        env: &[],
        error: "bad.toml:1:2: limit: unknown field `limit`, expected one of `listen`, `timeouts`, `limits`, `auth`, `origins`, `demo`, `log`, `metrics`",
    },
    Case {
        name: "wrong type",
        toml: "[limits]\nmax_sessions = \"many\"\n",
        env: &[],
        error: "bad.toml:2:16: limits.max_sessions: invalid type: string \"many\", expected u32",
    },
    Case {
        name: "negative count",
        toml: "[limits]\nmax_sessions = -1\n",
        env: &[],
        error: "bad.toml:2:16: limits.max_sessions: invalid value: integer `-1`, expected u32",
    },
    Case {
        name: "bad socket address",
        toml: "[listen.http]\nbind = \"localhost:8080\"\n",
        env: &[],
        error: "bad.toml:2:8: listen.http.bind: invalid socket address syntax",
    },
    Case {
        name: "unknown enum value",
        toml: "[[origins.upstreams]]\napp = \"live\"\nurls = [\"http://o/{stream}.flv\"]\nhashing = \"random\"\n",
        env: &[],
        error: "bad.toml:4:11: origins.upstreams[0].hashing: unknown variant `random`, expected `rendezvous` or `ordered`",
    },
    Case {
        name: "port 0",
        toml: "[listen.media]\nbind = \"0.0.0.0:0\"\n",
        env: &[],
        error: "bad.toml:2:8: listen.media.bind: port 0 is not allowed; expected a fixed port 1-65535 (players, proxies and advertised candidates must know it)",
    },
    Case {
        name: "unspecified public address",
        toml: "[listen.media]\npublic_addrs = [\"203.0.113.1:8000\", \"0.0.0.0:8000\"]\n",
        env: &[],
        error: "bad.toml:2:37: listen.media.public_addrs[1]: 0.0.0.0 cannot be advertised; expected an address players can reach (public IP of this host, NAT or relay)",
    },
    Case {
        name: "admin listener overlaps http",
        toml: "[listen.admin]\nbind = \"127.0.0.1:8080\"\n",
        env: &[],
        error: "bad.toml:2:8: listen.admin.bind: 127.0.0.1:8080 overlaps listen.http.bind (0.0.0.0:8080); expected a distinct address or port for each TCP listener (omit listen.admin.bind to serve the admin API on the HTTP listener)",
    },
    Case {
        name: "zero timeout",
        toml: "[timeouts]\nice_consent_ms = 0\n",
        env: &[],
        error: "bad.toml:2:18: timeouts.ice_consent_ms: must be greater than 0; expected a duration in milliseconds > 0",
    },
    Case {
        name: "timeout ordering, later key not written",
        toml: "[timeouts]\ndtls_handshake_ms = 20000\n",
        env: &[],
        error: "bad.toml:2:21: timeouts.session_setup_ms: (15000 ms) is shorter than timeouts.dtls_handshake_ms (20000 ms); expected session_setup_ms >= dtls_handshake_ms (both are measured from the same start)",
    },
    Case {
        name: "origin timeout ordering",
        toml: "[timeouts]\norigin_first_byte_ms = 9000\norigin_first_keyframe_ms = 8000\n",
        env: &[],
        error: "bad.toml:3:28: timeouts.origin_first_keyframe_ms: (8000 ms) is shorter than timeouts.origin_first_byte_ms (9000 ms); expected origin_first_keyframe_ms >= origin_first_byte_ms (both are measured from the same start)",
    },
    Case {
        name: "pending above max sessions",
        toml: "[limits]\nmax_sessions = 100\n",
        env: &[],
        error: "bad.toml:2:16: limits.max_pending_sessions: (4096) exceeds limits.max_sessions (100); expected max_pending_sessions <= max_sessions",
    },
    Case {
        name: "retransmit cache below GOP cache",
        toml: "[limits]\nretransmit_cache_max_bytes = 2097152\n",
        env: &[],
        error: "bad.toml:2:30: limits.retransmit_cache_max_bytes: (2097152) is smaller than limits.gop_cache_max_bytes (33554432); expected retransmit_cache_max_bytes >= gop_cache_max_bytes (no-drop: a whole GOP must be retransmittable)",
    },
    Case {
        name: "tiny GOP cache",
        toml: "[limits]\ngop_cache_max_bytes = 1000\nretransmit_cache_max_bytes = 1000\n",
        env: &[],
        error: "bad.toml:2:23: limits.gop_cache_max_bytes: (1000) is below 1 MiB; expected at least 1048576 bytes",
    },
    Case {
        name: "no secret without open mode",
        toml: "[listen.admin]\nbind = \"127.0.0.1:9090\"\n",
        env: &[],
        error: "bad.toml: auth.token_secret: is empty while auth.open = false; expected a secret of at least 16 bytes, or auth.open = true (demo only)",
    },
    Case {
        name: "short secret",
        toml: "[auth]\nopen = true\ntoken_secret = \"short\"\n",
        env: &[],
        error: "bad.toml:3:16: auth.token_secret: is shorter than 16 bytes; expected at least 16 bytes (e.g. `openssl rand -hex 32`)",
    },
    Case {
        name: "public admin API without token",
        toml: "[auth]\ntoken_secret = \"0123456789abcdef0123\"\n",
        env: &[],
        error: "bad.toml: auth.admin_token: is empty while the admin API listens on 0.0.0.0:8080 (not loopback); expected an admin token, or listen.admin.bind on a loopback address",
    },
    Case {
        name: "ingest key name",
        toml: "[auth.ingest_keys]\n\"studio\" = \"k\"\n",
        env: &[],
        error: "bad.toml:2:12: auth.ingest_keys.studio: is not a stream name; expected app/stream (letters, digits, '_', '-', '.')",
    },
    Case {
        name: "ingest key in the room namespace",
        toml: "[auth.ingest_keys]\n\"room/show\" = \"k\"\n",
        env: &[],
        error: "bad.toml:2:15: auth.ingest_keys.\"room/show\": is in the reserved app `room`; expected another app: room/<name> plays a co-host room (admin API /api/v1/rooms), never a stream",
    },
    Case {
        name: "upstream app in the room namespace",
        toml: "[[origins.upstreams]]\napp = \"room\"\nurls = [\"http://o/{stream}.flv\"]\n",
        env: &[],
        error: "bad.toml:2:7: origins.upstreams[0].app: `room` is reserved; expected another app: room/<name> plays a co-host room (admin API /api/v1/rooms), never a stream",
    },
    Case {
        name: "demo stream in the room namespace",
        toml: "[demo]\nenabled = true\nstream = \"room/demo\"\n",
        env: &[],
        error: "bad.toml:3:10: demo.stream: `room/demo` is in the reserved app `room`; expected another app: room/<name> plays a co-host room (admin API /api/v1/rooms), never a stream",
    },
    Case {
        name: "TLS origin",
        toml: "[[origins.upstreams]]\napp = \"live\"\nurls = [\"https://o/{stream}.flv\"]\n",
        env: &[],
        error: "bad.toml:3:9: origins.upstreams[0].urls[0]: `https://o/{stream}.flv` uses TLS, which origin pulls do not support; expected http://host[:port]/path or rtmp://host[:port]/path with {stream} (and optionally {app})",
    },
    Case {
        name: "origin without stream placeholder",
        toml: "[[origins.upstreams]]\napp = \"live\"\nurls = [\"http://o/live.flv\"]\n",
        env: &[],
        error: "bad.toml:3:9: origins.upstreams[0].urls[0]: `http://o/live.flv` has no {stream} placeholder; expected http://host[:port]/path or rtmp://host[:port]/path with {stream} (and optionally {app})",
    },
    Case {
        name: "duplicate upstream app",
        toml: "[[origins.upstreams]]\napp = \"live\"\nurls = [\"http://a/{stream}\"]\n[[origins.upstreams]]\napp = \"live\"\nurls = [\"http://b/{stream}\"]\n",
        env: &[],
        error: "bad.toml:5:7: origins.upstreams[1].app: `live` duplicates origins.upstreams[0].app; expected one entry per app (list several URLs in one entry)",
    },
    Case {
        name: "empty upstream list",
        toml: "[[origins.upstreams]]\napp = \"*\"\nurls = []\n",
        env: &[],
        error: "bad.toml:3:8: origins.upstreams[0].urls: is empty; expected at least one origin URL",
    },
    Case {
        name: "failure ratio out of range",
        toml: "[origins.health]\nfailure_ratio = 1.5\n",
        env: &[],
        error: "bad.toml:2:17: origins.health.failure_ratio: 1.5 is out of range; expected a ratio in (0, 1]",
    },
    Case {
        name: "missing demo fixture",
        toml: "[demo]\nenabled = true\nfixture = \"no-such.flv\"\n",
        env: &[],
        error: "bad.toml:3:11: demo.fixture: file no-such.flv does not exist; expected a readable FLV file, or no demo.fixture for the built-in default",
    },
    Case {
        name: "bad log level",
        toml: "[log]\nlevel = \"info,=\"\n",
        env: &[],
        error: "bad.toml:2:9: log.level: `info,=` is not a valid filter (invalid filter directive); expected a tracing filter such as `info` or `info,rtmlive::transport=debug`",
    },
    Case {
        name: "several problems are all listed",
        toml: "[listen.media]\nbind = \"0.0.0.0:0\"\n[limits]\nmax_streams = 0\n",
        env: &[],
        error: "bad.toml:2:8: listen.media.bind: port 0 is not allowed; expected a fixed port 1-65535 (players, proxies and advertised candidates must know it)\nbad.toml:4:15: limits.max_streams: must be at least 1; expected an integer >= 1",
    },
    Case {
        name: "env: value of the wrong type",
        toml: "",
        env: &[("RTMLIVE_LIMITS__MAX_SESSIONS", "lots")],
        error: "environment variable RTMLIVE_LIMITS__MAX_SESSIONS: limits.max_sessions: invalid type: string \"lots\", expected u32",
    },
    Case {
        name: "env: unknown key",
        toml: "",
        env: &[("RTMLIVE_LIMITS__MAX_SESSION", "5")],
        error: "environment variable RTMLIVE_LIMITS__MAX_SESSION: limits.max_session: unknown field `max_session`, expected one of `max_sessions`, `max_pending_sessions`, `max_streams`, `max_rooms`, `gop_cache_max_bytes`, `gop_cache_max_duration_ms`, `retransmit_cache_max_bytes`, `viewer_max_lag_ms`, `ingest_jitter_ms`, `http_max_body_bytes`, `udp_socket_buffer_bytes`",
    },
    Case {
        name: "env: scalar used as a section",
        toml: "",
        env: &[("RTMLIVE_LIMITS__MAX_SESSIONS__X", "5")],
        error: "environment variable RTMLIVE_LIMITS__MAX_SESSIONS__X: limits.max_sessions.x: `limits.max_sessions` is not a table",
    },
    Case {
        name: "env: empty segment",
        toml: "",
        env: &[("RTMLIVE_LIMITS____X", "5")],
        error: "environment variable RTMLIVE_LIMITS____X: empty key segment; expected RTMLIVE_<SECTION>__<KEY>",
    },
    Case {
        name: "env: a validation error is blamed on the variable",
        toml: "[listen.media]\nbind = \"0.0.0.0:8000\"\n",
        env: &[("RTMLIVE_LISTEN__MEDIA__BIND", "0.0.0.0:0")],
        error: "environment variable RTMLIVE_LISTEN__MEDIA__BIND: listen.media.bind: port 0 is not allowed; expected a fixed port 1-65535 (players, proxies and advertised candidates must know it)",
    },
];

fn run(case: &Case) -> Result<(), String> {
    let text = if WITHOUT_OPEN.contains(&case.name) {
        case.toml.to_owned()
    } else {
        format!("{}{OPEN}", case.toml)
    };
    let env = case.env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    match from_toml_str(Path::new("bad.toml"), &text, env) {
        Ok(_) => Err("accepted".to_owned()),
        Err(e @ (ConfigError::Parse { .. } | ConfigError::Invalid(_))) => {
            let got = e.to_string();
            if got == case.error { Ok(()) } else { Err(got) }
        }
        Err(e) => Err(format!("unexpected error kind: {e}")),
    }
}

#[test]
fn bad_configs_produce_documented_errors() {
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|c| {
            run(c).err().map(|got| {
                format!(
                    "case `{}`:\n  expected: {}\n  got:      {}",
                    c.name, c.error, got
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_case_name_is_unique() {
    let mut names: Vec<_> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len());
}

#[test]
fn unreadable_file_names_the_path() {
    let err = rtmlive::config::load_with_env(Some(Path::new("/nonexistent/rtmlive.toml")), [])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/rtmlive.toml: cannot read config file: No such file or directory (os error 2)"
    );
}
