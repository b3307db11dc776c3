//! Reports: per-session results, the aggregate over a run, and their three renderings (a human
//! summary, JSON for machines, HTML with inline SVG charts for people).
//!
//! The JSON schema is documented field by field in `docs/player-test.md`; `SCHEMA` names its
//! version and changes whenever a field changes meaning.

pub mod html;

use std::fmt::Write as _;

use crate::jitter::JitterStats;
use crate::measure::{Percentiles, Stage, StageTimes};
use crate::picture::PictureSize;
use crate::playout::PlayoutStats;

/// Version tag of the JSON report.
pub const SCHEMA: &str = "player-test/report/v1";

/// A first frame under this many milliseconds counts toward 秒开率 ("open within a second").
pub const OPEN_FAST_MS: f64 = 1000.0;

/// Loss as the network delivered it and as the player saw it after NACK recovery.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossReport {
    /// Media packets expected (highest extended seq − first + 1, summed over tracks).
    pub packets_expected: u64,
    /// Packets NACKed at least once ÷ expected: loss before recovery.
    pub before_recovery: f64,
    /// Packets never received by the end ÷ expected: loss after recovery (should be 0).
    pub after_recovery: f64,
}

/// Everything measured about one playback session.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionReport {
    pub url: String,
    /// `rtm`, `rtm-v0`, `whep` or `flv`.
    pub protocol: String,
    /// Session index within a run (0 for a single play).
    pub index: usize,
    /// True when the session reached its first frame and ended without error.
    pub ok: bool,
    pub error: Option<String>,
    pub stages: StageTimes,
    /// First decoded picture if decoding, else first complete keyframe; ms since start.
    pub first_frame_ms: Option<f64>,
    pub duration_ms: f64,
    pub video: PlayoutStats,
    pub audio: PlayoutStats,
    pub video_buffer: JitterStats,
    pub audio_buffer: JitterStats,
    /// Stalls of video (the track viewers notice), render gap > 200 ms.
    pub stalls: u64,
    pub stall_time_ms: f64,
    /// Stall time ÷ time played.
    pub stall_ratio: f64,
    /// Frames released to the decoder/renderer, both tracks.
    pub frames_released: u64,
    /// Frames lost for good (only ever by a re-pull); the no-drop invariant says 0.
    pub frames_dropped: u64,
    pub nacks_sent: u64,
    pub retransmits_received: u64,
    pub plis_sent: u64,
    pub repulls: u64,
    pub loss: LossReport,
    /// End-to-end latency (sender NTP via RTCP SR vs local wall clock at presentation).
    pub latency_ms: Option<Percentiles>,
    pub bitrate_kbps: Option<f64>,
    pub bytes_received: u64,
    /// Frames the decoder produced (`decode` feature), else null.
    pub frames_decoded: Option<u64>,
    /// When the server told this player to leave (a miniSDP stop packet: the edge is
    /// draining, re-pull elsewhere), ms since start, and the packet's status.
    #[serde(default)]
    pub server_stop_ms: Option<f64>,
    #[serde(default)]
    pub server_stop_status: Option<u16>,
    /// When the server's RTCP BYE arrived, ms since start.
    #[serde(default)]
    pub bye_ms: Option<f64>,
    /// When the last media packet arrived, ms since start.
    #[serde(default)]
    pub last_media_ms: Option<f64>,
    /// The video's picture size and each change of it, as announced by the parameter sets in
    /// front of keyframes (at most [`crate::session::MAX_PICTURE_SIZES`] entries).
    #[serde(default)]
    pub video_sizes: Vec<PictureSize>,
}

impl SessionReport {
    /// A report for a session that never got going.
    pub fn failed(url: &str, protocol: &str, index: usize, error: String) -> Self {
        Self {
            url: url.to_owned(),
            protocol: protocol.to_owned(),
            index,
            ok: false,
            error: Some(error),
            stages: StageTimes::default(),
            first_frame_ms: None,
            duration_ms: 0.0,
            video: PlayoutStats::default(),
            audio: PlayoutStats::default(),
            video_buffer: JitterStats::default(),
            audio_buffer: JitterStats::default(),
            stalls: 0,
            stall_time_ms: 0.0,
            stall_ratio: 0.0,
            frames_released: 0,
            frames_dropped: 0,
            nacks_sent: 0,
            retransmits_received: 0,
            plis_sent: 0,
            repulls: 0,
            loss: LossReport::default(),
            latency_ms: None,
            bitrate_kbps: None,
            bytes_received: 0,
            frames_decoded: None,
            server_stop_ms: None,
            server_stop_status: None,
            bye_ms: None,
            last_media_ms: None,
            video_sizes: Vec::new(),
        }
    }
}

