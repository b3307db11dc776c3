//! What media code pays for observability: metric recording, stats queue push (with room and
//! when full), and the per-packet log limiter. Figures: docs/decisions.md, "Metrics".

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rtmlive::ops::ratelimit::LogLimiter;
use rtmlive::ops::{EgressKind, Metrics, Stage, StatsQueue};

fn bench(c: &mut Criterion) {
    let m = Metrics::new();
    c.bench_function("metrics.egress", |b| {
        b.iter(|| m.egress(black_box(EgressKind::Media), 1, black_box(1200)))
    });
    c.bench_function("metrics.nack_received", |b| {
        b.iter(|| m.nack_received(black_box(3)))
    });
    c.bench_function("metrics.observe_stage", |b| {
        b.iter(|| {
            m.observe_stage(
                black_box(Stage::DtlsDone),
                black_box(Duration::from_millis(42)),
            )
        })
    });
    let q = StatsQueue::new("bench", 1 << 20);
    c.bench_function("stats_queue.push+pop", |b| {
        b.iter(|| {
            q.push(black_box(7u64));
            q.pop()
        })
    });
    let full = StatsQueue::new("bench_full", 16);
    for i in 0..16u64 {
        full.push(i);
    }
    c.bench_function("stats_queue.push (full, dropped)", |b| {
        b.iter(|| full.push(black_box(7u64)))
    });
    let t0 = Instant::now();
    let l = LogLimiter::new(10, Duration::from_secs(10), t0);
    c.bench_function("log_limiter.check (suppressed)", |b| {
        b.iter(|| l.check(black_box("srtp.unprotect"), t0))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
