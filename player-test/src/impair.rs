//! Deterministic network impairment: loss, delay, jitter and a bandwidth cap, like `tc netem`
//! plus `tbf`, but in user space and reproducible from a seed.
//!
//! Sans-IO: datagrams (or TCP chunks) go in with the time they arrived and come out at the
//! time the emulated link delivers them. The same queue drives the in-process receive-side
//! impairment of the player and each direction of the `player-test relay`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::rng::SplitMix64;

/// Parameters of one direction of an emulated link.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct LinkSpec {
    /// Probability that a datagram is lost, `0.0..=1.0`.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Uniform jitter: each datagram gets an extra delay in `[0, jitter]`.
    pub jitter: Duration,
    /// Bandwidth cap in bits per second; 0 = unlimited.
    pub rate_bps: u64,
    /// When true, jitter never reorders (a datagram never leaves before the one ahead of it),
    /// which is what a TCP byte stream needs and what `netem` does with `rate`.
    pub keep_order: bool,
}

impl LinkSpec {
    /// True when the link is not impaired at all.
    pub fn is_clean(&self) -> bool {
        self.loss <= 0.0 && self.delay.is_zero() && self.jitter.is_zero() && self.rate_bps == 0
    }
}

#[derive(Debug)]
struct Held<T> {
    at: Instant,
    order: u64,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Held<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(o.at, o.order))
    }
}

/// Counters of one impaired direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImpairStats {
    pub offered: u64,
    pub lost: u64,
    pub delivered: u64,
    pub bytes_delivered: u64,
}

/// One impaired direction: a seeded link emulator holding items until their delivery time.
#[derive(Debug)]
pub struct Impairment<T> {
    spec: LinkSpec,
    rng: SplitMix64,
    queue: BinaryHeap<Reverse<Held<T>>>,
    order: u64,
    /// When the emulated link finishes serialising what it already holds (rate cap).
    link_free: Option<Instant>,
    last_release: Option<Instant>,
    stats: ImpairStats,
}

impl<T: AsRef<[u8]>> Impairment<T> {
    pub fn new(spec: LinkSpec, seed: u64) -> Self {
        Self {
            spec,
            rng: SplitMix64::new(seed),
            queue: BinaryHeap::new(),
            order: 0,
            link_free: None,
            last_release: None,
            stats: ImpairStats::default(),
        }
    }

    pub fn spec(&self) -> &LinkSpec {
        &self.spec
    }

    pub fn stats(&self) -> ImpairStats {
        self.stats
    }

    /// Offers an item that arrived at `now`. Returns `false` when the link lost it.
    pub fn push(&mut self, now: Instant, item: T) -> bool {
        self.stats.offered += 1;
        // Draw every random number for every item, lost or not, so that changing one parameter
        // does not shift the random sequence of the others.
        let lose = self.rng.chance(self.spec.loss);
        let jitter = self.spec.jitter.mul_f64(self.rng.next_f64());
        if lose {
            self.stats.lost += 1;
            return false;
        }
        let mut at = now;
        if self.spec.rate_bps > 0 {
            let start = self.link_free.map_or(now, |f| f.max(now));
            let bits = item.as_ref().len() as f64 * 8.0;
            let done = start + Duration::from_secs_f64(bits / self.spec.rate_bps as f64);
            self.link_free = Some(done);
            at = done;
        }
        at += self.spec.delay + jitter;
        if self.spec.keep_order
            && let Some(last) = self.last_release
        {
            at = at.max(last);
        }
        self.last_release = Some(self.last_release.map_or(at, |l| l.max(at)));
        self.order += 1;
        self.queue.push(Reverse(Held {
            at,
            order: self.order,
            item,
        }));
        true
    }

    /// The next item whose delivery time has come.
    pub fn pop(&mut self, now: Instant) -> Option<T> {
        if self.queue.peek()?.0.at > now {
            return None;
        }
        let item = self.queue.pop()?.0.item;
        self.stats.delivered += 1;
        self.stats.bytes_delivered += item.as_ref().len() as u64;
        Some(item)
    }

