//! The bounded, never-blocking hand-off from media code to statistics consumers.
//!
//! Media code calls [`StatsQueue::push`]: one lock-free attempt on a fixed-size ring
//! (`crossbeam_queue::ArrayQueue`). If the ring is full because the consumer is slow or stalled,
//! the sample is dropped and counted; the producer never waits, never allocates and never awaits.
//! This is the isolation rule of issue 7: a failing statistics side must not slow down media.
//!
//! The consumer polls ([`StatsQueue::drain`]) on its own schedule (e.g. every 100 ms from a
//! task): producers do not wake it, because a wake-up would put a futex on the media path.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_queue::ArrayQueue;

use super::metrics::QueueStats;

/// A bounded multi-producer queue of `T` that drops (and counts) on overflow.
pub struct StatsQueue<T> {
    name: &'static str,
    ring: ArrayQueue<T>,
    dropped: AtomicU64,
}

impl<T> StatsQueue<T> {
    /// A queue named `name` (the `queue` label in `/metrics`) holding up to `capacity` samples
    /// (at least 1).
    pub fn new(name: &'static str, capacity: usize) -> Self {
        StatsQueue {
            name,
            ring: ArrayQueue::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
        }
    }

    /// Offers a sample. Returns `false` (and counts a drop) when the queue is full.
    /// Lock-free; never blocks.
    #[inline]
    pub fn push(&self, sample: T) -> bool {
        match self.ring.push(sample) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// Takes one sample.
    pub fn pop(&self) -> Option<T> {
        self.ring.pop()
    }

    /// Hands up to `max` queued samples to `f`; returns how many. Bounded so that one drain does
    /// not monopolise the consumer while producers keep refilling.
    pub fn drain(&self, max: usize, mut f: impl FnMut(T)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(s) = self.ring.pop() else { break };
            f(s);
            n += 1;
        }
        n
    }

    /// Samples dropped since creation.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

/// Drains `queue` every `every` (at most `batch` samples per tick) into `handle`, until `stop`
/// turns true or its sender is dropped. Run it as one task per queue; a slow `handle` only makes
/// the queue fill up and drop, never slows the producers.
pub async fn consume<T>(
    queue: std::sync::Arc<StatsQueue<T>>,
    every: std::time::Duration,
    batch: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut handle: impl FnMut(T),
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                queue.drain(batch, &mut handle);
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    // Final drain so samples pushed before the stop are not lost.
                    queue.drain(batch, &mut handle);
                    return;
                }
            }
        }
    }
}

impl<T: Send> QueueStats for StatsQueue<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn len(&self) -> usize {
        self.ring.len()
    }
    fn capacity(&self) -> usize {
        self.ring.capacity()
    }
    fn dropped(&self) -> u64 {
        StatsQueue::dropped(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn overflow_drops_and_counts() {
        let q = StatsQueue::new("t", 4);
        for i in 0..10 {
            q.push(i);
        }
        assert_eq!(q.dropped(), 6);
        let mut got = Vec::new();
        assert_eq!(q.drain(usize::MAX, |s| got.push(s)), 4);
        assert_eq!(got, [0, 1, 2, 3], "oldest samples are kept, newest dropped");
        assert!(q.push(99));
    }

    #[tokio::test]
    async fn consumer_task_drains_and_stops() {
        let q = Arc::new(StatsQueue::new("t", 64));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = {
            let (q, seen) = (q.clone(), seen.clone());
            tokio::spawn(consume(
                q,
                Duration::from_millis(5),
                16,
                stop_rx,
                move |s: u32| seen.lock().unwrap().push(s),
            ))
        };
        for i in 0..10 {
            q.push(i);
        }
        tokio::time::timeout(Duration::from_secs(2), async {
            while seen.lock().unwrap().len() < 10 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
        q.push(10);
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), (0..=10).collect::<Vec<_>>());
    }

    #[test]
    fn drain_is_bounded() {
        let q = StatsQueue::new("t", 8);
        for i in 0..8 {
            q.push(i);
        }
        assert_eq!(q.drain(3, |_| {}), 3);
        assert_eq!(QueueStats::len(&q), 5);
    }

    /// A consumer that never drains must not slow producers: 4 threads × 200k pushes into a
    /// full queue finish well inside a bound that a blocking queue could never meet, and
    /// every push beyond capacity is counted.
    #[test]
    fn stalled_consumer_does_not_block_producers() {
        let q = Arc::new(StatsQueue::new("t", 1024));
        let start = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..200_000u64 {
                        q.push(i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed < Duration::from_secs(5),
            "producers took {elapsed:?}"
        );
        assert_eq!(QueueStats::len(&*q), 1024);
        assert_eq!(q.dropped(), 4 * 200_000 - 1024);
    }
}
