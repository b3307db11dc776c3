//! Per-session measurements: first-frame stages, end-to-end latency, bitrate.
//!
//! Everything takes its time as an argument (`Instant` for intervals, `SystemTime` for the
//! wall clock that latency compares against the sender's NTP timestamps), so measurements are
//! reproducible in tests and cost nothing on the receive path beyond a few stores.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The stages of a session's start, in the order they happen on the miniSDP fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The offer left (miniSDP datagram, WHEP POST, or the HTTP-FLV GET).
    OfferSent,
    /// The answer arrived (for HTTP-FLV: the response headers).
    Answer,
    /// The STUN binding check succeeded.
    IceConnected,
    /// The DTLS handshake completed and SRTP keys were installed.
    DtlsDone,
    /// The first media packet was authenticated (FLV: the first media tag).
    FirstRtp,
    /// The first keyframe was complete (parameter sets + IDR, every packet present).
    FirstKeyframe,
    /// The first picture came out of a real decoder (`decode` feature only).
    FirstDecoded,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::OfferSent,
        Stage::Answer,
        Stage::IceConnected,
        Stage::DtlsDone,
        Stage::FirstRtp,
        Stage::FirstKeyframe,
        Stage::FirstDecoded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::OfferSent => "offer_sent",
            Stage::Answer => "answer",
            Stage::IceConnected => "ice_connected",
            Stage::DtlsDone => "dtls_done",
            Stage::FirstRtp => "first_rtp",
            Stage::FirstKeyframe => "first_keyframe",
            Stage::FirstDecoded => "first_decoded",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Milliseconds since the session started, per stage; `None` = not reached (or not applicable:
/// HTTP-FLV has no ICE or DTLS).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageTimes {
    pub offer_sent: Option<f64>,
    pub answer: Option<f64>,
    pub ice_connected: Option<f64>,
    pub dtls_done: Option<f64>,
    pub first_rtp: Option<f64>,
    pub first_keyframe: Option<f64>,
    pub first_decoded: Option<f64>,
}

impl StageTimes {
    pub fn get(&self, s: Stage) -> Option<f64> {
        match s {
            Stage::OfferSent => self.offer_sent,
            Stage::Answer => self.answer,
            Stage::IceConnected => self.ice_connected,
            Stage::DtlsDone => self.dtls_done,
            Stage::FirstRtp => self.first_rtp,
            Stage::FirstKeyframe => self.first_keyframe,
            Stage::FirstDecoded => self.first_decoded,
        }
    }

    /// The first-frame time: first decoded picture when a decoder ran, else the first complete
    /// keyframe.
    pub fn first_frame(&self) -> Option<f64> {
        self.first_decoded.or(self.first_keyframe)
    }
}

/// Records when each stage was first reached.
#[derive(Debug, Clone)]
pub struct StageClock {
    start: Instant,
    marks: [Option<Instant>; 7],
}

impl StageClock {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            marks: [None; 7],
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Marks `stage` at `now` unless it was reached before. Returns true the first time.
    pub fn mark(&mut self, stage: Stage, now: Instant) -> bool {
        let m = &mut self.marks[stage.index()];
        if m.is_none() {
            *m = Some(now);
            true
        } else {
            false
        }
    }

    pub fn reached(&self, stage: Stage) -> bool {
        self.marks[stage.index()].is_some()
    }

    pub fn at(&self, stage: Stage) -> Option<Instant> {
        self.marks[stage.index()]
    }

    pub fn times(&self) -> StageTimes {
        let ms = |s: Stage| {
            self.marks[s.index()]
                .map(|t| t.saturating_duration_since(self.start).as_secs_f64() * 1000.0)
        };
        StageTimes {
            offer_sent: ms(Stage::OfferSent),
            answer: ms(Stage::Answer),
            ice_connected: ms(Stage::IceConnected),
            dtls_done: ms(Stage::DtlsDone),
            first_rtp: ms(Stage::FirstRtp),
            first_keyframe: ms(Stage::FirstKeyframe),
            first_decoded: ms(Stage::FirstDecoded),
        }
    }
}

/// Seconds between 1900-01-01 (NTP era 0) and 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Converts a 64-bit NTP timestamp (RFC 3550: 32.32 fixed point) to wall time.
pub fn ntp_to_system(ntp: u64) -> Option<SystemTime> {
    let secs = (ntp >> 32).checked_sub(NTP_UNIX_OFFSET)?;
    let frac = ntp & 0xFFFF_FFFF;
    let nanos = (frac * 1_000_000_000) >> 32;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos as u32))
}

