//! Per-upstream health: a sliding window of pull outcomes, ejection above a failure ratio, a
//! cool-down, then probation.
//!
//! This exists because an origin can accept connections while being unable to deliver (a relay
//! whose own uplink is dead): counting *pull* outcomes, not TCP connects, catches that. The
//! tracker is sans-IO: callers pass `now`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Thresholds; all configurable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthConfig {
    /// Outcomes older than this are forgotten.
    #[serde(with = "millis")]
    pub window: Duration,
    /// Fewer outcomes than this in the window never eject (one failure is not a trend).
    pub min_samples: usize,
    /// Eject when failures / outcomes in the window reach this ratio.
    pub failure_ratio: f64,
    /// How long an ejected upstream stays out of rotation.
    #[serde(with = "millis")]
    pub cooldown: Duration,
    /// Most outcomes remembered per upstream (bounds memory under a storm of pulls).
    pub max_samples: usize,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            window: Duration::from_secs(60),
            min_samples: 3,
            failure_ratio: 0.5,
            cooldown: Duration::from_secs(30),
            max_samples: 256,
        }
    }
}

/// Where an upstream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// In rotation.
    Healthy,
    /// Out of rotation until the instant.
    Ejected { until: Instant },
    /// Back in rotation after a cool-down: the next outcome decides (a failure ejects again at
    /// once, a success makes it healthy).
    Probation,
}

/// A readable snapshot for the admin API and metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSnapshot {
    pub id: String,
    /// `healthy`, `ejected` or `probation`.
    pub state: &'static str,
    pub successes: usize,
    pub failures: usize,
    /// Milliseconds of cool-down left (0 unless ejected).
    pub ejected_for_ms: u64,
    /// Times this upstream has been ejected since start.
    pub ejections: u64,
}

#[derive(Debug)]
struct Entry {
    outcomes: VecDeque<(Instant, bool)>,
    state: HealthState,
    ejections: u64,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            outcomes: VecDeque::new(),
            state: HealthState::Healthy,
            ejections: 0,
        }
    }
}

/// Health of every upstream, keyed by upstream id.
#[derive(Debug, Default)]
pub struct HealthTracker {
    config: HealthConfig,
    entries: HashMap<String, Entry>,
}

impl HealthTracker {
    pub fn new(config: HealthConfig) -> HealthTracker {
        HealthTracker {
            config,
            entries: HashMap::new(),
        }
    }

    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Records a pull outcome. A success is a pull that delivered its first keyframe; a failure
    /// is a connect error, a timeout, a refused play or a stall.
    pub fn record(&mut self, id: &str, success: bool, now: Instant) {
        let cfg = self.config;
        let e = self.entries.entry(id.to_owned()).or_insert_with(Entry::new);
        refresh(e, &cfg, now);
        match e.state {
            // Outcomes of pulls started before the ejection change nothing.
            HealthState::Ejected { .. } => return,
            HealthState::Probation => {
                if success {
                    e.state = HealthState::Healthy;
                } else {
                    eject(e, &cfg, now);
                    return;
                }
            }
            HealthState::Healthy => {}
        }
        e.outcomes.push_back((now, success));
        while e.outcomes.len() > cfg.max_samples {
            e.outcomes.pop_front();
        }
        let failures = e.outcomes.iter().filter(|(_, ok)| !ok).count();
        let total = e.outcomes.len();
        if total >= cfg.min_samples && failures as f64 >= cfg.failure_ratio * total as f64 {
            eject(e, &cfg, now);
        }
    }

    /// Whether `id` may be used now (healthy or on probation).
    pub fn is_available(&mut self, id: &str, now: Instant) -> bool {
        let cfg = self.config;
        match self.entries.get_mut(id) {
            None => true,
            Some(e) => {
                refresh(e, &cfg, now);
                !matches!(e.state, HealthState::Ejected { .. })
            }
        }
    }

    /// Current state of `id` (unknown upstreams are healthy).
    pub fn state(&mut self, id: &str, now: Instant) -> HealthState {
        let cfg = self.config;
        match self.entries.get_mut(id) {
            None => HealthState::Healthy,
            Some(e) => {
                refresh(e, &cfg, now);
                e.state
            }
        }
    }

