//! End-to-end FLV demuxer tests on the committed fixtures (no external tools needed).

use std::path::PathBuf;

use bytes::Bytes;
use rtmlive::media::flv::{DemuxEvent, FlvDemuxer, FlvError, TAG_VIDEO};
use rtmlive::media::{AudioConfig, Codec, Frame, FrameData, FrameKind, VideoConfig};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const FIXTURES: [&str; 4] = [
    "h264_aac.flv",
    "h264_bframes_aac.flv",
    "hevc_enhanced_aac.flv",
    "demo.flv",
];

/// Demuxes `data` pushed in chunks of `chunk` bytes; panics on any error.
fn demux(data: &[u8], chunk: usize) -> Vec<DemuxEvent> {
    let mut d = FlvDemuxer::new();
    let mut out = Vec::new();
    for c in data.chunks(chunk) {
        d.push(c);
        while let Some(ev) = d.poll().unwrap_or_else(|e| panic!("demux error: {e}")) {
            out.push(ev);
        }
    }
    d.finish().expect("clean end of stream");
    out
}

/// The first video configuration among `events`.
fn video_config(events: &[DemuxEvent]) -> &VideoConfig {
    events
        .iter()
        .find_map(|e| match e {
            DemuxEvent::VideoConfig(v) => Some(v),
            _ => None,
        })
        .unwrap()
}

/// The first audio configuration among `events`.
fn audio_config(events: &[DemuxEvent]) -> &AudioConfig {
    events
        .iter()
        .find_map(|e| match e {
            DemuxEvent::AudioConfig(a) => Some(a),
            _ => None,
        })
        .unwrap()
}

fn frames(events: &[DemuxEvent], video: bool) -> Vec<&Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Frame(f) if f.codec.is_video() == video => Some(f),
            _ => None,
        })
        .collect()
}

#[test]
fn every_fixture_demuxes_with_configs_first() {
    for name in FIXTURES {
        let ev = demux(&fixture(name), 64 * 1024);
        assert!(
            matches!(&ev[0], DemuxEvent::Metadata(m) if m.name == "onMetaData"),
            "{name}"
        );
        let vconf = ev
            .iter()
            .position(|e| matches!(e, DemuxEvent::VideoConfig(_)))
            .unwrap();
        let aconf = ev
            .iter()
            .position(|e| matches!(e, DemuxEvent::AudioConfig(_)))
            .unwrap();
        let first_v = ev
            .iter()
            .position(|e| matches!(e, DemuxEvent::Frame(f) if f.codec.is_video()))
            .unwrap();
        let first_a = ev
            .iter()
            .position(|e| matches!(e, DemuxEvent::Frame(f) if !f.codec.is_video()))
            .unwrap();
        assert!(
            vconf < first_v && aconf < first_a,
            "{name}: configs precede frames"
        );
        let v = frames(&ev, true);
        assert!(v[0].is_key(), "{name}: starts on a keyframe");
        for f in &v {
            // Every keyframe is self-contained: parameter sets first.
            if f.is_key() {
                let FrameData::Nalus(n) = &f.data else {
                    panic!("video frame without NALs")
                };
                let first = n[0][0];
                match f.codec {
                    Codec::H264 => assert_eq!(first & 0x1f, 7, "{name}: SPS first"),
                    _ => assert_eq!((first >> 1) & 0x3f, 32, "{name}: VPS first"),
                }
            }
        }
        for pair in v.windows(2) {
            assert!(pair[1].dts >= pair[0].dts, "{name}: video DTS monotonic");
        }
        for f in frames(&ev, false) {
            assert_eq!(f.kind, FrameKind::Audio);
            assert!(matches!(&f.data, FrameData::Audio(a) if !a.is_empty()));
        }
    }
}

#[test]
fn configs_describe_the_fixtures() {
    let ev = demux(&fixture("hevc_enhanced_aac.flv"), 4096);
    let v = video_config(&ev);
    assert_eq!(
        (v.codec, v.width, v.height, v.profile, v.level),
        (Codec::H265, 320, 240, 1, 60)
    );
    assert_eq!(
        v.parameter_sets.len(),
        3,
        "VPS, SPS, PPS (hvcC's SEI is not a parameter set)"
    );
    let a = audio_config(&ev);
    assert_eq!((a.object_type, a.sample_rate, a.channels), (2, 44100, 2));
    let ev = demux(&fixture("demo.flv"), 4096);
    let v = video_config(&ev);
    assert_eq!(
        (v.codec, v.width, v.height, v.profile),
        (Codec::H264, 640, 360, 77)
    );
}

#[test]
fn one_byte_chunks_give_identical_events() {
    for name in FIXTURES {
        let data = fixture(name);
        assert_eq!(demux(&data, 1), demux(&data, data.len()), "{name}");
        assert_eq!(demux(&data, 7), demux(&data, data.len()), "{name}");
    }
}