/// Converts wall time to a 64-bit NTP timestamp.
pub fn system_to_ntp(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// End-to-end latency from RTCP sender reports: the SR maps an RTP timestamp to the sender's
/// wall clock; a frame with RTP timestamp `ts` presented at local wall time `w` was captured
/// (as far as the sender knows) at `sr_wall + (ts - sr_rtp) / clock`, so latency = `w` minus
/// that. Meaningful when both clocks are one machine's (or NTP-synchronised).
#[derive(Debug, Clone, Default)]
pub struct LatencyMeter {
    mapping: Option<(SystemTime, u32, u32)>,
    samples_ms: Vec<f64>,
}

/// Samples kept for percentiles; beyond this, every other sample is discarded (bounded memory).
const MAX_LATENCY_SAMPLES: usize = 4096;

impl LatencyMeter {
    /// A sender report for a stream with RTP clock `clock_rate`.
    pub fn on_sender_report(&mut self, ntp: u64, rtp_ts: u32, clock_rate: u32) {
        if let Some(w) = ntp_to_system(ntp)
            && clock_rate > 0
        {
            self.mapping = Some((w, rtp_ts, clock_rate));
        }
    }

    /// A frame with RTP timestamp `rtp_ts` was presented at wall time `wall`.
    pub fn on_presented(&mut self, rtp_ts: u32, wall: SystemTime) -> Option<f64> {
        let (sr_wall, sr_rtp, clock) = self.mapping?;
        let delta = f64::from(rtp_ts.wrapping_sub(sr_rtp) as i32) / f64::from(clock);
        let captured = if delta >= 0.0 {
            sr_wall.checked_add(Duration::from_secs_f64(delta))?
        } else {
            sr_wall.checked_sub(Duration::from_secs_f64(-delta))?
        };
        let ms = match wall.duration_since(captured) {
            Ok(d) => d.as_secs_f64() * 1000.0,
            Err(e) => -e.duration().as_secs_f64() * 1000.0,
        };
        if self.samples_ms.len() >= MAX_LATENCY_SAMPLES {
            let mut i = 0;
            self.samples_ms.retain(|_| {
                i += 1;
                i % 2 == 0
            });
        }
        self.samples_ms.push(ms);
        Some(ms)
    }

    pub fn summary(&self) -> Option<Percentiles> {
        Percentiles::of(&self.samples_ms)
    }
}

/// Summary statistics of a sample.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles; `None` for an empty sample. NaNs are ignored.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let r = (p / 100.0 * v.len() as f64).ceil() as usize;
            v[r.clamp(1, v.len()) - 1]
        };
        Some(Self {
            count: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            min: v[0],
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: v[v.len() - 1],
        })
    }
}

/// Bytes over time.
#[derive(Debug, Clone, Copy, Default)]
pub struct BitrateMeter {
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl BitrateMeter {
    pub fn on_bytes(&mut self, n: usize, now: Instant) {
        self.bytes += n as u64;
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Mean rate in kbit/s between the first and the last byte.
    pub fn kbps(&self) -> Option<f64> {
        let d = self
            .last?
            .saturating_duration_since(self.first?)
            .as_secs_f64();
        (d > 0.0).then(|| self.bytes as f64 * 8.0 / d / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_mark_once() {
        let t0 = Instant::now();
        let mut c = StageClock::new(t0);
        assert!(c.mark(Stage::Answer, t0 + Duration::from_millis(12)));
        assert!(!c.mark(Stage::Answer, t0 + Duration::from_millis(50)));
        c.mark(Stage::FirstKeyframe, t0 + Duration::from_millis(80));
        let t = c.times();
        assert_eq!(t.answer, Some(12.0));
        assert_eq!(t.first_frame(), Some(80.0));
        assert_eq!(t.ice_connected, None);
    }

    #[test]
    fn ntp_round_trip() {
        let now = SystemTime::now();
        let back = ntp_to_system(system_to_ntp(now)).unwrap();
        let err = now.duration_since(back).unwrap_or_else(|e| e.duration());
        assert!(err < Duration::from_micros(1));
    }

    #[test]
    fn latency_from_sender_report() {
        let base = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut m = LatencyMeter::default();
        assert!(m.on_presented(0, base).is_none(), "no mapping yet");
        m.on_sender_report(system_to_ntp(base), 90_000, 90_000);
        // Frame captured 1 s after the SR instant, presented 150 ms after capture.
        let l = m
            .on_presented(180_000, base + Duration::from_millis(1150))
            .unwrap();
        assert!((l - 150.0).abs() < 0.01, "{l}");
        // Timestamp wrap between SR and frame.
        m.on_sender_report(system_to_ntp(base), u32::MAX - 8_999, 90_000);
        let l = m
            .on_presented(1_000, base + Duration::from_millis(300))
            .unwrap();
        assert!((l - 188.89).abs() < 0.01, "{l}");
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&v).unwrap();
        assert_eq!(
            (p.p50, p.p90, p.p99, p.max, p.min),
            (50.0, 90.0, 99.0, 100.0, 1.0)
        );
        assert!(Percentiles::of(&[]).is_none());
        assert_eq!(Percentiles::of(&[7.0]).unwrap().p99, 7.0);
    }

    #[test]
    fn bitrate() {
        let t0 = Instant::now();
        let mut b = BitrateMeter::default();
        b.on_bytes(125_000, t0);
        b.on_bytes(125_000, t0 + Duration::from_secs(1));
        assert_eq!(b.kbps(), Some(2000.0));
    }
}
