//! Muxer round trips: demux a fixture, mux the events, demux again: identical events.

use std::path::PathBuf;

use rtmlive::media::flv::{DemuxEvent, FlvDemuxer};
use rtmlive::media::flv_mux::{FlvMuxer, HevcMode};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn demux(data: &[u8]) -> Vec<DemuxEvent> {
    let mut d = FlvDemuxer::new();
    d.push(data);
    let mut out = Vec::new();
    while let Some(ev) = d.poll().unwrap() {
        out.push(ev);
    }
    d.finish().unwrap();
    out
}

fn mux(events: &[DemuxEvent], hevc: HevcMode) -> Vec<u8> {
    let mut m = FlvMuxer::new(true, true).with_hevc_mode(hevc);
    let mut last_dts = 0;
    for ev in events {
        match ev {
            DemuxEvent::Metadata(md) => m.write_metadata(&md.name, &md.value, last_dts).unwrap(),
            DemuxEvent::VideoConfig(c) => m.write_video_config(c, last_dts).unwrap(),
            DemuxEvent::AudioConfig(c) => m.write_audio_config(c, last_dts).unwrap(),
            DemuxEvent::Frame(f) => {
                last_dts = f.dts;
                m.write_frame(f).unwrap();
            }
        }
    }
    m.take().to_vec()
}

#[test]
fn mux_then_demux_gives_the_same_events() {
    for name in [
        "h264_aac.flv",
        "h264_bframes_aac.flv",
        "hevc_enhanced_aac.flv",
        "demo.flv",
    ] {
        let original = demux(&fixture(name));
        for mode in [HevcMode::Enhanced, HevcMode::Legacy] {
            let again = demux(&mux(&original, mode));
            assert_eq!(again.len(), original.len(), "{name} {mode:?}");
            for (i, (a, b)) in original.iter().zip(&again).enumerate() {
                assert_eq!(a, b, "{name} {mode:?}: event {i}");
            }
        }
    }
}

#[test]
fn hevc_mode_selects_the_signalling() {
    let original = demux(&fixture("hevc_enhanced_aac.flv"));
    let enhanced = mux(&original, HevcMode::Enhanced);
    let legacy = mux(&original, HevcMode::Legacy);
    assert!(enhanced.windows(4).any(|w| w == b"hvc1"));
    assert!(!legacy.windows(4).any(|w| w == b"hvc1"));
}
