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
