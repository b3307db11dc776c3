//! Every metric moves when its event happens: scrape, act, scrape again, and compare.
//! The set of samples that changed must be exactly the ones the case names.

use std::collections::BTreeMap;
use std::time::Duration;

use rtmlive::ops::*;

fn scrape(m: &Metrics) -> BTreeMap<String, f64> {
    m.render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

type Act = fn(&Metrics);

struct Case {
    name: &'static str,
    act: Act,
    /// Samples expected to change, with their change.
    moves: &'static [(&'static str, f64)],
}

const CASES: &[Case] = &[
    Case {
        name: "session opened",
        act: |m| m.session_opened(Protocol::MiniSdp, SessionState::Pending),
        moves: &[
            (
                "rtmlive_sessions{protocol=\"minisdp\",state=\"pending\"}",
                1.0,
            ),
            ("rtmlive_sessions_opened_total{protocol=\"minisdp\"}", 1.0),
        ],
    },
    Case {
        name: "session connected",
        act: |m| {
            m.session_state_changed(
                Protocol::Whep,
                SessionState::Pending,
                SessionState::Connected,
            )
        },
        moves: &[
            (
                "rtmlive_sessions{protocol=\"whep\",state=\"pending\"}",
                -1.0,
            ),
            (
                "rtmlive_sessions{protocol=\"whep\",state=\"connected\"}",
                1.0,
            ),
        ],
    },
    Case {
        name: "session closed",
        act: |m| m.session_closed(Protocol::HttpFlv, SessionState::Connected),
        moves: &[(
            "rtmlive_sessions{protocol=\"http_flv\",state=\"connected\"}",
            -1.0,
        )],
    },
    Case {
        name: "session rejected",
        act: |m| m.session_rejected(Protocol::MiniSdp, RejectReason::Limit),
        moves: &[(
            "rtmlive_sessions_rejected_total{protocol=\"minisdp\",reason=\"limit\"}",
            1.0,
        )],
    },
    Case {
        name: "stream started",
        act: |m| m.stream_started(StreamSource::Origin),
        moves: &[("rtmlive_streams{source=\"origin\"}", 1.0)],
    },
    Case {
        name: "stream stopped",
        act: |m| m.stream_stopped(StreamSource::Rtmp),
        moves: &[("rtmlive_streams{source=\"rtmp\"}", -1.0)],
    },
    Case {
        name: "egress",
        act: |m| m.egress(EgressKind::Media, 3, 3600),
        moves: &[
            ("rtmlive_egress_packets_total{kind=\"media\"}", 3.0),
            ("rtmlive_egress_bytes_total{kind=\"media\"}", 3600.0),
        ],
    },
    Case {
        name: "ingress",
        act: |m| m.ingress(IngressSource::Whip, 2, 2400),
        moves: &[
            ("rtmlive_ingress_packets_total{source=\"whip\"}", 2.0),
            ("rtmlive_ingress_bytes_total{source=\"whip\"}", 2400.0),
        ],
    },
    Case {
        name: "NACK received",
        act: |m| m.nack_received(5),
        moves: &[
            ("rtmlive_nack_received_total", 1.0),
            ("rtmlive_nack_seqs_received_total", 5.0),
        ],
    },
    Case {
        name: "retransmit",
        act: |m| m.retransmit(RetransmitOutcome::Sent),
        moves: &[("rtmlive_retransmits_total{outcome=\"sent\"}", 1.0)],
    },
    Case {
        name: "PLI received",
        act: |m| m.pli_received(),
        moves: &[("rtmlive_pli_received_total", 1.0)],
    },
    Case {
        name: "PLI sent",
        act: |m| m.plis_sent(1),
        moves: &[("rtmlive_pli_sent_total", 1.0)],
    },
    Case {
        name: "SRTP failure",
        act: |m| m.srtp_failure(SrtpFailure::Unprotect),
        moves: &[("rtmlive_srtp_failures_total{kind=\"unprotect\"}", 1.0)],
    },
    Case {
        name: "DTLS failure",
        act: |m| m.dtls_failure(DtlsFailure::Timeout),
        moves: &[("rtmlive_dtls_failures_total{kind=\"timeout\"}", 1.0)],
    },
    Case {
        name: "miniSDP request",
        act: |m| m.minisdp_request(104),
        moves: &[("rtmlive_minisdp_requests_total{status=\"104\"}", 1.0)],
    },
    Case {
        name: "miniSDP request with an unknown status",
        act: |m| m.minisdp_request(999),
        moves: &[("rtmlive_minisdp_requests_total{status=\"other\"}", 1.0)],
    },
    Case {
        name: "origin pull started",
        act: |m| m.origin_pull_started(),
        moves: &[
            ("rtmlive_origin_pulls_started_total", 1.0),
            ("rtmlive_origin_pulls_active", 1.0),
        ],
    },
    Case {
        name: "origin pull finished",
        act: |m| m.origin_pull_finished(PullOutcome::Stalled),
        moves: &[
            (
                "rtmlive_origin_pulls_finished_total{outcome=\"stalled\"}",
                1.0,
            ),
            ("rtmlive_origin_pulls_active", -1.0),
        ],
    },
    Case {
        name: "switch event",
        act: |m| m.switch_event(),
        moves: &[("rtmlive_switch_events_total", 1.0)],
    },
    Case {
        name: "GOP jump",
        act: |m| m.gop_jump(),
        moves: &[("rtmlive_gop_jumps_total", 1.0)],
    },
    Case {
        name: "draining",
        act: |m| m.set_draining(true),
        moves: &[("rtmlive_draining", 1.0)],
    },
];