    /// Snapshot of every known upstream, sorted by id.
    pub fn snapshot(&mut self, now: Instant) -> Vec<HealthSnapshot> {
        let cfg = self.config;
        let mut v: Vec<HealthSnapshot> = self
            .entries
            .iter_mut()
            .map(|(id, e)| {
                refresh(e, &cfg, now);
                let failures = e.outcomes.iter().filter(|(_, ok)| !ok).count();
                let (state, left) = match e.state {
                    HealthState::Healthy => ("healthy", Duration::ZERO),
                    HealthState::Probation => ("probation", Duration::ZERO),
                    HealthState::Ejected { until } => ("ejected", until - now),
                };
                HealthSnapshot {
                    id: id.clone(),
                    state,
                    successes: e.outcomes.len() - failures,
                    failures,
                    ejected_for_ms: left.as_millis() as u64,
                    ejections: e.ejections,
                }
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}

fn eject(e: &mut Entry, cfg: &HealthConfig, now: Instant) {
    e.state = HealthState::Ejected {
        until: now + cfg.cooldown,
    };
    e.ejections += 1;
    // The evidence is spent: after the cool-down the upstream is judged afresh.
    e.outcomes.clear();
}

fn refresh(e: &mut Entry, cfg: &HealthConfig, now: Instant) {
    if let HealthState::Ejected { until } = e.state
        && now >= until
    {
        e.state = HealthState::Probation;
    }
    while let Some(&(t, _)) = e.outcomes.front() {
        if now.saturating_duration_since(t) > cfg.window {
            e.outcomes.pop_front();
        } else {
            break;
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HealthConfig {
        HealthConfig {
            window: Duration::from_secs(10),
            min_samples: 3,
            failure_ratio: 0.5,
            cooldown: Duration::from_secs(5),
            max_samples: 100,
        }
    }

    #[test]
    fn ejects_above_ratio_then_probation_then_healthy() {
        let t0 = Instant::now();
        let mut h = HealthTracker::new(cfg());
        h.record("a", true, t0);
        h.record("a", false, t0);
        assert!(h.is_available("a", t0), "2 samples < min_samples");
        h.record("a", false, t0 + Duration::from_secs(1));
        assert_eq!(
            h.state("a", t0 + Duration::from_secs(1)),
            HealthState::Ejected {
                until: t0 + Duration::from_secs(6)
            }
        );
        assert!(!h.is_available("a", t0 + Duration::from_secs(5)));
        let snap = h.snapshot(t0 + Duration::from_secs(2));
        assert_eq!(
            (snap[0].state, snap[0].ejected_for_ms, snap[0].ejections),
            ("ejected", 4000, 1)
        );
        assert!(h.is_available("a", t0 + Duration::from_secs(6)));
        assert_eq!(
            h.state("a", t0 + Duration::from_secs(6)),
            HealthState::Probation
        );
        h.record("a", true, t0 + Duration::from_secs(7));
        assert_eq!(
            h.state("a", t0 + Duration::from_secs(7)),
            HealthState::Healthy
        );
    }

    #[test]
    fn probation_failure_ejects_at_once_and_old_outcomes_expire() {
        let t0 = Instant::now();
        let mut h = HealthTracker::new(cfg());
        for _ in 0..3 {
            h.record("a", false, t0);
        }
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(h.state("a", t1), HealthState::Probation);
        h.record("a", false, t1);
        assert!(!h.is_available("a", t1));
        // Failures spread wider than the window never add up to an ejection.
        let mut h = HealthTracker::new(cfg());
        for i in 0..10 {
            let t = t0 + Duration::from_secs(11 * i);
            h.record("b", true, t);
            h.record("b", false, t);
            h.record("b", true, t);
        }
        assert_eq!(h.snapshot(t0 + Duration::from_secs(99))[0].failures, 1);
        assert!(h.is_available("b", t0 + Duration::from_secs(200)));
    }

    #[test]
    fn unknown_upstreams_are_available() {
        let mut h = HealthTracker::new(HealthConfig::default());
        assert!(h.is_available("never-seen", Instant::now()));
    }
}
