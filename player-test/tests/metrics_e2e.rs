//! Issue 7's acceptance on the real server (in-process, loopback), with player-test as the
//! viewer:
//!
//! * every listed metric moves when its event happens: scrape `/metrics`, act (play over
//!   miniSDP, WHEP and HTTP-FLV, a refused offer, an impaired player that NACKs, a late player
//!   that is jumped to the newest GOP, an admin kick), scrape again;
//! * with the statistics consumer stalled (and `/metrics` plus the session list hammered), the
//!   player's first-frame time and media packet rate stay within a margin of a baseline run.
//!
//! Two servers: `origin` plays the demo stream; `edge` has no stream of its own and pulls
//! `live/*` from `origin`'s HTTP-FLV output, so origin pulls, their stages and ingress are real.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use player_test::PlayOptions;
use player_test::impair::LinkSpec;
use rtmlive::config::{Hashing, UpstreamConfig};
use rtmlive::server::{RunningServer, StartOptions, StatsSink, start, start_with};
use support::*;

/// A demo server (the origin of the edge below, and the server of the isolation test).
async fn demo_server(options: StartOptions, stats_capacity: u32) -> RunningServer {
    let mut c = base_config();
    c.metrics.stats_queue_capacity = stats_capacity;
    let s = start_with(&c, options).await.expect("server starts");
    wait_for_demo(&s).await;
    s
}

/// An edge without streams of its own, pulling `live/*` from `origin`'s HTTP-FLV output.
async fn edge_of(origin: &RunningServer) -> RunningServer {
    let mut c = base_config();
    c.demo.enabled = false;
    c.listen.rtmp.enabled = false;
    c.origins.upstreams = vec![UpstreamConfig {
        app: "live".into(),
        urls: vec![format!("http://{}/live/{{stream}}.flv", origin.http_addr)],
        hashing: Hashing::Ordered,
    }];
    // A viewer more than 300 ms behind is moved to the newest keyframe (GOP jump).
    c.limits.viewer_max_lag = Some(Duration::from_millis(300));
    // Short enough for the DTLS-failure act below, long enough for the 1 s-delay player.
    c.timeouts.dtls_handshake = Duration::from_secs(4);
    start(&c).await.expect("edge starts")
}

fn opts(url: String, secs: u64, impair: LinkSpec) -> PlayOptions {
    PlayOptions {
        url,
        duration: Duration::from_secs(secs),
        first_frame_timeout: Duration::from_secs(8),
        impair,
        ..PlayOptions::default()
    }
}

const MINISDP_CONNECTED: &str = r#"rtmlive_sessions{protocol="minisdp",state="connected"}"#;

