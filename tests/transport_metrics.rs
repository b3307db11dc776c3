//! A shard reports to `Metrics`: session gauges by state, first-frame stages, traffic, NACKs,
//! retransmissions (hit and miss), PLI, SRTP and DTLS failures, all in memory with a real
//! STUN/DTLS/SRTP client. Traffic reaches the metrics only through `flush_metrics` (once per
//! driver iteration), never per packet.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc_shared::marshal::Marshal;
use rtmlive::ops::{Metrics, Protocol, SessionState, Stage};
use rtmlive::rtp::MediaPacket;
use rtmlive::transport::ViewerSession;
use rtmlive::transport::shard::{Shard, ShardConfig};

fn sample(m: &Metrics, name: &str) -> f64 {
    m.render()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name}"))
}

#[test]
fn shard_lifecycle_and_traffic_reach_the_metrics() {
    let metrics = Metrics::new();
    let mut client = Client::gcm();
    let t0 = Instant::now();
    let mut shard = Shard::new(ShardConfig::new(0));
    shard.set_metrics(metrics.clone());
    let mut packets: Vec<MediaPacket> = (0..10).map(|s| media_packet(s, 500)).collect();
    packets[0].keyframe_start = true;
    let source = VecSource {
        pending: packets.clone(),
        cache: packets.clone(),
        keyframe_requests: Arc::default(),
    };
    shard
        .insert(
            ViewerSession::new(t0, params(client.fingerprint)),
            Box::new(source),
            None,
        )
        .unwrap();
    assert_eq!(
        metrics.sessions(Protocol::MiniSdp, SessionState::Pending),
        1
    );

    // STUN, DTLS: stages and pending → connected.
    let t1 = t0 + Duration::from_millis(30);
    connect_via_shard(&mut shard, &mut client, t1);
    let mut out = Vec::new();
    assert_eq!(metrics.stage_count(Stage::StunReceived), 1);
    assert_eq!(metrics.stage_count(Stage::DtlsDone), 1);
    assert_eq!(
        metrics.sessions(Protocol::MiniSdp, SessionState::Connected),
        1
    );
    assert_eq!(
        metrics.sessions(Protocol::MiniSdp, SessionState::Pending),
        0
    );

    // Media: the first keyframe stage; traffic only after the flush.
    shard.pump_media(t1);
    shard.drain_transmits(&mut out);
    assert_eq!(out.len(), 10);
    out.clear();
    assert_eq!(metrics.stage_count(Stage::FirstKeyframeSent), 1);
    assert_eq!(
        sample(&metrics, r#"rtmlive_egress_packets_total{kind="media"}"#),
        0.0
    );
    shard.flush_metrics();
    assert_eq!(
        sample(&metrics, r#"rtmlive_egress_packets_total{kind="media"}"#),
        10.0
    );
    assert!(sample(&metrics, r#"rtmlive_egress_packets_total{kind="control"}"#) >= 2.0);
    assert!(
        sample(
            &metrics,
            r#"rtmlive_ingress_packets_total{source="player"}"#
        ) >= 2.0
    );

    // NACK for 3, 4 (cached) and 40 (not), a PLI, then the same SRTCP packet replayed.
    let nack = TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: VIDEO_SSRC,
        nacks: vec![
            NackPair {
                packet_id: 3,
                lost_packets: 0b1,
            },
            NackPair {
                packet_id: 40,
                lost_packets: 0,
            },
        ],
    };
    let mut compound = nack.marshal().unwrap().to_vec();
    compound.extend_from_slice(
        &PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: VIDEO_SSRC,
        }
        .marshal()
        .unwrap(),
    );
    let srtcp = client.encrypt_rtcp(&compound);
    shard.handle_datagram(t1, client_addr(), &srtcp);
    // The same packet again is a replay; a forged one fails authentication.
    shard.handle_datagram(t1, client_addr(), &srtcp);
    let mut forged = client.encrypt_rtcp(&compound);
    let n = forged.len();
    forged[n - 1] ^= 0x55;
    shard.handle_datagram(t1, client_addr(), &forged);
    shard.drain_transmits(&mut out);
    shard.flush_metrics();
    assert_eq!(sample(&metrics, "rtmlive_nack_received_total"), 1.0);
    assert_eq!(sample(&metrics, "rtmlive_nack_seqs_received_total"), 3.0);
    assert_eq!(
        sample(&metrics, r#"rtmlive_retransmits_total{outcome="sent"}"#),
        2.0
    );
    assert_eq!(
        sample(
            &metrics,
            r#"rtmlive_retransmits_total{outcome="not_cached"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            r#"rtmlive_egress_packets_total{kind="retransmit"}"#
        ),
        2.0
    );
    assert_eq!(sample(&metrics, "rtmlive_pli_received_total"), 1.0);
    assert_eq!(
        sample(&metrics, r#"rtmlive_srtp_failures_total{kind="unprotect"}"#),
        1.0
    );
    assert_eq!(
        sample(&metrics, r#"rtmlive_srtp_failures_total{kind="replay"}"#),
        1.0
    );

    // Snapshot for the admin API.
    let mut snap = Vec::new();
    shard.snapshot(t1 + Duration::from_secs(1), &mut snap);
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].id, SERVER_UFRAG);
    assert_eq!(snap[0].state, SessionState::Connected);
    assert_eq!(snap[0].remote, Some(client_addr()));
    assert_eq!(snap[0].stats.retransmits, 2);
    assert!(snap[0].egress_bps > 0);

    // Kick: closed with BYE, the gauge goes back to zero.
    assert!(shard.close_ufrag(t1, SERVER_UFRAG.as_bytes()));
    shard.drain_transmits(&mut out);
    shard.flush_metrics();
    assert_eq!(
        metrics.sessions(Protocol::MiniSdp, SessionState::Connected),
        0
    );
    assert!(sample(&metrics, r#"rtmlive_egress_packets_total{kind="rtcp"}"#) >= 1.0);
}

#[test]
fn dtls_that_never_finishes_is_a_timeout_failure() {
    let metrics = Metrics::new();
    let client = Client::gcm();
    let t0 = Instant::now();
    let mut shard = Shard::new(ShardConfig::new(0));
    shard.set_metrics(metrics.clone());
    let mut p = params(client.fingerprint);
    p.dtls_timeout = Duration::from_millis(500);
    shard
        .insert(
            ViewerSession::new(t0, p),
            Box::new(VecSource {
                pending: Vec::new(),
                cache: Vec::new(),
                keyframe_requests: Arc::default(),
            }),
            None,
        )
        .unwrap();
    shard.handle_datagram(t0, client_addr(), &client.binding_request(SERVER_PWD, true));
    let later = t0 + Duration::from_secs(1);
    shard.handle_timeout(later);
    assert!(shard.is_empty());
    assert_eq!(
        sample(&metrics, r#"rtmlive_dtls_failures_total{kind="timeout"}"#),
        1.0
    );
    assert_eq!(
        metrics.sessions(Protocol::MiniSdp, SessionState::Pending),
        0
    );
}

/// A publisher's media sink that always wants a keyframe (as at the start of a stream).
struct NeedsKeyframe(Arc<std::sync::atomic::AtomicUsize>);

impl rtmlive::transport::MediaIngest for NeedsKeyframe {
    fn on_packet(&mut self, _now: Instant, _track: rtmlive::media::TrackKind, _packet: Bytes) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn wants_keyframe(&self) -> bool {
        true
    }
}

#[test]
fn plis_to_publishers_reach_the_metrics() {
    use rtmlive::transport::session::{ReceiveParams, ReceiveTrack};
    let metrics = Metrics::new();
    let mut client = Client::gcm();
    let t0 = Instant::now();
    let mut shard = Shard::new(ShardConfig::new(0));
    shard.set_metrics(metrics.clone());
    let mut p = params(client.fingerprint);
    p.receive = Some(ReceiveParams {
        tracks: vec![ReceiveTrack {
            kind: rtmlive::media::TrackKind::Video,
            payload_type: 96,
            rtx_payload_type: None,
            clock_rate: 90_000,
        }],
        rtcp_ssrc: 0x5151,
        config: Default::default(),
    });
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    shard
        .insert_media(
            ViewerSession::new(t0, p),
            rtmlive::transport::SessionMedia::Ingest(Box::new(NeedsKeyframe(received.clone()))),
            None,
        )
        .unwrap();
    connect_via_shard(&mut shard, &mut client, t0);
    let mut out = Vec::new();
    shard.drain_transmits(&mut out);
    out.clear();

    // The publisher's first packet tells the session its SSRC; the sink wants a keyframe, so
    // the shard asks with a PLI (once: the session rate-limits them).
    let rtp = media_packet(1, 300);
    for _ in 0..2 {
        shard.handle_datagram(t0, client_addr(), &client.encrypt_rtp(&rtp.bytes));
    }
    shard.drain_transmits(&mut out);
    shard.flush_metrics();
    assert_eq!(received.load(std::sync::atomic::Ordering::Relaxed), 1);
    let plis = out
        .iter()
        .filter(|t| rtmlive::transport::classify(&t.data) == rtmlive::transport::DatagramKind::Rtcp)
        .flat_map(|t| {
            let mut plain = client.decrypt_rtcp(&t.data).freeze();
            rtc_rtcp::packet::unmarshal(&mut plain).unwrap()
        })
        .filter(|p| p.as_any().is::<PictureLossIndication>())
        .count();
    assert_eq!(plis, 1, "one PLI went to the publisher");
    assert_eq!(sample(&metrics, "rtmlive_pli_sent_total"), 1.0);
}