#[test]
fn bframe_fixtures_have_b_frames_in_reordered_presentation() {
    for name in ["h264_bframes_aac.flv", "hevc_enhanced_aac.flv"] {
        let ev = demux(&fixture(name), 4096);
        let v = frames(&ev, true);
        let b = v.iter().filter(|f| f.kind == FrameKind::B).count();
        assert!(b > 0, "{name}: has B-frames");
        let pts: Vec<i64> = v.iter().map(|f| f.pts()).collect();
        let mut sorted = pts.clone();
        sorted.sort_unstable();
        assert_ne!(
            pts, sorted,
            "{name}: presentation order differs from decode order"
        );
    }
    let ev = demux(&fixture("h264_aac.flv"), 4096);
    assert!(frames(&ev, true).iter().all(|f| f.kind != FrameKind::B));
}

/// Rewrites Enhanced FLV `hvc1` video tags into legacy codec id 12 tags (see
/// tests/fixtures/README.md): payloads are untouched, only the tag header changes.
pub fn enhanced_to_legacy(data: &[u8]) -> Vec<u8> {
    let mut out = data[..13].to_vec();
    let mut pos = 13;
    while pos + 11 <= data.len() {
        let size = usize::from(data[pos + 1]) << 16
            | usize::from(data[pos + 2]) << 8
            | usize::from(data[pos + 3]);
        let header = &data[pos..pos + 11];
        let body = &data[pos + 11..pos + 11 + size];
        pos += 11 + size + 4;
        let new_body: Vec<u8> = if header[0] == TAG_VIDEO && body[0] & 0x80 != 0 {
            let frame_type = (body[0] >> 4) & 7;
            let packet = body[0] & 0x0f;
            assert_eq!(&body[1..5], b"hvc1");
            let lead = frame_type << 4 | 12;
            match packet {
                0 => [&[lead, 0, 0, 0, 0][..], &body[5..]].concat(),
                1 => [&[lead, 1][..], &body[5..]].concat(),
                3 => [&[lead, 1, 0, 0, 0][..], &body[5..]].concat(),
                2 => vec![lead, 2, 0, 0, 0],
                4 => continue, // Metadata has no legacy form
                p => panic!("unexpected packet type {p}"),
            }
        } else {
            body.to_vec()
        };
        let len = new_body.len();
        out.push(header[0]);
        out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
        out.extend_from_slice(&header[4..11]);
        out.extend_from_slice(&new_body);
        out.extend_from_slice(&((len + 11) as u32).to_be_bytes());
    }
    out
}

#[test]
fn legacy_codec_id_12_hevc_matches_enhanced() {
    let enhanced = fixture("hevc_enhanced_aac.flv");
    let legacy = enhanced_to_legacy(&enhanced);
    assert!(legacy.windows(4).all(|w| w != b"hvc1"), "no FourCC left");
    let not_meta = |e: &DemuxEvent| !matches!(e, DemuxEvent::Metadata(m) if m.name == "colorInfo");
    let a: Vec<DemuxEvent> = demux(&enhanced, 4096)
        .into_iter()
        .filter(not_meta)
        .collect();
    let b = demux(&legacy, 4096);
    assert_eq!(a, b);
}

#[test]
fn enhanced_metadata_packet_is_reported() {
    let ev = demux(&fixture("hevc_enhanced_aac.flv"), 4096);
    assert!(ev.iter().any(
        |e| matches!(e, DemuxEvent::Metadata(m) if m.name == "colorInfo" && m.value.is_object())
    ));
}

#[test]
fn nal_units_are_zero_copy_slices_of_the_tag() {
    let data = fixture("h264_aac.flv");
    let mut d = FlvDemuxer::new();
    d.push(&data);
    let mut ptrs = Vec::new();
    while let Some(ev) = d.poll().unwrap() {
        if let DemuxEvent::Frame(Frame {
            data: FrameData::Nalus(n),
            kind: FrameKind::Inter,
            ..
        }) = ev
        {
            ptrs.extend(n.iter().map(|b: &Bytes| b.as_ptr() as usize));
        }
    }
    assert!(!ptrs.is_empty());
}

#[test]
fn truncation_is_reported_not_panicked() {
    let data = fixture("h264_aac.flv");
    for cut in [0, 5, 12, 20, 400, data.len() - 1] {
        let mut d = FlvDemuxer::new();
        d.push(&data[..cut]);
        while let Ok(Some(_)) = d.poll() {}
        if cut == 0 {
            assert_eq!(d.finish(), Err(FlvError::Truncated(0)));
        } else {
            assert!(
                matches!(d.finish(), Err(FlvError::Truncated(_))),
                "cut at {cut}"
            );
        }
    }
}
