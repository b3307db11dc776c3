//! Per-packet cost of the hub's fan-out: one frame pushed, then every subscriber polls it.
//!
//! Throughput is reported in elements = packets x subscribers, so "time per element" is the
//! cost per subscriber per packet. The GOP size (25 vs 250 frames per GOP: 1 s vs 10 s of
//! cached media) is varied to show that cost does not depend on it: a subscriber is a cursor,
//! and nothing in the push or poll path walks the cache.
//!
//! Run: `cargo bench --bench fanout` (add `-- --quick` for a short run).

#[path = "../tests/hub_support/mod.rs"]
mod hub_support;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hub_support::Source;
use rtmlive::hub::{HubConfig, Stream, Subscription};
use rtmlive::media::TrackKind;
use rtmlive::rtp::MediaPacket;

/// 2 Mbps at 25 fps is ~10 KB per frame: 8 video packets of ~1.2 KB.
const PKTS_PER_FRAME: u32 = 8;
const PAYLOAD: usize = 1_188;

fn setup(subscribers: usize, gop_frames: u32) -> (Arc<Stream>, Source, Vec<Subscription>) {
    let s = Stream::new("bench/a", HubConfig::default());
    let mut src = Source::new(gop_frames, PKTS_PER_FRAME);
    src.payload = PAYLOAD;
    // Fill the cache with a whole GOP minus one frame, so the cache is at its largest.
    for _ in 0..gop_frames.saturating_sub(1) {
        s.push_packets(src.next_frame());
    }
    let mut subs: Vec<Subscription> = (0..subscribers).map(|_| s.subscribe()).collect();
    let mut out = Vec::new();
    for sub in &mut subs {
        while sub.poll(&mut out, 4096).count() > 0 {
            out.clear();
        }
    }
    (s, src, subs)
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("hub_fanout");
    for &subscribers in &[1usize, 100, 10_000] {
        for &gop_frames in &[25u32, 250] {
            if subscribers == 10_000 {
                g.sample_size(10);
            } else {
                g.sample_size(50);
            }
            let (stream, mut src, mut subs) = setup(subscribers, gop_frames);
            // Frames are generated ahead (generation is not what we measure), cycling through
            // a GOP so keyframes keep arriving.
            let frames: Vec<Vec<MediaPacket>> = (0..gop_frames).map(|_| src.next_frame()).collect();
            let per_frame = frames[1].len() as u64;
            g.throughput(Throughput::Elements(per_frame * subscribers as u64));
            let id = BenchmarkId::new(format!("subs_{subscribers}"), format!("gop_{gop_frames}"));
            let mut i = 0u64;
            let mut seq = [src.audio_seq, src.video_seq];
            let gop_ms = i64::from(gop_frames) * 40;
            let mut batch: Vec<MediaPacket> = Vec::with_capacity(16);
            let mut out: Vec<MediaPacket> = Vec::with_capacity(64);
            g.bench_function(id, |b| {
                b.iter(|| {
                    // The template frame, renumbered as the packetizer would (seq, DTS).
                    let cycle = (i / u64::from(gop_frames)) as i64 + 1;
                    batch.clear();
                    for p in &frames[(i % u64::from(gop_frames)) as usize] {
                        let mut p = p.clone();
                        let t = usize::from(p.track == TrackKind::Video);
                        p.seq = seq[t];
                        seq[t] += 1;
                        p.dts_ms += cycle * gop_ms;
                        batch.push(p);
                    }
                    i += 1;
                    stream.push_packets(batch.drain(..));
                    for sub in &mut subs {
                        out.clear();
                        black_box(sub.poll(&mut out, 64));
                    }
                    black_box(out.len())
                })
            });
            let st = stream.stats();
            assert_eq!(st.jumps, 0, "bench subscribers must keep up");
        }
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