    /// When the next item is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.peek().map(|h| h.0.at)
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Parses `25ms`, `1.5s`, `300us`, `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, ""), |i| s.split_at(i));
    let v: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" if v == 0.0 => 0.0,
        "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        _ => return Err(format!("bad duration {s:?}: use s, ms or us")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Parses `4mbit`, `500kbit`, `1gbit`, `64000` (bits per second), as `tc` writes rates.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = s.strip_suffix("gbit") {
        (n, 1e9)
    } else if let Some(n) = s.strip_suffix("mbit") {
        (n, 1e6)
    } else if let Some(n) = s.strip_suffix("kbit") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix("bit") {
        (n, 1.0)
    } else {
        (s.as_str(), 1.0)
    };
    let v: f64 = num.parse().map_err(|_| format!("bad rate {s:?}"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("bad rate {s:?}"));
    }
    Ok((v * mul) as u64)
}

/// Parses a loss given as a fraction (`0.1`) or a percentage (`10%`).
pub fn parse_loss(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let v = match s.strip_suffix('%') {
        Some(p) => p.parse::<f64>().map(|x| x / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| format!("bad loss {s:?}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("loss {s:?} outside 0..1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spec: LinkSpec, seed: u64) -> Vec<(usize, Duration)> {
        let t0 = Instant::now();
        let mut q = Impairment::new(spec, seed);
        let mut out = Vec::new();
        for i in 0..2000usize {
            let now = t0 + Duration::from_millis(i as u64);
            q.push(now, i.to_be_bytes().to_vec());
            while let Some(p) = q.pop(now) {
                let id = usize::from_be_bytes(p.try_into().unwrap());
                out.push((id, now - (t0 + Duration::from_millis(id as u64))));
            }
        }
        let end = t0 + Duration::from_secs(10);
        while let Some(p) = q.pop(end) {
            out.push((usize::from_be_bytes(p.try_into().unwrap()), Duration::MAX));
        }
        out
    }

    #[test]
    fn same_seed_same_outcome_other_seed_differs() {
        let spec = LinkSpec {
            loss: 0.1,
            delay: Duration::from_millis(25),
            jitter: Duration::from_millis(5),
            ..LinkSpec::default()
        };
        assert_eq!(run(spec, 7), run(spec, 7));
        assert_ne!(run(spec, 7), run(spec, 8));
    }

    #[test]
    fn loss_and_delay_are_as_configured() {
        let spec = LinkSpec {
            loss: 0.1,
            delay: Duration::from_millis(25),
            jitter: Duration::from_millis(5),
            ..LinkSpec::default()
        };
        let out = run(spec, 1);
        let lost = 2000 - out.len();
        assert!((150..250).contains(&lost), "{lost}");
        for (_, d) in out.iter().filter(|(_, d)| *d != Duration::MAX) {
            assert!(
                *d >= Duration::from_millis(25) && *d <= Duration::from_millis(31),
                "{d:?}"
            );
        }
    }

    #[test]
    fn rate_cap_spaces_packets_and_keeps_order() {
        let t0 = Instant::now();
        let spec = LinkSpec {
            rate_bps: 8_000_000,
            ..LinkSpec::default()
        };
        let mut q = Impairment::new(spec, 0);
        for _ in 0..10 {
            q.push(t0, vec![0u8; 1000]); // 1 ms each at 8 Mbit/s
        }
        assert_eq!(q.poll_timeout(), Some(t0 + Duration::from_millis(1)));
        let n = std::iter::from_fn(|| q.pop(t0 + Duration::from_micros(5500))).count();
        assert_eq!(n, 5);
    }

    #[test]
    fn keep_order_never_reorders() {
        let t0 = Instant::now();
        let spec = LinkSpec {
            jitter: Duration::from_millis(50),
            keep_order: true,
            ..LinkSpec::default()
        };
        let mut q = Impairment::new(spec, 3);
        for i in 0..500u32 {
            q.push(
                t0 + Duration::from_millis(u64::from(i)),
                i.to_be_bytes().to_vec(),
            );
        }
        let out: Vec<u32> = std::iter::from_fn(|| q.pop(t0 + Duration::from_secs(5)))
            .map(|v| u32::from_be_bytes(v.try_into().unwrap()))
            .collect();
        assert_eq!(out, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_duration("25ms"), Ok(Duration::from_millis(25)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_rate("4mbit"), Ok(4_000_000));
        assert_eq!(parse_rate("500kbit"), Ok(500_000));
        assert_eq!(parse_loss("10%"), Ok(0.1));
        assert_eq!(parse_loss("0.25"), Ok(0.25));
        assert!(parse_loss("2").is_err());
    }
}