#[test]
fn every_metric_moves_with_its_event() {
    let m = Metrics::default();
    // A pull in progress, so that "finished" can lower the active gauge.
    m.origin_pull_started();
    let mut failures = Vec::new();
    for case in CASES {
        let before = scrape(&m);
        (case.act)(&m);
        let after = scrape(&m);
        let changed: BTreeMap<&str, f64> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, v)| (k.as_str(), v - before.get(k).copied().unwrap_or(0.0)))
            .collect();
        let expected: BTreeMap<&str, f64> = case.moves.iter().copied().collect();
        if changed != expected {
            failures.push(format!(
                "{}: expected {expected:?}, changed {changed:?}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_stage_histogram_moves() {
    let m = Metrics::default();
    for stage in [
        Stage::AnswerSent,
        Stage::StunReceived,
        Stage::DtlsDone,
        Stage::FirstKeyframeSent,
        Stage::OriginConnected,
        Stage::OriginFirstByte,
        Stage::OriginFirstKeyframe,
    ] {
        let name = serde_json::to_value(stage).unwrap();
        let label = name.as_str().unwrap();
        let count = format!("rtmlive_first_frame_stage_seconds_count{{stage=\"{label}\"}}");
        let sum = format!("rtmlive_first_frame_stage_seconds_sum{{stage=\"{label}\"}}");
        let le_02 =
            format!("rtmlive_first_frame_stage_seconds_bucket{{stage=\"{label}\",le=\"0.2\"}}");
        let le_015 =
            format!("rtmlive_first_frame_stage_seconds_bucket{{stage=\"{label}\",le=\"0.15\"}}");
        let before = scrape(&m);
        m.observe_stage(stage, Duration::from_millis(180));
        let after = scrape(&m);
        assert_eq!(after[&count] - before[&count], 1.0, "{label}");
        assert!((after[&sum] - before[&sum] - 0.18).abs() < 1e-9, "{label}");
        assert_eq!(after[&le_02] - before[&le_02], 1.0, "{label}");
        assert_eq!(after[&le_015], before[&le_015], "{label}");
        assert_eq!(m.stage_count(stage), 1);
    }
}

#[test]
fn stats_queue_drops_are_exported() {
    let m = Metrics::default();
    let q = std::sync::Arc::new(StatsQueue::<u32>::new("session_stats", 2));
    m.register_queue(q.clone());
    for i in 0..5 {
        q.push(i);
    }
    let s = scrape(&m);
    assert_eq!(
        s["rtmlive_stats_queue_dropped_total{queue=\"session_stats\"}"],
        3.0
    );
    assert_eq!(s["rtmlive_stats_queue_depth{queue=\"session_stats\"}"], 2.0);
}
