//! Side work cannot slow the media path: a media-like loop that records metrics and pushes
//! stats samples runs at (at least) half its baseline rate when the stats consumer is stalled
//! and a scraper renders `/metrics` continuously. Timing uses the best of several runs to
//! absorb scheduler noise on a shared machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rtmlive::ops::{EgressKind, Metrics, Stage, StatsQueue};

#[derive(Debug)]
#[allow(dead_code)] // the consumer reads the fields in a real server
struct Sample {
    session: u64,
    bytes: u64,
}

const PACKETS: u64 = 200_000;

/// The "media loop": per packet, metrics and a stats sample; one first-frame stage per 1000.
fn media_loop(metrics: &Metrics, queue: &StatsQueue<Sample>) -> Duration {
    let start = Instant::now();
    for i in 0..PACKETS {
        metrics.egress(EgressKind::Media, 1, 1200);
        if i % 50 == 0 {
            metrics.nack_received(1);
        }
        if i % 1000 == 0 {
            metrics.observe_stage(Stage::FirstKeyframeSent, Duration::from_millis(120));
        }
        queue.push(Sample {
            session: i % 64,
            bytes: 1200,
        });
    }
    start.elapsed()
}

fn run(stalled: bool) -> (Duration, u64) {
    let metrics = Metrics::new();
    let queue = Arc::new(StatsQueue::new("test", 4096));
    metrics.register_queue(queue.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (queue, stop) = (queue.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if stalled {
                    // A consumer stuck in a slow sink: never drains.
                    std::thread::sleep(Duration::from_millis(5));
                } else if queue.drain(1024, |s| {
                    std::hint::black_box(s);
                }) == 0
                {
                    std::thread::yield_now();
                }
            }
        })
    };
    let scraper = {
        let (metrics, stop) = (metrics.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::hint::black_box(metrics.render());
                // A scrape every millisecond: far busier than any Prometheus, without turning
                // the test into a CPU-share contest on a loaded machine.
                std::thread::sleep(Duration::from_millis(if stalled { 1 } else { 50 }));
            }
        })
    };
    let elapsed = media_loop(&metrics, &queue);
    stop.store(true, Ordering::Relaxed);
    consumer.join().unwrap();
    scraper.join().unwrap();
    (elapsed, queue.dropped())
}

#[test]
fn stalled_consumer_and_busy_scraper_do_not_slow_media() {
    let best = |stalled| {
        (0..5)
            .map(|_| run(stalled))
            .min_by_key(|(d, _)| *d)
            .unwrap()
    };
    let (baseline, _) = best(false);
    let (stalled, dropped) = best(true);
    assert!(dropped >= PACKETS - 4096, "drops are counted: {dropped}");
    assert!(
        stalled <= baseline * 2 + Duration::from_millis(50),
        "media loop: baseline {baseline:?}, with stalled consumer {stalled:?}"
    );
}
