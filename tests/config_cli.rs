//! The `rtmlive` binary's configuration surface: the shipped example passes `--check-config`,
//! bad files fail with exit code 2 and a located message, the environment overrides the file,
//! and `--print-config` never prints secrets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rtmlive(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtmlive"));
    cmd.args(args);
    // The tests must not see overrides from the developer's shell.
    for (k, _) in std::env::vars() {
        if k.starts_with("RTMLIVE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run rtmlive")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rtmlive.toml")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn shipped_example_passes_check_config() {
    let ex = example();
    let out = rtmlive(&["--config", ex.to_str().unwrap(), "--check-config"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.ends_with(&format!("configuration OK: {}\n", ex.display())),
        "{stdout}"
    );
    // Only the placeholder warnings: the example is otherwise a clean production config.
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 2, "{stdout}");
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("is still the example placeholder"))
    );
}

#[test]
fn no_file_is_the_standalone_demo() {
    let out = rtmlive(&["--print-config"], &[]);
    assert!(out.status.success());
    let cfg: toml::Table = toml::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(cfg["demo"]["enabled"].as_bool(), Some(true));
    assert_eq!(cfg["auth"]["open"].as_bool(), Some(true));
    assert_eq!(
        cfg["listen"]["media"]["bind"].as_str(),
        Some("0.0.0.0:8000")
    );
    assert_eq!(cfg["listen"]["http"]["bind"].as_str(), Some("0.0.0.0:8080"));
    assert_eq!(cfg["listen"]["rtmp"]["bind"].as_str(), Some("0.0.0.0:1935"));
}

#[test]
fn bad_file_exits_2_with_located_message() {
    let dir = std::env::temp_dir().join(format!("rtmlive-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[auth]\nopen = true\n[listen.media]\nbind = \"0.0.0.0:0\"\n",
    )
    .unwrap();
    let out = rtmlive(&["-c", bad.to_str().unwrap(), "--check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}:4:8: listen.media.bind: port 0 is not allowed; expected a fixed port 1-65535 (players, proxies and advertised candidates must know it)\n",
            bad.display()
        )
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn config_path_from_environment() {
    let ex = example();
    let out = rtmlive(
        &["--check-config"],
        &[("RTMLIVE_CONFIG", ex.to_str().unwrap())],
    );
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(&format!("configuration OK: {}", ex.display())));
}

#[test]
fn environment_overrides_the_file_and_secrets_stay_hidden() {
    let ex = example();
    let out = rtmlive(
        &[
            "-c",
            ex.to_str().unwrap(),
            "--print-config",
            "--log-level",
            "debug",
        ],
        &[
            ("RTMLIVE_LIMITS__MAX_SESSIONS", "20000"),
            (
                "RTMLIVE_LISTEN__MEDIA__PUBLIC_ADDRS",
                "[\"198.51.100.7:8000\"]",
            ),
            ("RTMLIVE_AUTH__TOKEN_SECRET", "12345678901234567"),
            ("RTMLIVE_AUTH__ADMIN_TOKEN", "env-admin-token-value"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let cfg: toml::Table = toml::from_str(&stdout).unwrap();
    assert_eq!(cfg["limits"]["max_sessions"].as_integer(), Some(20000));
    assert_eq!(
        cfg["listen"]["media"]["public_addrs"][0].as_str(),
        Some("198.51.100.7:8000")
    );
    assert_eq!(cfg["log"]["level"].as_str(), Some("debug"));
    assert_eq!(cfg["auth"]["token_secret"].as_str(), Some("<redacted>"));
    assert!(!stdout.contains("12345678901234567") && !stdout.contains("env-admin-token-value"));
    assert!(
        !stdout.contains("CHANGE-ME"),
        "ingest keys must be redacted too"
    );
}

#[test]
fn invalid_cli_log_level_is_a_config_error() {
    let out = rtmlive(&["--check-config", "--log-level", "info,="], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("--log-level: `info,=` is not a valid filter"));
}

#[test]
fn version_flag() {
    let out = rtmlive(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("rtmlive {}\n", env!("CARGO_PKG_VERSION"))
    );
}
