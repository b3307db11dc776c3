//! The demuxer agrees with ffmpeg on every fixture: per stream the same number of packets,
//! the same keyframe flags, DTS and PTS, and (where the demuxer does not add parameter sets)
//! the same bytes, checked with ffmpeg's framecrc Adler-32.
//!
//! Debian's ffmpeg 5.1 reads the H.264 fixtures; HEVC in FLV needs ffmpeg ≥ 6.1, so the
//! static ffmpeg 9 from `imageio-ffmpeg` (or `$RTMLIVE_FFMPEG9`) reads that one. Under
//! `CI=true` a missing ffmpeg fails the test instead of skipping it.

use std::path::{Path, PathBuf};
use std::process::Command;

use rtmlive::media::flv::{DemuxEvent, FlvDemuxer};
use rtmlive::media::{Frame, FrameData};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Returns a usable ffmpeg, or `None` (outside CI) when it is not installed.
fn tool(path: Option<String>, what: &str) -> Option<String> {
    let ok = path.as_ref().is_some_and(|p| {
        Command::new(p)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if ok {
        return path;
    }
    assert!(
        !in_ci(),
        "{what} is required under CI=true (run scripts/setup.sh)"
    );
    eprintln!("skipping: {what} not found");
    None
}

fn debian_ffmpeg() -> Option<String> {
    tool(Some("ffmpeg".to_owned()), "ffmpeg")
}

fn ffmpeg9() -> Option<String> {
    let path = std::env::var("RTMLIVE_FFMPEG9").ok().or_else(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    tool(path, "ffmpeg 9 (imageio-ffmpeg)")
}

/// One framecrc line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Packet {
    stream: usize,
    dts: i64,
    pts: i64,
    size: usize,
    adler: u32,
    key: bool,
}

fn framecrc(ffmpeg: &str, file: &Path) -> Vec<Packet> {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-copyts", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "framecrc", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for tb in text.lines().filter(|l| l.starts_with("#tb")) {
        assert!(
            tb.ends_with("1/1000"),
            "millisecond timebase expected: {tb}"
        );
    }
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            Packet {
                stream: f[0].parse().unwrap(),
                dts: f[1].parse().unwrap(),
                pts: f[2].parse().unwrap(),
                size: f[4].parse().unwrap(),
                adler: u32::from_str_radix(f[5].trim_start_matches("0x"), 16).unwrap(),
                // framecrc prints flags only when they differ from "key".
                key: f.get(6).is_none_or(|flags| *flags != "F=0x0"),
            }
        })
        .collect()
}

/// Adler-32 seeded with 0, as ffmpeg's framecrc computes it.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (0u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    b << 16 | a
}

fn demux(file: &Path) -> Vec<Frame> {
    let mut d = FlvDemuxer::new();
    d.push(&std::fs::read(file).unwrap());
    let mut frames = Vec::new();
    while let Some(ev) = d.poll().unwrap() {
        if let DemuxEvent::Frame(f) = ev {
            frames.push(f);
        }
    }
    d.finish().unwrap();
    frames
}

/// The packet bytes as FLV (and ffmpeg) carry them: NAL units with 4-byte lengths.
fn packet_bytes(f: &Frame) -> Vec<u8> {
    match &f.data {
        FrameData::Audio(a) => a.to_vec(),
        FrameData::Nalus(n) => n
            .iter()
            .flat_map(|nal| {
                (nal.len() as u32)
                    .to_be_bytes()
                    .into_iter()
                    .chain(nal.iter().copied())
            })
            .collect(),
    }
}

fn compare(ffmpeg: &str, name: &str) {
    let path = fixture_path(name);
    let theirs = framecrc(ffmpeg, &path);
    let ours = demux(&path);
    for (stream, video) in [(0usize, true), (1, false)] {
        let t: Vec<&Packet> = theirs.iter().filter(|p| p.stream == stream).collect();
        let o: Vec<&Frame> = ours
            .iter()
            .filter(|f| f.codec.is_video() == video)
            .collect();
        assert_eq!(o.len(), t.len(), "{name} stream {stream}: packet count");
        assert!(!o.is_empty());
        for (i, (f, p)) in o.iter().zip(&t).enumerate() {
            let ctx = format!("{name} stream {stream} packet {i}");
            assert_eq!(f.dts, p.dts, "{ctx}: DTS");
            assert_eq!(f.pts(), p.pts, "{ctx}: PTS");
            assert_eq!(f.is_key() || !video, p.key, "{ctx}: keyframe flag");
            // Keyframes may carry parameter sets the demuxer put in front; others are verbatim.
            if !f.is_key() {
                let bytes = packet_bytes(f);
                assert_eq!(bytes.len(), p.size, "{ctx}: size");
                assert_eq!(adler32(&bytes), p.adler, "{ctx}: adler32");
            }
        }
    }
}

#[test]
fn h264_fixtures_match_ffmpeg() {
    let Some(ff) = debian_ffmpeg() else { return };
    for name in ["h264_aac.flv", "h264_bframes_aac.flv", "demo.flv"] {
        compare(&ff, name);
    }
}

#[test]
fn hevc_enhanced_fixture_matches_ffmpeg9() {
    let Some(ff) = ffmpeg9() else { return };
    compare(&ff, "hevc_enhanced_aac.flv");
}
