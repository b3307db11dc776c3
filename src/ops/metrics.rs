//! Prometheus metrics: atomics on the hot path, text exposition at scrape time.
//!
//! Media code holds an `Arc<Metrics>` and calls methods such as [`Metrics::nack_received`]; each
//! is one to three relaxed atomic adds on a slot chosen by an enum (see [`super::labels`]). No
//! registry, no lock, no allocation. Rendering ([`Metrics::render`]) runs on the scrape request
//! and only loads the atomics. Metrics with open-ended labels (viewers per stream, origin health)
//! come from the admin backend's snapshots at scrape time, not from the media path.
//!
//! Why hand-rolled rather than `prometheus-client`: see `docs/decisions.md`, "Metrics".

use std::fmt::Write as _;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::labels::*;

/// A counter per value of label `L`.
pub struct CounterVec<L: Label> {
    slots: Box<[AtomicU64]>,
    _l: PhantomData<L>,
}

impl<L: Label> Default for CounterVec<L> {
    fn default() -> Self {
        CounterVec {
            slots: L::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            _l: PhantomData,
        }
    }
}

impl<L: Label> CounterVec<L> {
    #[inline]
    pub fn add(&self, l: L, n: u64) {
        if let Some(s) = self.slots.get(l.index()) {
            s.fetch_add(n, Relaxed);
        }
    }

    pub fn get(&self, l: L) -> u64 {
        self.slots.get(l.index()).map_or(0, |s| s.load(Relaxed))
    }
}

/// A gauge per pair of label values `(A, B)`.
pub struct GaugeVec2<A: Label, B: Label> {
    slots: Box<[AtomicI64]>,
    _l: PhantomData<(A, B)>,
}

impl<A: Label, B: Label> Default for GaugeVec2<A, B> {
    fn default() -> Self {
        GaugeVec2 {
            slots: (0..A::ALL.len() * B::ALL.len())
                .map(|_| AtomicI64::new(0))
                .collect(),
            _l: PhantomData,
        }
    }
}

impl<A: Label, B: Label> GaugeVec2<A, B> {
    fn slot(&self, a: A, b: B) -> Option<&AtomicI64> {
        self.slots.get(a.index() * B::ALL.len() + b.index())
    }

    #[inline]
    pub fn add(&self, a: A, b: B, n: i64) {
        if let Some(s) = self.slot(a, b) {
            s.fetch_add(n, Relaxed);
        }
    }

    pub fn get(&self, a: A, b: B) -> i64 {
        self.slot(a, b).map_or(0, |s| s.load(Relaxed))
    }
}

/// Upper bounds (seconds) of the first-frame stage histogram buckets: dense below one second,
/// where the target is.
pub const STAGE_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0,
];