fn stage_count(stage: &str) -> String {
    format!(r#"rtmlive_first_frame_stage_seconds_count{{stage="{stage}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_moves_when_its_event_happens() {
    let origin = demo_server(StartOptions::default(), 8192).await;
    let edge = edge_of(&origin).await;
    let (e, o) = (edge.http_addr, origin.http_addr);

    // 1. miniSDP playback through the edge, which pulls from the origin. Watched while it
    //    plays (gauges, session list, rates), then kicked through the admin API.
    let s0 = Scrape::take(e).await;
    let o0 = Scrape::take(o).await;
    // Long enough that the kick, not the end of playback, ends it even on a slow machine.
    let player = tokio::spawn(play(opts(
        format!("rtm://{}/live/demo", edge.media_addr),
        30,
        LinkSpec::default(),
    )));
    let during = scrape_until(e, Duration::from_secs(8), "miniSDP connected", |s| {
        s.get(MINISDP_CONNECTED) >= 1.0
    })
    .await;
    assert_eq!(during.get(r#"rtmlive_streams{source="origin"}"#), 1.0);
    assert_eq!(
        during.get(r#"rtmlive_stream_viewers{app="live",stream="demo"}"#),
        1.0
    );
    assert!(during.get(r#"rtmlive_origin_pulls_active"#) >= 1.0);
    let url = format!("http://{o}/live/{{stream}}.flv");
    assert_eq!(
        during.get(&format!(
            r#"rtmlive_origin_healthy{{app="live",url="{url}"}}"#
        )),
        1.0
    );
    // The edge's viewer is an HTTP-FLV session of the origin.
    let o1 = scrape_until(o, Duration::from_secs(3), "origin FLV session", |s| {
        s.get(r#"rtmlive_sessions{protocol="http_flv",state="connected"}"#) >= 1.0
    })
    .await;
    assert_grew(
        &o0,
        &o1,
        "origin serving the edge",
        &[
            r#"rtmlive_sessions_opened_total{protocol="http_flv"}"#,
            r#"rtmlive_egress_packets_total{kind="flv"}"#,
            r#"rtmlive_egress_bytes_total{kind="flv"}"#,
        ],
    );

    // Session list and stream rates (snapshots published about once a second).
    let session = {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, body) = http(e, "GET", "/api/v1/sessions?protocol=minisdp").await;
            assert_eq!(status, 200);
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            let found = v["sessions"].as_array().and_then(|a| {
                a.iter()
                    .find(|s| s["state"] == "connected" && s["bytes_sent"].as_u64() > Some(0))
                    .cloned()
            });
            if let Some(s) = found {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "no connected session listed: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(session["app"], "live");
    assert_eq!(session["stream"], "demo");
    assert!(session["remote_addr"].is_string());
    assert!(session["packets_sent"].as_u64() > Some(0));
    let stream = {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (_, body) = http(e, "GET", "/api/v1/streams/live/demo").await;
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if v["ingress_bitrate_bps"].as_u64() > Some(0)
                && v["egress_bitrate_bps"].as_u64() > Some(0)
            {
                break v;
            }
            assert!(Instant::now() < deadline, "no stream rates: {body}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    assert_eq!(stream["source"], "origin");
    assert!(stream["uptime_ms"].as_u64() > Some(0));

    // Kick it. The admin API answers from snapshots published about once a second, so the id
    // is taken from the current list (a listed, still playing session must be kickable).
    let (status, _) = http(e, "DELETE", "/api/v1/sessions/no-such-session").await;
    assert_eq!(status, 404, "kicking an unknown session");
    let mut id = session["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = http(e, "DELETE", &format!("/api/v1/sessions/{id}")).await;
        if status == 204 {
            break;
        }
        let (_, list) = http(e, "GET", "/api/v1/sessions?protocol=minisdp").await;
        assert!(
            Instant::now() < deadline,
            "kick of {id} answered {status}; sessions: {list}"
        );
        let v: serde_json::Value = serde_json::from_str(&list).expect("JSON");
        if let Some(cur) = v["sessions"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["state"] == "connected"))
            .and_then(|s| s["id"].as_str())
        {
            id = cur.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let s1 = scrape_until(e, Duration::from_secs(3), "kicked session gone", |s| {
        s.get(MINISDP_CONNECTED) == 0.0
    })
    .await;
    let report = player.await.expect("player task");
    assert!(
        report.duration_ms < 25_000.0,
        "the kicked player ended early (BYE), not after its 30 s: {report:?}"
    );
    assert!(report.first_frame_ms.is_some());
    assert_grew(
        &s0,
        &s1,
        "miniSDP play",
        &[
            r#"rtmlive_sessions_opened_total{protocol="minisdp"}"#,
            r#"rtmlive_minisdp_requests_total{status="0"}"#,
            r#"rtmlive_egress_packets_total{kind="media"}"#,
            r#"rtmlive_egress_bytes_total{kind="media"}"#,
            r#"rtmlive_egress_packets_total{kind="control"}"#,
            r#"rtmlive_egress_packets_total{kind="rtcp"}"#,
            r#"rtmlive_ingress_packets_total{source="player"}"#,
            r#"rtmlive_ingress_bytes_total{source="player"}"#,
            r#"rtmlive_ingress_packets_total{source="origin"}"#,
            r#"rtmlive_ingress_bytes_total{source="origin"}"#,
            r#"rtmlive_origin_pulls_started_total"#,
            &stage_count("answer_sent"),
            &stage_count("stun_received"),
            &stage_count("dtls_done"),
            &stage_count("first_keyframe_sent"),
            &stage_count("origin_connected"),
            &stage_count("origin_first_byte"),
            &stage_count("origin_first_keyframe"),
        ],
    );

    // 2. WHEP.
    let s2 = Scrape::take(e).await;
    let r = play(opts(
        format!("http://{e}/whep/live/demo"),
        2,
        LinkSpec::default(),
    ))
    .await;
    assert!(r.ok, "WHEP play: {:?}", r.error);
    let s3 = Scrape::take(e).await;
    assert_grew(
        &s2,
        &s3,
        "WHEP play",
        &[
            r#"rtmlive_sessions_opened_total{protocol="whep"}"#,
            &stage_count("answer_sent"),
            &stage_count("dtls_done"),
            &stage_count("first_keyframe_sent"),
        ],
    );

    // 3. A refused offer: no origin serves app `nosuch` → 104.
    let r = play(opts(
        format!("rtm://{}/nosuch/x", edge.media_addr),
        2,
        LinkSpec::default(),
    ))
    .await;
    assert!(!r.ok);
    let s4 = Scrape::take(e).await;
    assert_grew(
        &s3,
        &s4,
        "refused offer",
        &[
            r#"rtmlive_minisdp_requests_total{status="104"}"#,
            r#"rtmlive_sessions_rejected_total{protocol="minisdp",reason="not_found"}"#,
        ],
    );

    // 4. Loss: the player NACKs, the edge retransmits from its cache.
    let r = play(opts(
        format!("rtm://{}/live/demo", edge.media_addr),
        3,
        LinkSpec {
            loss: 0.10,
            delay: Duration::from_millis(20),
            ..LinkSpec::default()
        },
    ))
    .await;
    assert!(r.ok && r.nacks_sent > 0, "impaired play: {r:?}");
    let s5 = Scrape::take(e).await;
    assert_grew(
        &s4,
        &s5,
        "NACKs",
        &[
            "rtmlive_nack_received_total",
            "rtmlive_nack_seqs_received_total",
            r#"rtmlive_retransmits_total{outcome="sent"}"#,
            r#"rtmlive_egress_packets_total{kind="retransmit"}"#,
        ],
    );

    // 5. A late player: its handshake takes seconds (1 s receive delay), by which time newer
    //    GOPs exist and its cursor is more than `viewer_max_lag_ms` behind: a GOP jump.
    let r = play(opts(
        format!("rtm://{}/live/demo", edge.media_addr),
        6,
        LinkSpec {
            delay: Duration::from_millis(1000),
            ..LinkSpec::default()
        },
    ))
    .await;
    assert!(r.first_frame_ms.is_some(), "late play: {r:?}");
    let s6 = Scrape::take(e).await;
    assert_grew(&s5, &s6, "late viewer", &["rtmlive_gop_jumps_total"]);

    // 6. HTTP-FLV from the edge: listed with its byte count, then kicked.
    let player = tokio::spawn(play(opts(
        format!("http://{e}/live/demo.flv"),
        8,
        LinkSpec::default(),
    )));
    let flv = {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (_, body) = http(e, "GET", "/api/v1/sessions?protocol=http_flv").await;
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            let found = v["sessions"].as_array().and_then(|a| {
                a.iter()
                    .find(|s| s["bytes_sent"].as_u64() > Some(0))
                    .cloned()
            });
            if let Some(s) = found {
                break s;
            }
            assert!(Instant::now() < deadline, "no FLV session listed: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(flv["stream"], "demo");
    let id = flv["id"].as_str().expect("id");
    let (status, _) = http(e, "DELETE", &format!("/api/v1/sessions/{id}")).await;
    assert_eq!(status, 204, "FLV kick");
    let r = player.await.expect("player task");
    assert!(r.first_frame_ms.is_some(), "FLV play: {r:?}");
    assert!(
        r.duration_ms < 7_000.0,
        "the kicked FLV player ended early: {r:?}"
    );
    let s7 = Scrape::take(e).await;
    assert_grew(
        &s6,
        &s7,
        "HTTP-FLV play",
        &[
            r#"rtmlive_sessions_opened_total{protocol="http_flv"}"#,
            r#"rtmlive_egress_bytes_total{kind="flv"}"#,
        ],
    );
    // 7. A player that hears nothing (all its incoming datagrams lost): its STUN checks reach
    //    the edge, DTLS never completes, the session ends with a DTLS timeout.
    let r = play(PlayOptions {
        first_frame_timeout: Duration::from_secs(6),
        ..opts(
            format!("rtm://{}/live/demo", edge.media_addr),
            6,
            LinkSpec {
                loss: 1.0,
                ..LinkSpec::default()
            },
        )
    })
    .await;
    assert!(!r.ok);
    let s8 = scrape_until(e, Duration::from_secs(3), "DTLS timeout", |s| {
        s.get(r#"rtmlive_dtls_failures_total{kind="timeout"}"#) > 0.0
    })
    .await;
    assert_grew(&s7, &s8, "deaf player", &[&stage_count("stun_received")]);

    // Every session has ended: no gauge is left behind.
    let end = scrape_until(e, Duration::from_secs(5), "all sessions closed", |s| {
        s.0.iter()
            .filter(|(k, _)| k.starts_with("rtmlive_sessions{"))
            .all(|(_, v)| *v == 0.0)
    })
    .await;
    assert!(end.get(r#"rtmlive_stats_queue_dropped_total{queue="sessions"}"#) == 0.0);

    edge.stop().await;
    origin.stop().await;
}

/// Median of first-frame times (ms) and media packet rates (packets/s) of `n` plays.
async fn measure(server: &RunningServer, n: usize) -> (f64, f64) {
    let mut first = Vec::new();
    let mut rate = Vec::new();
    for _ in 0..n {
        let r = play(opts(
            format!("rtm://{}/live/demo", server.media_addr),
            3,
            LinkSpec::default(),
        ))
        .await;
        assert!(r.ok, "play: {:?}", r.error);
        assert_eq!(r.frames_dropped, 0);
        first.push(r.first_frame_ms.expect("first frame"));
        rate.push(r.loss.packets_expected as f64 * 1000.0 / r.duration_ms);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut first), median(&mut rate))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_stats_consumer_does_not_slow_media() {
    // Baseline: the default consumer, nobody scraping.
    let baseline = demo_server(StartOptions::default(), 8192).await;
    let (base_ff, base_rate) = measure(&baseline, 3).await;
    baseline.stop().await;

    // Stalled: the consumer blocks forever on its first sample (until the test releases it),
    // the queue is tiny so it overflows within seconds, and /metrics and the session list are
    // requested in a loop.
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let sink: StatsSink = Box::new(move |_sample| {
        let _ = blocked.recv();
    });
    let stalled = demo_server(
        StartOptions {
            stats_sink: Some(sink),
        },
        4,
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (addr, stop) = (stalled.http_addr, stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = http(addr, "GET", "/metrics").await;
                let _ = http(addr, "GET", "/api/v1/sessions").await;
                n += 1;
            }
            n
        })
    };
    let (ff, rate) = measure(&stalled, 3).await;
    stop.store(true, Ordering::Relaxed);
    let scrapes = hammer.await.expect("scraper");
    let after = Scrape::take(stalled.http_addr).await;
    drop(release);
    stalled.stop().await;

    eprintln!(
        "baseline: first frame {base_ff:.1} ms, {base_rate:.1} pkt/s; stalled consumer + {scrapes} scrapes: {ff:.1} ms, {rate:.1} pkt/s"
    );
    assert!(scrapes > 10, "the scraper ran ({scrapes})");
    assert!(
        after.get(r#"rtmlive_stats_queue_dropped_total{queue="sessions"}"#) > 0.0,
        "the consumer really stalled: samples were dropped"
    );
    // Robust margins: 2× (plus 150 ms of scheduling noise on a shared machine) for the first
    // frame; at least half the packet rate.
    assert!(
        ff <= 2.0 * base_ff + 150.0,
        "first frame {ff:.1} ms vs baseline {base_ff:.1} ms"
    );
    assert!(
        rate >= base_rate / 2.0,
        "packet rate {rate:.1}/s vs baseline {base_rate:.1}/s"
    );
}