/// Median time of each stage over the sessions that reached it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageSummary {
    pub stage: Stage,
    pub sessions: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
}

/// The aggregate over all sessions of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Aggregate {
    pub sessions: usize,
    pub ok: usize,
    pub failed: usize,
    pub first_frame_ms: Option<Percentiles>,
    /// 秒开率: sessions with a first frame under 1 s ÷ all sessions (failures count as slow).
    pub open_within_1s: f64,
    pub stages: Vec<StageSummary>,
    /// Total stall time ÷ total played time over all sessions.
    pub stall_ratio: f64,
    pub stalls: u64,
    pub frames_released: u64,
    pub frames_dropped: u64,
    pub nacks_sent: u64,
    pub retransmits_received: u64,
    pub repulls: u64,
    pub latency_ms: Option<Percentiles>,
    pub loss_before_recovery: f64,
    pub loss_after_recovery: f64,
}

impl Aggregate {
    pub fn of(sessions: &[SessionReport]) -> Self {
        let ff: Vec<f64> = sessions.iter().filter_map(|s| s.first_frame_ms).collect();
        let fast = ff.iter().filter(|&&x| x < OPEN_FAST_MS).count();
        let stages = Stage::ALL
            .iter()
            .filter_map(|&st| {
                let v: Vec<f64> = sessions.iter().filter_map(|s| s.stages.get(st)).collect();
                Percentiles::of(&v).map(|p| StageSummary {
                    stage: st,
                    sessions: p.count,
                    p50_ms: p.p50,
                    p90_ms: p.p90,
                })
            })
            .collect();
        let played: f64 = sessions.iter().map(|s| s.video.played_ms).sum();
        let stall_time: f64 = sessions.iter().map(|s| s.stall_time_ms).sum();
        let lat: Vec<f64> = sessions
            .iter()
            .filter_map(|s| s.latency_ms.map(|l| l.p50))
            .collect();
        let expected: u64 = sessions.iter().map(|s| s.loss.packets_expected).sum();
        let weighted = |f: fn(&LossReport) -> f64| {
            if expected == 0 {
                0.0
            } else {
                sessions
                    .iter()
                    .map(|s| f(&s.loss) * s.loss.packets_expected as f64)
                    .sum::<f64>()
                    / expected as f64
            }
        };
        let ok = sessions.iter().filter(|s| s.ok).count();
        Self {
            sessions: sessions.len(),
            ok,
            failed: sessions.len() - ok,
            first_frame_ms: Percentiles::of(&ff),
            open_within_1s: if sessions.is_empty() {
                0.0
            } else {
                fast as f64 / sessions.len() as f64
            },
            stages,
            stall_ratio: if played > 0.0 {
                stall_time / played
            } else {
                0.0
            },
            stalls: sessions.iter().map(|s| s.stalls).sum(),
            frames_released: sessions.iter().map(|s| s.frames_released).sum(),
            frames_dropped: sessions.iter().map(|s| s.frames_dropped).sum(),
            nacks_sent: sessions.iter().map(|s| s.nacks_sent).sum(),
            retransmits_received: sessions.iter().map(|s| s.retransmits_received).sum(),
            repulls: sessions.iter().map(|s| s.repulls).sum(),
            latency_ms: Percentiles::of(&lat),
            loss_before_recovery: weighted(|l| l.before_recovery),
            loss_after_recovery: weighted(|l| l.after_recovery),
        }
    }
}

/// Load-generator cost, so benchmarks can subtract the client's share of the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClientCost {
    /// User + system CPU time of the player-test process over the run (getrusage).
    pub cpu_ms: f64,
    pub cpu_ms_per_session: f64,
    pub wall_ms: f64,
    pub threads: usize,
}

/// A whole run: what `--json` prints.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub schema: String,
    pub url: String,
    /// The options of the run as given on the command line (free-form, for the record).
    pub options: serde_json::Value,
    pub aggregate: Aggregate,
    pub client: ClientCost,
    pub sessions: Vec<SessionReport>,
}