/// A fixed-bucket histogram of durations (microsecond resolution).
pub struct Histogram {
    bounds_us: [u64; STAGE_BUCKETS.len()],
    /// Non-cumulative counts; the last slot is `+Inf`.
    buckets: [AtomicU64; STAGE_BUCKETS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bounds_us: STAGE_BUCKETS.map(|s| (s * 1e6) as u64),
            buckets: Default::default(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    #[inline]
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = self.bounds_us.partition_point(|&b| b < us);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(us, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

/// Read-only view of a bounded queue for `/metrics` (implemented by `StatsQueue`).
pub trait QueueStats: Send + Sync {
    fn name(&self) -> &'static str;
    fn len(&self) -> usize;
    fn capacity(&self) -> usize;
    fn dropped(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// All process metrics. Share as `Arc<Metrics>`; every recording method is lock-free.
#[derive(Default)]
pub struct Metrics {
    sessions: GaugeVec2<Protocol, SessionState>,
    sessions_opened: CounterVec<Protocol>,
    sessions_rejected: GaugeVec2<Protocol, RejectReason>,
    streams: CounterVecI<StreamSource>,
    egress_bytes: CounterVec<EgressKind>,
    egress_packets: CounterVec<EgressKind>,
    ingress_bytes: CounterVec<IngressSource>,
    ingress_packets: CounterVec<IngressSource>,
    nack_messages: AtomicU64,
    nack_seqs: AtomicU64,
    retransmits: CounterVec<RetransmitOutcome>,
    pli_received: AtomicU64,
    pli_sent: AtomicU64,
    srtp_failures: CounterVec<SrtpFailure>,
    dtls_failures: CounterVec<DtlsFailure>,
    minisdp_requests: CounterVec<MiniSdpStatus>,
    origin_pulls_started: AtomicU64,
    origin_pulls_finished: CounterVec<PullOutcome>,
    switch_events: AtomicU64,
    gop_jumps: AtomicU64,
    stages: StageHistograms,
    draining: AtomicI64,
    queues: Mutex<Vec<Arc<dyn QueueStats>>>,
}

/// A signed gauge per label value.
pub struct CounterVecI<L: Label> {
    slots: Box<[AtomicI64]>,
    _l: PhantomData<L>,
}

impl<L: Label> Default for CounterVecI<L> {
    fn default() -> Self {
        CounterVecI {
            slots: L::ALL.iter().map(|_| AtomicI64::new(0)).collect(),
            _l: PhantomData,
        }
    }
}

impl<L: Label> CounterVecI<L> {
    #[inline]
    fn add(&self, l: L, n: i64) {
        if let Some(s) = self.slots.get(l.index()) {
            s.fetch_add(n, Relaxed);
        }
    }
    fn get(&self, l: L) -> i64 {
        self.slots.get(l.index()).map_or(0, |s| s.load(Relaxed))
    }
}

struct StageHistograms(Box<[Histogram]>);

impl Default for StageHistograms {
    fn default() -> Self {
        StageHistograms(Stage::ALL.iter().map(|_| Histogram::default()).collect())
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Metrics::default())
    }

    // ---- sessions -------------------------------------------------------------------------

    /// A session was created in `state` (usually `Pending`).
    #[inline]
    pub fn session_opened(&self, p: Protocol, state: SessionState) {
        self.sessions_opened.add(p, 1);
        self.sessions.add(p, state, 1);
    }

    /// A session moved from `from` to `to`.
    #[inline]
    pub fn session_state_changed(&self, p: Protocol, from: SessionState, to: SessionState) {
        self.sessions.add(p, from, -1);
        self.sessions.add(p, to, 1);
    }

    /// A session in `state` ended.
    #[inline]
    pub fn session_closed(&self, p: Protocol, state: SessionState) {
        self.sessions.add(p, state, -1);
    }

    /// A session request was refused before a session existed.
    #[inline]
    pub fn session_rejected(&self, p: Protocol, reason: RejectReason) {
        self.sessions_rejected.add(p, reason, 1);
    }

    /// Current number of sessions of `p` in `state`.
    pub fn sessions(&self, p: Protocol, state: SessionState) -> i64 {
        self.sessions.get(p, state)
    }

    // ---- streams --------------------------------------------------------------------------

    #[inline]
    pub fn stream_started(&self, source: StreamSource) {
        self.streams.add(source, 1);
    }

    #[inline]
    pub fn stream_stopped(&self, source: StreamSource) {
        self.streams.add(source, -1);
    }

    /// Sets the number of active streams from `source` (the `/metrics` handler does this from
    /// the hub's stream list at scrape time, which is the authoritative count).
    pub fn set_streams(&self, source: StreamSource, n: i64) {
        if let Some(s) = self.streams.slots.get(source.index()) {
            s.store(n, Relaxed);
        }
    }

    // ---- traffic --------------------------------------------------------------------------

    /// `packets` datagrams (or FLV tags) totalling `bytes` were sent.
    #[inline]
    pub fn egress(&self, kind: EgressKind, packets: u64, bytes: u64) {
        if packets > 0 {
            self.egress_packets.add(kind, packets);
            self.egress_bytes.add(kind, bytes);
        }
    }

    /// `packets` datagrams (or FLV/RTMP messages) totalling `bytes` were received.
    #[inline]
    pub fn ingress(&self, source: IngressSource, packets: u64, bytes: u64) {
        if packets > 0 {
            self.ingress_packets.add(source, packets);
            self.ingress_bytes.add(source, bytes);
        }
    }

    /// One RTCP NACK requesting `seqs` sequence numbers.
    #[inline]
    pub fn nack_received(&self, seqs: u64) {
        self.nack_messages.fetch_add(1, Relaxed);
        self.nack_seqs.fetch_add(seqs, Relaxed);
    }

    /// `messages` NACKs requesting `seqs` sequence numbers in all (a shard's per-iteration
    /// total).
    #[inline]
    pub fn nacks_received(&self, messages: u64, seqs: u64) {
        if messages > 0 {
            self.nack_messages.fetch_add(messages, Relaxed);
            self.nack_seqs.fetch_add(seqs, Relaxed);
        }
    }

    /// One retransmission request for one sequence number was handled.
    #[inline]
    pub fn retransmit(&self, outcome: RetransmitOutcome) {
        self.retransmits.add(outcome, 1);
    }

    /// `n` retransmission requests with the same outcome (a shard's per-iteration total).
    #[inline]
    pub fn retransmits(&self, outcome: RetransmitOutcome, n: u64) {
        if n > 0 {
            self.retransmits.add(outcome, n);
        }
    }

    /// `n` PLI/FIR from players.
    #[inline]
    pub fn plis_received(&self, n: u64) {
        if n > 0 {
            self.pli_received.fetch_add(n, Relaxed);
        }
    }

    /// `n` SRTP failures of one kind.
    #[inline]
    pub fn srtp_failures(&self, kind: SrtpFailure, n: u64) {
        if n > 0 {
            self.srtp_failures.add(kind, n);
        }
    }

    /// PLI (or FIR) from a player.
    #[inline]
    pub fn pli_received(&self) {
        self.pli_received.fetch_add(1, Relaxed);
    }

    /// `n` PLIs sent to publishers (WHIP) to get a keyframe.
    #[inline]
    pub fn plis_sent(&self, n: u64) {
        if n > 0 {
            self.pli_sent.fetch_add(n, Relaxed);
        }
    }

    #[inline]
    pub fn srtp_failure(&self, kind: SrtpFailure) {
        self.srtp_failures.add(kind, 1);
    }

    #[inline]
    pub fn dtls_failure(&self, kind: DtlsFailure) {
        self.dtls_failures.add(kind, 1);
    }

    /// A miniSDP request was answered with wire status `code`.
    #[inline]
    pub fn minisdp_request(&self, code: u16) {
        self.minisdp_requests.add(MiniSdpStatus::from_code(code), 1);
    }

    /// miniSDP requests answered with `status` so far.
    pub fn minisdp_requests(&self, status: MiniSdpStatus) -> u64 {
        self.minisdp_requests.get(status)
    }

    // ---- origins --------------------------------------------------------------------------

    #[inline]
    pub fn origin_pull_started(&self) {
        self.origin_pulls_started.fetch_add(1, Relaxed);
    }

    #[inline]
    pub fn origin_pull_finished(&self, outcome: PullOutcome) {
        self.origin_pulls_finished.add(outcome, 1);
    }

    // ---- playback events ------------------------------------------------------------------

    /// A viewer was switched to another source (co-host switching).
    #[inline]
    pub fn switch_event(&self) {
        self.switch_events.fetch_add(1, Relaxed);
    }

    /// A viewer that fell a GOP behind was moved to the newest keyframe.
    #[inline]
    pub fn gop_jump(&self) {
        self.gop_jumps.fetch_add(1, Relaxed);
    }

    /// Time from the start of the stage's chain (see [`Stage`]) to `stage`.
    #[inline]
    pub fn observe_stage(&self, stage: Stage, elapsed: Duration) {
        if let Some(h) = self.stages.0.get(stage.index()) {
            h.observe(elapsed);
        }
    }

    pub fn stage_count(&self, stage: Stage) -> u64 {
        self.stages.0.get(stage.index()).map_or(0, Histogram::count)
    }

    // ---- process --------------------------------------------------------------------------

    /// Set by the shutdown coordinator.
    pub fn set_draining(&self, draining: bool) {
        self.draining.store(i64::from(draining), Relaxed);
    }

    /// Exports a queue's depth and drop count. Call at setup, not on the media path.
    pub fn register_queue(&self, q: Arc<dyn QueueStats>) {
        if let Ok(mut qs) = self.queues.lock() {
            qs.push(q);
        }
    }

    /// Renders every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut e = Exposition::default();
        self.render_into(&mut e);
        e.finish()
    }

    /// Renders into `e`, so scrape-time metrics (per stream, per origin) can be appended.
    pub fn render_into(&self, e: &mut Exposition) {
        e.info(
            "rtmlive_build_info",
            "Build information (value is always 1).",
            &[("version", env!("CARGO_PKG_VERSION"))],
        );
        e.gauge2(
            "rtmlive_sessions",
            "Sessions by protocol and state.",
            &self.sessions,
        );
        e.counter(
            "rtmlive_sessions_opened_total",
            "Sessions created, by protocol.",
            &self.sessions_opened,
        );
        e.gauge2_as_counter(
            "rtmlive_sessions_rejected_total",
            "Session requests refused, by protocol and reason.",
            &self.sessions_rejected,
        );
        e.header("rtmlive_streams", "Active streams by source.", "gauge");
        for s in StreamSource::ALL {
            e.sample(
                "rtmlive_streams",
                &[(StreamSource::NAME, s.as_str())],
                self.streams.get(*s),
            );
        }
        e.counter(
            "rtmlive_egress_bytes_total",
            "Bytes sent (multiply the rate by 8 for bits/s), by kind.",
            &self.egress_bytes,
        );
        e.counter(
            "rtmlive_egress_packets_total",
            "Packets sent, by kind.",
            &self.egress_packets,
        );
        e.counter(
            "rtmlive_ingress_bytes_total",
            "Bytes received, by source.",
            &self.ingress_bytes,
        );
        e.counter(
            "rtmlive_ingress_packets_total",
            "Packets (or FLV/RTMP messages) received, by source.",
            &self.ingress_packets,
        );
        e.scalar(
            "rtmlive_nack_received_total",
            "RTCP NACK messages received from players.",
            "counter",
            self.nack_messages.load(Relaxed),
        );
        e.scalar(
            "rtmlive_nack_seqs_received_total",
            "Sequence numbers requested by received NACKs.",
            "counter",
            self.nack_seqs.load(Relaxed),
        );
        e.counter(
            "rtmlive_retransmits_total",
            "Retransmission requests by outcome.",
            &self.retransmits,
        );
        e.scalar(
            "rtmlive_pli_received_total",
            "PLI/FIR received from players.",
            "counter",
            self.pli_received.load(Relaxed),
        );
        e.scalar(
            "rtmlive_pli_sent_total",
            "PLI sent to publishers.",
            "counter",
            self.pli_sent.load(Relaxed),
        );
        e.counter(
            "rtmlive_srtp_failures_total",
            "SRTP failures by kind.",
            &self.srtp_failures,
        );
        e.counter(
            "rtmlive_dtls_failures_total",
            "DTLS failures by kind.",
            &self.dtls_failures,
        );
        e.counter(
            "rtmlive_minisdp_requests_total",
            "miniSDP requests by reply status code.",
            &self.minisdp_requests,
        );
        e.scalar(
            "rtmlive_origin_pulls_started_total",
            "Origin pulls started.",
            "counter",
            self.origin_pulls_started.load(Relaxed),
        );
        e.counter(
            "rtmlive_origin_pulls_finished_total",
            "Origin pulls finished, by outcome.",
            &self.origin_pulls_finished,
        );
        let finished: u64 = PullOutcome::ALL
            .iter()
            .map(|o| self.origin_pulls_finished.get(*o))
            .sum();
        e.scalar(
            "rtmlive_origin_pulls_active",
            "Origin pulls in progress.",
            "gauge",
            self.origin_pulls_started
                .load(Relaxed)
                .saturating_sub(finished),
        );
        e.scalar(
            "rtmlive_switch_events_total",
            "Viewer source switches (co-host switching).",
            "counter",
            self.switch_events.load(Relaxed),
        );
        e.scalar(
            "rtmlive_gop_jumps_total",
            "Viewers moved forward to the newest keyframe.",
            "counter",
            self.gop_jumps.load(Relaxed),
        );
        e.histograms(
            "rtmlive_first_frame_stage_seconds",
            "Server-side first-frame stages, cumulative from offer received (player stages) or pull start (origin stages).",
            &self.stages.0,
        );
        e.scalar(
            "rtmlive_draining",
            "1 while shutdown is draining sessions.",
            "gauge",
            self.draining.load(Relaxed),
        );
        let queues = self.queues.lock().map(|q| q.clone()).unwrap_or_default();
        e.header(
            "rtmlive_stats_queue_dropped_total",
            "Samples dropped because a stats queue was full.",
            "counter",
        );
        for q in &queues {
            e.sample(
                "rtmlive_stats_queue_dropped_total",
                &[("queue", q.name())],
                q.dropped(),
            );
        }
        e.header(
            "rtmlive_stats_queue_depth",
            "Samples waiting in a stats queue.",
            "gauge",
        );
        for q in &queues {
            e.sample("rtmlive_stats_queue_depth", &[("queue", q.name())], q.len());
        }
    }
}

/// A Prometheus text-format writer.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Writes `# HELP` and `# TYPE` lines.
    pub fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// Writes one sample; label values are escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn scalar(&mut self, name: &str, help: &str, kind: &str, v: impl std::fmt::Display) {
        self.header(name, help, kind);
        self.sample(name, &[], v);
    }

    fn info(&mut self, name: &str, help: &str, labels: &[(&str, &str)]) {
        self.header(name, help, "gauge");
        self.sample(name, labels, 1);
    }

    fn counter<L: Label>(&mut self, name: &str, help: &str, c: &CounterVec<L>) {
        self.header(name, help, "counter");
        for l in L::ALL {
            self.sample(name, &[(L::NAME, l.as_str())], c.get(*l));
        }
    }

    fn gauge2<A: Label, B: Label>(&mut self, name: &str, help: &str, g: &GaugeVec2<A, B>) {
        self.header(name, help, "gauge");
        self.pairs(name, g);
    }

    fn gauge2_as_counter<A: Label, B: Label>(
        &mut self,
        name: &str,
        help: &str,
        g: &GaugeVec2<A, B>,
    ) {
        self.header(name, help, "counter");
        self.pairs(name, g);
    }

    fn pairs<A: Label, B: Label>(&mut self, name: &str, g: &GaugeVec2<A, B>) {
        for a in A::ALL {
            for b in B::ALL {
                self.sample(
                    name,
                    &[(A::NAME, a.as_str()), (B::NAME, b.as_str())],
                    g.get(*a, *b),
                );
            }
        }
    }

    fn histograms(&mut self, name: &str, help: &str, hs: &[Histogram]) {
        self.header(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        for (stage, h) in Stage::ALL.iter().zip(hs) {
            let mut cumulative = 0u64;
            for (i, b) in h.buckets.iter().enumerate() {
                cumulative += b.load(Relaxed);
                let le = STAGE_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), ToString::to_string);
                self.sample(
                    &bucket,
                    &[(Stage::NAME, stage.as_str()), ("le", &le)],
                    cumulative,
                );
            }
            let labels = [(Stage::NAME, stage.as_str())];
            let sum = h.sum_us.load(Relaxed) as f64 / 1e6;
            self.sample(&format!("{name}_sum"), &labels, sum);
            self.sample(&format!("{name}_count"), &labels, h.count.load(Relaxed));
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_stage(Stage::DtlsDone, Duration::from_millis(80));
        m.observe_stage(Stage::DtlsDone, Duration::from_secs(60));
        let text = m.render();
        assert!(text.contains(
            "rtmlive_first_frame_stage_seconds_bucket{stage=\"dtls_done\",le=\"0.075\"} 0\n"
        ));
        assert!(text.contains(
            "rtmlive_first_frame_stage_seconds_bucket{stage=\"dtls_done\",le=\"0.1\"} 1\n"
        ));
        assert!(text.contains(
            "rtmlive_first_frame_stage_seconds_bucket{stage=\"dtls_done\",le=\"+Inf\"} 2\n"
        ));
        assert!(
            text.contains("rtmlive_first_frame_stage_seconds_sum{stage=\"dtls_done\"} 60.08\n")
        );
        assert!(text.contains("rtmlive_first_frame_stage_seconds_count{stage=\"dtls_done\"} 2\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::default();
        e.sample("x", &[("a", "q\"b\\n\nl")], 1);
        assert_eq!(e.finish(), "x{a=\"q\\\"b\\\\n\\nl\"} 1\n");
    }

    #[test]
    fn every_family_has_one_type_line() {
        let text = Metrics::default().render();
        let mut seen = std::collections::HashSet::new();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap();
            assert!(seen.insert(name.to_owned()), "duplicate TYPE for {name}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name
                .strip_suffix("_bucket")
                .or_else(|| name.strip_suffix("_sum"))
                .or_else(|| name.strip_suffix("_count"))
                .filter(|f| seen.contains(*f))
                .unwrap_or(name);
            assert!(seen.contains(family), "sample {name} without TYPE");
        }
    }
}
