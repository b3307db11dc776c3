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
use std::sync::atomic::{AtomicBool, Ordering};

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
    fanout_mode(c, "hub_fanout", false, &[1, 100, 10_000]);
    fanout_mode(c, "hub_fanout_borrow", true, &[100, 10_000]);
}

/// `borrow`: subscribers use `poll_with` (items lent under the read lock, as a session that
/// encrypts straight into its own buffer would) instead of `poll` (items cloned).
fn fanout_mode(c: &mut Criterion, group: &str, borrow: bool, subs_counts: &[usize]) {
    let mut g = c.benchmark_group(group);
    for &subscribers in subs_counts {
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
                    let mut lent = 0usize;
                    for sub in &mut subs {
                        if borrow {
                            black_box(sub.poll_with(64, |p| lent += p.bytes.len()));
                        } else {
                            out.clear();
                            black_box(sub.poll(&mut out, 64));
                        }
                    }
                    black_box((out.len(), lent))
                })
            });
            let st = stream.stats();
            assert_eq!(st.jumps, 0, "bench subscribers must keep up");
        }
    }
    g.finish();
}

/// Cost of one push (one frame) while `readers` threads, each a shard with 1 000
/// subscriptions, poll the same stream as fast as they can: the lock contention the producer
/// sees from its readers.
fn push_under_readers(c: &mut Criterion) {
    let mut g = c.benchmark_group("hub_push_contended");
    g.sample_size(30);
    for &readers in &[0usize, 2] {
        let (stream, mut src, _) = setup(0, 25);
        let frames: Vec<Vec<MediaPacket>> = (0..25).map(|_| src.next_frame()).collect();
        g.throughput(Throughput::Elements(frames[1].len() as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..readers)
            .map(|_| {
                let stream = stream.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut subs: Vec<Subscription> =
                        (0..1_000).map(|_| stream.subscribe()).collect();
                    let mut out = Vec::with_capacity(64);
                    while !stop.load(Ordering::Relaxed) {
                        for sub in &mut subs {
                            out.clear();
                            black_box(sub.poll(&mut out, 64));
                        }
                    }
                })
            })
            .collect();
        let mut i = 0u64;
        let mut seq = [src.audio_seq, src.video_seq];
        let mut batch: Vec<MediaPacket> = Vec::with_capacity(16);
        g.bench_function(BenchmarkId::new("readers", readers), |b| {
            b.iter(|| {
                let cycle = (i / 25) as i64 + 1;
                batch.clear();
                for p in &frames[(i % 25) as usize] {
                    let mut p = p.clone();
                    let t = usize::from(p.track == TrackKind::Video);
                    p.seq = seq[t];
                    seq[t] += 1;
                    p.dts_ms += cycle * 1_000;
                    batch.push(p);
                }
                i += 1;
                stream.push_packets(batch.drain(..));
            })
        });
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
    }
    g.finish();
}

criterion_group!(benches, fanout, push_under_readers);
criterion_main!(benches);