impl Report {
    pub fn new(
        url: &str,
        options: serde_json::Value,
        sessions: Vec<SessionReport>,
        client: ClientCost,
    ) -> Self {
        Self {
            schema: SCHEMA.to_owned(),
            url: url.to_owned(),
            options,
            aggregate: Aggregate::of(&sessions),
            client,
            sessions,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human summary: stages of a single session, or the aggregate of many.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let a = &self.aggregate;
        let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.1} ms"));
        if let [s] = self.sessions.as_slice() {
            let _ = writeln!(o, "{} ({})", s.url, s.protocol);
            let mut prev = 0.0;
            for st in Stage::ALL {
                if let Some(t) = s.stages.get(st) {
                    let _ = writeln!(o, "  {:<15} {:>9.1} ms  (+{:.1})", st.name(), t, t - prev);
                    prev = t;
                }
            }
            let _ = writeln!(o, "  first frame     {}", f(s.first_frame_ms));
            if let Some(e) = &s.error {
                let _ = writeln!(o, "  error: {e}");
            }
            if let Some(at) = s.server_stop_ms {
                let _ = writeln!(
                    o,
                    "  server asked to leave (stop packet, status {}) at {at:.0} ms{}",
                    s.server_stop_status.map_or("?".into(), |c| c.to_string()),
                    s.last_media_ms
                        .map_or(String::new(), |m| format!("; media until {m:.0} ms"))
                );
            }
            if let Some(at) = s.bye_ms {
                let _ = writeln!(o, "  server ended the session (RTCP BYE) at {at:.0} ms");
            }
            let _ = writeln!(
                o,
                "  played {:.1} s: {} frames released, {} dropped, {} stalls ({:.0} ms, ratio {:.3})",
                s.video.played_ms.max(s.audio.played_ms) / 1000.0,
                s.frames_released,
                s.frames_dropped,
                s.stalls,
                s.stall_time_ms,
                s.stall_ratio
            );
            let _ = writeln!(
                o,
                "  NACKs {} · recovered {} · PLIs {} · re-pulls {} · loss {:.2}% before / {:.2}% after recovery",
                s.nacks_sent,
                s.retransmits_received,
                s.plis_sent,
                s.repulls,
                s.loss.before_recovery * 100.0,
                s.loss.after_recovery * 100.0
            );
            let _ = writeln!(
                o,
                "  latency {} · bitrate {}",
                s.latency_ms.map_or("-".to_owned(), |l| format!(
                    "p50 {:.0} ms (max {:.0})",
                    whole(l.p50),
                    whole(l.max)
                )),
                s.bitrate_kbps
                    .map_or("-".to_owned(), |b| format!("{b:.0} kbit/s"))
            );
        } else {
            let _ = writeln!(
                o,
                "{}: {} sessions, {} ok, {} failed",
                self.url, a.sessions, a.ok, a.failed
            );
            if let Some(p) = a.first_frame_ms {
                let _ = writeln!(
                    o,
                    "  first frame p50 {:.1} ms · p90 {:.1} ms · p99 {:.1} ms · 秒开率 {:.1}%",
                    p.p50,
                    p.p90,
                    p.p99,
                    a.open_within_1s * 100.0
                );
            }
            for s in &a.stages {
                let _ = writeln!(
                    o,
                    "  {:<15} p50 {:>8.1} ms  p90 {:>8.1} ms  (n={})",
                    s.stage.name(),
                    s.p50_ms,
                    s.p90_ms,
                    s.sessions
                );
            }
            let _ = writeln!(
                o,
                "  stall ratio {:.4} ({} stalls) · frames released {} · dropped {} · re-pulls {}",
                a.stall_ratio, a.stalls, a.frames_released, a.frames_dropped, a.repulls
            );
            let _ = writeln!(
                o,
                "  loss {:.2}% before / {:.2}% after recovery · latency p50 {}",
                a.loss_before_recovery * 100.0,
                a.loss_after_recovery * 100.0,
                a.latency_ms
                    .map_or("-".to_owned(), |l| format!("{:.0} ms", whole(l.p50)))
            );
        }
        let c = &self.client;
        let _ = writeln!(
            o,
            "  client cost: {:.1} ms CPU ({:.3} ms/session) over {:.1} s wall, {} threads",
            c.cpu_ms,
            c.cpu_ms_per_session,
            c.wall_ms / 1000.0,
            c.threads
        );
        o
    }
}

