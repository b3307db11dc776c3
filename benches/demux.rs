//! FLV demux throughput (MB/s of FLV input) on the fixtures, replicated in memory to ~4 MB so
//! the measurement covers many GOPs. Run: `cargo bench --bench demux`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtmlive::media::flv::{DemuxEvent, FlvDemuxer};
use rtmlive::media::flv_mux::FlvMuxer;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The fixture's events re-muxed back to back with shifted timestamps until `target` bytes.
fn replicate(name: &str, target: usize) -> Vec<u8> {
    let mut d = FlvDemuxer::new();
    d.push(&fixture(name));
    let mut events = Vec::new();
    while let Some(ev) = d.poll().expect("fixture demuxes") {
        events.push(ev);
    }
    let span = events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Frame(f) => Some(f.dts + 40),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut m = FlvMuxer::new(true, true);
    let mut out = Vec::new();
    let mut round = 0i64;
    while out.len() < target {
        for ev in &events {
            match ev {
                DemuxEvent::VideoConfig(c) if round == 0 => m.write_video_config(c, 0).unwrap(),
                DemuxEvent::AudioConfig(c) if round == 0 => m.write_audio_config(c, 0).unwrap(),
                DemuxEvent::Frame(f) => {
                    let mut f = f.clone();
                    f.dts += round * span;
                    m.write_frame(&f).unwrap();
                }
                _ => {}
            }
        }
        out.extend_from_slice(&m.take());
        round += 1;
    }
    out
}

fn demux_all(data: &[u8], chunk: usize) -> usize {
    let mut d = FlvDemuxer::new();
    let mut frames = 0;
    for c in data.chunks(chunk) {
        d.push(c);
        while let Some(ev) = d.poll().expect("valid input") {
            if let DemuxEvent::Frame(f) = ev {
                frames += 1;
                black_box(&f);
            }
        }
    }
    frames
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("demux");
    for name in [
        "h264_aac.flv",
        "h264_bframes_aac.flv",
        "hevc_enhanced_aac.flv",
        "demo.flv",
    ] {
        let data = replicate(name, 4 << 20);
        g.throughput(Throughput::Bytes(data.len() as u64));
        // 16 KiB chunks, as reads from a socket deliver them.
        g.bench_function(format!("{name}/16KiB-chunks"), |b| {
            b.iter(|| demux_all(black_box(&data), 16 * 1024))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