/// Rounds for display without printing "-0" for tiny negative values (clock skew on one host).
fn whole(v: f64) -> f64 {
    let r = v.round();
    if r == 0.0 { 0.0 } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(i: usize, ff: Option<f64>) -> SessionReport {
        let mut s = SessionReport::failed("rtm://h:1/a/b", "rtm", i, "x".into());
        if let Some(ff) = ff {
            s.ok = true;
            s.error = None;
            s.first_frame_ms = Some(ff);
            s.stages.offer_sent = Some(0.1);
            s.stages.answer = Some(ff / 4.0);
            s.stages.first_keyframe = Some(ff);
            s.video.played_ms = 10_000.0;
            s.stall_time_ms = 100.0;
            s.loss = LossReport {
                packets_expected: 1000,
                before_recovery: 0.1,
                after_recovery: 0.0,
            };
        }
        s
    }

    #[test]
    fn aggregate_percentiles_and_open_rate() {
        let sessions: Vec<_> = (0..10)
            .map(|i| sample(i, (i < 9).then_some(100.0 * (i as f64 + 1.0) + 50.0)))
            .collect();
        let a = Aggregate::of(&sessions);
        assert_eq!((a.sessions, a.ok, a.failed), (10, 9, 1));
        // 150, 250 … 950 are under 1 s: 9 of 10 sessions (the failure counts as not opened).
        assert!((a.open_within_1s - 0.9).abs() < 1e-9);
        let p = a.first_frame_ms.unwrap();
        assert_eq!((p.p50, p.p90), (550.0, 950.0)); // nearest rank: ceil(0.9 × 9) = 9th
        assert!((a.stall_ratio - 0.01).abs() < 1e-9);
        assert!((a.loss_before_recovery - 0.1).abs() < 1e-9);
        assert_eq!(a.stages[0].stage, Stage::OfferSent);
    }

    /// The JSON is the documented schema: these keys exist with these types. A change here
    /// must come with a change to docs/player-test.md and to `SCHEMA`.
    #[test]
    fn json_schema_is_stable() {
        let r = Report::new(
            "rtm://h:1/a/b",
            serde_json::json!({"sessions": 2}),
            vec![sample(0, Some(300.0)), sample(1, None)],
            ClientCost::default(),
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        for k in [
            "sessions",
            "ok",
            "failed",
            "first_frame_ms",
            "open_within_1s",
            "stages",
            "stall_ratio",
            "stalls",
            "frames_released",
            "frames_dropped",
            "nacks_sent",
            "retransmits_received",
            "repulls",
            "latency_ms",
            "loss_before_recovery",
            "loss_after_recovery",
        ] {
            assert!(v["aggregate"].get(k).is_some(), "aggregate.{k}");
        }
        for k in ["p50", "p90", "p99", "mean", "min", "max", "count"] {
            assert!(
                v["aggregate"]["first_frame_ms"][k].is_number(),
                "first_frame_ms.{k}"
            );
        }
        for k in ["cpu_ms", "cpu_ms_per_session", "wall_ms", "threads"] {
            assert!(v["client"][k].is_number(), "client.{k}");
        }
        let s = &v["sessions"][0];
        for k in [
            "url",
            "protocol",
            "index",
            "ok",
            "error",
            "stages",
            "first_frame_ms",
            "duration_ms",
            "video",
            "audio",
            "video_buffer",
            "audio_buffer",
            "stalls",
            "stall_time_ms",
            "stall_ratio",
            "frames_released",
            "frames_dropped",
            "nacks_sent",
            "retransmits_received",
            "plis_sent",
            "repulls",
            "loss",
            "latency_ms",
            "bitrate_kbps",
            "bytes_received",
            "frames_decoded",
        ] {
            assert!(s.get(k).is_some(), "session.{k}");
        }
        for st in Stage::ALL {
            assert!(s["stages"].get(st.name()).is_some(), "stages.{}", st.name());
        }
        assert!(v["sessions"][1]["error"].is_string());
        // And it reads back.
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn summary_names_every_reached_stage() {
        let r = Report::new(
            "u",
            serde_json::Value::Null,
            vec![sample(0, Some(300.0))],
            ClientCost::default(),
        );
        let s = r.summary();
        assert!(
            s.contains("offer_sent") && s.contains("first_keyframe") && s.contains("300.0 ms"),
            "{s}"
        );
    }
}
