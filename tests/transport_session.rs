//! End-to-end tests of the transport core, in memory: a client built from rtc-stun, an rtc-dtls
//! client `Endpoint` and rtc-srtp drives a `ViewerSession` (and a `Shard`) through STUN,
//! DTLS and SRTP, with virtual time.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc_shared::marshal::Marshal;
use rtmlive::media::TrackKind;
use rtmlive::rtp::MediaPacket;
use rtmlive::transport::dtls::Fingerprint;
use rtmlive::transport::shard::{Shard, ShardConfig};
use rtmlive::transport::{CloseReason, SessionEvent, ViewerSession};

#[test]
fn stun_dtls_srtp_media_decrypts_to_the_original_bytes() {
    for profiles in [
        vec![
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        ],
        vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80],
    ] {
        let mut client = Client::new(identity().fingerprint(), profiles);
        let t0 = Instant::now();
        let mut session = ViewerSession::new(t0, params(client.fingerprint));
        let now = connect(&mut session, &mut client, t0);
        for seq in 0..50u64 {
            let pkt = media_packet(65_500 + seq, 1200);
            let t = session.send_media(now, &pkt).unwrap().expect("established");
            assert_eq!(t.to, client_addr());
            assert_ne!(&t.data[12..], &pkt.bytes[12..], "payload must be encrypted");
            let plain = client.decrypt_rtp(&t.data);
            assert_eq!(&plain[..], &pkt.bytes[..]);
        }
        assert_eq!(session.stats().packets_sent, 50);
    }
}

#[test]
fn rewrite_offsets_apply_to_the_viewer_copy_only() {
    let mut client = Client::gcm();
    let t0 = Instant::now();
    let mut session = ViewerSession::new(t0, params(client.fingerprint));
    let now = connect(&mut session, &mut client, t0);
    session.set_offsets(TrackKind::Video, 1000, 90_000);
    let pkt = media_packet(7, 100);
    let original = pkt.bytes.clone();
    let t = session.send_media(now, &pkt).unwrap().unwrap();
    let plain = client.decrypt_rtp(&t.data);
    assert_eq!(u16::from_be_bytes([plain[2], plain[3]]), 1007);
    assert_eq!(
        u32::from_be_bytes([plain[4], plain[5], plain[6], plain[7]]),
        7 * 3000 + 90_000
    );
    assert_eq!(&plain[12..], &original[12..]);
    assert_eq!(pkt.bytes, original, "the shared packet is untouched");
}

#[test]
fn nack_pli_receiver_report_and_sender_report() {
    let mut client = Client::gcm();
    let t0 = Instant::now();
    let mut session = ViewerSession::new(t0, params(client.fingerprint));
    let mut now = connect(&mut session, &mut client, t0);
    session.set_offsets(TrackKind::Video, 10, 0);
    for seq in 0..5 {
        session.send_media(now, &media_packet(seq, 100)).unwrap();
    }

    // Sender report after the interval, decryptable by the client.
    now += Duration::from_millis(1001);
    session.handle_timeout(now);
    let sr_dgram = drain(&mut session).pop().expect("sender report");
    let plain = client.decrypt_rtcp(&sr_dgram.data);
    let mut buf = &plain[..];
    let pkts = rtc_rtcp::packet::unmarshal(&mut buf).unwrap();
    let sr = pkts[0].as_any().downcast_ref::<SenderReport>().expect("SR");
    assert_eq!(sr.ssrc, VIDEO_SSRC);
    assert_eq!(sr.packet_count, 5);

    // NACK in viewer sequence space (offset 10) comes out in stream space.
    let nack = TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: VIDEO_SSRC,
        nacks: vec![NackPair {
            packet_id: 12,
            lost_packets: 0b1,
        }],
    };
    let pli = PictureLossIndication {
        sender_ssrc: 1,
        media_ssrc: VIDEO_SSRC,
    };
    let lsr = (sr.ntp_time >> 16) as u32;
    let rr = ReceiverReport {
        ssrc: 1,
        reports: vec![ReceptionReport {
            ssrc: VIDEO_SSRC,
            fraction_lost: 12,
            total_lost: 3,
            last_sequence_number: 14,
            jitter: 90,
            last_sender_report: lsr,
            delay: 65536 / 10, // 100 ms held
        }],
        ..Default::default()
    };
    let mut compound = rr.marshal().unwrap().to_vec();
    compound.extend_from_slice(&nack.marshal().unwrap());
    compound.extend_from_slice(&pli.marshal().unwrap());
    let srtcp = client.encrypt_rtcp(&compound);
    now += Duration::from_millis(150);
    session.handle_datagram(now, client_addr(), &srtcp).unwrap();
    let ev = events(&mut session);
    assert!(ev.contains(&SessionEvent::Nack {
        track: TrackKind::Video,
        seqs: vec![2, 3]
    }));
    assert!(ev.contains(&SessionEvent::KeyframeRequest {
        track: TrackKind::Video
    }));
    let stats = session.stats();
    assert_eq!(stats.fraction_lost, 12);
    assert_eq!(stats.jitter, 90);
    let rtt = stats.rtt.expect("rtt");
    assert!(
        rtt >= Duration::from_millis(40) && rtt <= Duration::from_millis(60),
        "{rtt:?}"
    );

    // The retransmission decrypts like the original.
    let pkt = media_packet(2, 100);
    let t = session.send_retransmit(now, &pkt).unwrap().unwrap();
    let plain = client.decrypt_rtp(&t.data);
    assert_eq!(u16::from_be_bytes([plain[2], plain[3]]), 12);
    assert_eq!(session.stats().retransmits, 1);

    // A replayed SRTCP packet is rejected.
    assert!(session.handle_datagram(now, client_addr(), &srtcp).is_err());
}

#[test]
fn consent_expiry_closes_with_bye() {
    let mut client = Client::gcm();
    let t0 = Instant::now();
    let mut session = ViewerSession::new(t0, params(client.fingerprint));
    let now = connect(&mut session, &mut client, t0);
    // A consent refresh at +20 s keeps it alive past the original 30 s.
    let refresh = t0 + Duration::from_secs(20);
    session
        .handle_datagram(
            refresh,
            client_addr(),
            &client.binding_request(SERVER_PWD, false),
        )
        .unwrap();
    drain(&mut session);
    session.handle_timeout(t0 + Duration::from_secs(31));
    assert!(!session.is_closed());
    let deadline = session.poll_timeout().unwrap();
    assert!(deadline <= refresh + Duration::from_secs(30));
    let mut t = now;
    let mut last = Vec::new();
    while !session.is_closed() {
        t = session.poll_timeout().unwrap().max(t);
        session.handle_timeout(t);
        last = drain(&mut session);
        assert!(t <= refresh + Duration::from_secs(30));
    }
    assert!(events(&mut session).contains(&SessionEvent::Closed(CloseReason::ConsentExpired)));
    // The last words are an SRTCP BYE (then DTLS close_notify).
    let bye = last
        .iter()
        .find(|d| d.data[0] >> 6 == 2)
        .expect("an SRTCP datagram");
    let plain = client.decrypt_rtcp(&bye.data);
    let mut buf = &plain[..];
    let pkts = rtc_rtcp::packet::unmarshal(&mut buf).unwrap();
    assert!(
        pkts.iter()
            .any(|p| p.as_any().is::<rtc_rtcp::goodbye::Goodbye>())
    );
    assert!(
        session
            .send_media(t, &media_packet(1, 10))
            .unwrap()
            .is_none()
    );
}

#[test]
fn never_connected_times_out() {
    let client = Client::gcm();
    let t0 = Instant::now();
    let mut session = ViewerSession::new(t0, params(client.fingerprint));
    let t = session.poll_timeout().unwrap();
    assert_eq!(t, t0 + Duration::from_secs(10));
    session.handle_timeout(t);
    assert_eq!(
        events(&mut session),
        vec![SessionEvent::Closed(CloseReason::IceTimeout)]
    );
    assert!(drain(&mut session).is_empty());
}

#[test]
fn wrong_client_certificate_is_refused() {
    let mut client = Client::gcm();
    let t0 = Instant::now();
    // The offer announced a different fingerprint.
    let mut session = ViewerSession::new(t0, params(Fingerprint([0xAB; 32])));
    session
        .handle_datagram(t0, client_addr(), &client.binding_request(SERVER_PWD, true))
        .unwrap();
    drain(&mut session);
    events(&mut session);
    client.start_dtls(t0);
    let mut closed = false;
    for _ in 0..10 {
        for d in client.outgoing() {
            let _ = session.handle_datagram(t0, client_addr(), &d);
        }
        for t in drain(&mut session) {
            let _ = client
                .endpoint
                .read(t0, server_addr(), None, BytesMut::from(&t.data[..]));
        }
        closed |=
            events(&mut session).contains(&SessionEvent::Closed(CloseReason::FingerprintMismatch));
        if closed {
            break;
        }
    }
    assert!(closed);
    assert!(!session.is_established());
}

#[test]
fn anti_amplification_before_verification() {
    let mut client = Client::gcm();
    let t0 = Instant::now();
    let mut session = ViewerSession::new(t0, params(client.fingerprint));
    // The offer was 120 bytes: the answer may be at most 360.
    session.note_unverified_received(client_addr(), 120);
    assert_eq!(session.send_allowance(client_addr()), 360);
    assert!(
        session
            .queue_unverified_send(client_addr(), BytesMut::from(&[0u8; 361][..]))
            .is_err()
    );
    session
        .queue_unverified_send(client_addr(), BytesMut::from(&[0u8; 300][..]))
        .unwrap();
    assert!(
        session
            .queue_unverified_send(client_addr(), BytesMut::from(&[0u8; 61][..]))
            .is_err()
    );
    // A spoofed address that sent nothing gets nothing.
    let victim: SocketAddr = "192.0.2.99:9".parse().unwrap();
    assert_eq!(session.send_allowance(victim), 0);
    assert!(
        session
            .queue_unverified_send(victim, BytesMut::from(&[0u8; 1][..]))
            .is_err()
    );
    assert_eq!(drain(&mut session).len(), 1);

    // A cookieless ClientHello before the STUN check (sent right behind the offer) is
    // answered at once with the HelloVerifyRequest, inside the budget...
    client.start_dtls(t0);
    let hello = client.outgoing();
    assert_eq!(hello.len(), 1);
    let before = session.send_allowance(client_addr());
    session
        .handle_datagram(t0, client_addr(), &hello[0])
        .unwrap();
    let hvr = drain(&mut session);
    assert_eq!(hvr.len(), 1, "one HelloVerifyRequest");
    assert_eq!(
        hvr[0].data.get(13),
        Some(&3),
        "handshake type hello_verify_request"
    );
    assert!(hvr[0].data.len() < hello[0].len());
    assert_eq!(
        session.send_allowance(client_addr()),
        before + 3 * hello[0].len() as u64 - hvr[0].data.len() as u64
    );
    // ...but the ClientHello with the cookie (which would get the certificate flight) is
    // parked until ICE verifies the address...
    client.receive_dtls(t0, &hvr[0].data);
    let hello2 = client.outgoing();
    assert_eq!(hello2.len(), 1);
    assert!(
        session
            .handle_datagram(t0, client_addr(), &hello2[0])
            .is_err()
    );
    assert!(drain(&mut session).is_empty());
    // ...and answered as soon as it does (no client retransmission needed).
    session
        .handle_datagram(t0, client_addr(), &client.binding_request(SERVER_PWD, true))
        .unwrap();
    let out = drain(&mut session);
    assert!(
        out.len() >= 2,
        "STUN response plus the parked ClientHello's reply"
    );
    assert_eq!(out[1].data.get(13), Some(&2), "ServerHello flight");
    assert_eq!(session.send_allowance(client_addr()), u64::MAX);
}

#[test]
fn shard_routes_by_ufrag_then_address_and_serves_nacks_from_the_source() {
    let mut client = Client::gcm();
    let t0 = Instant::now();
    let mut shard = Shard::new(ShardConfig::new(0));
    let packets: Vec<MediaPacket> = (0..10).map(|s| media_packet(s, 500)).collect();
    let kf = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let source = VecSource {
        pending: packets.clone(),
        cache: packets.clone(),
        keyframe_requests: kf.clone(),
    };
    let session = ViewerSession::new(t0, params(client.fingerprint));
    shard.insert(session, Box::new(source), None).unwrap();
    assert_eq!(shard.pending(), 1);

    connect_via_shard(&mut shard, &mut client, t0);

    let mut out = Vec::new();

    shard.pump_media(t0);
    shard.drain_transmits(&mut out);
    assert_eq!(out.len(), 10);
    for (t, p) in out.drain(..).zip(&packets) {
        assert_eq!(&client.decrypt_rtp(&t.data)[..], &p.bytes[..]);
    }

    // NACK for 3 and 4 is served from the source's cache; PLI reaches the source.
    let nack = TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: VIDEO_SSRC,
        nacks: vec![NackPair {
            packet_id: 3,
            lost_packets: 0b1,
        }],
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
    shard.handle_datagram(t0, client_addr(), &srtcp);
    shard.drain_transmits(&mut out);
    assert_eq!(out.len(), 2);
    for (t, p) in out.drain(..).zip(&packets[3..5]) {
        assert_eq!(&client.decrypt_rtp(&t.data)[..], &p.bytes[..]);
    }
    assert_eq!(shard.stats().retransmits_sent, 2);
    assert_eq!(kf.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn junk_creates_no_state_and_never_panics() {
    let mut shard = Shard::new(ShardConfig::new(0));
    let t0 = Instant::now();
    let mut seed = 0x1234_5678_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..20_000u32 {
        let len = (next() % 300) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Steer a share of them into each demux class.
        if let Some(b) = d.first_mut() {
            *b = match i % 5 {
                0 => 0x00,
                1 => 22,
                2 => 0x80,
                3 => 0x81,
                _ => *b,
            };
        }
        if i % 5 == 0 && d.len() >= 8 {
            d[4..8].copy_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        }
        let from = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1000 + (i % 7) as u16));
        shard.handle_datagram(t0, from, &d);
    }
    let mut out = Vec::new();
    shard.drain_transmits(&mut out);
    assert!(out.is_empty());
    assert_eq!(shard.len(), 0);
    assert_eq!(shard.indexed_addresses(), 0);
}

#[test]
fn pending_sessions_are_bounded() {
    let t0 = Instant::now();
    let mut shard = Shard::new(ShardConfig {
        id: 0,
        max_sessions: 100,
        max_pending: 3,
    });
    for i in 0..5 {
        let mut p = params(Fingerprint([1; 32]));
        p.ice.local_ufrag = format!("0000u{i}");
        let s = ViewerSession::new(t0, p);
        let src = VecSource {
            pending: vec![],
            cache: vec![],
            keyframe_requests: Default::default(),
        };
        let r = shard.insert(s, Box::new(src), None);
        assert_eq!(r.is_ok(), i < 3, "insert {i}");
    }
    // Pending sessions that never connect expire and free their slots.
    shard.handle_timeout(t0 + Duration::from_secs(11));
    assert_eq!(shard.len(), 0);
    assert_eq!(shard.pending(), 0);
}

#[test]
fn lobby_sessions_move_only_on_an_authenticated_check() {
    use rtmlive::transport::shard::Lobby;
    let client = Client::gcm();
    let t0 = Instant::now();
    let lobby = Lobby::new(4);
    let mut shard = Shard::new(ShardConfig::new(1));
    shard.set_lobby(lobby.clone());
    let source = VecSource {
        pending: vec![],
        cache: vec![],
        keyframe_requests: Default::default(),
    };
    lobby
        .lock()
        .unwrap()
        .insert(
            ViewerSession::new(t0, params(client.fingerprint)),
            Box::new(source),
        )
        .unwrap();
    // Right ufrag, wrong password: the session stays in the lobby, nothing is sent.
    shard.handle_datagram(t0, client_addr(), &client.binding_request("wrong", true));
    let mut out = Vec::new();
    shard.drain_transmits(&mut out);
    assert!(out.is_empty());
    assert_eq!(lobby.lock().unwrap().len(), 1);
    assert_eq!(shard.len(), 0);
    // The real check adopts it and is answered.
    shard.handle_datagram(t0, client_addr(), &client.binding_request(SERVER_PWD, true));
    shard.drain_transmits(&mut out);
    assert_eq!(out.len(), 1);
    client.check_binding_response(&out[0].data);
    assert!(lobby.lock().unwrap().is_empty());
    assert_eq!(shard.len(), 1);
    assert_eq!(shard.indexed_addresses(), 1);
}

static EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn test_epoch() -> u64 {
    EPOCH.load(std::sync::atomic::Ordering::Acquire)
}

#[test]
fn shard_skips_the_source_pass_while_the_media_epoch_stands_still() {
    let mut client = Client::gcm();
    let t0 = Instant::now();
    let mut shard = Shard::new(ShardConfig::new(0));
    shard.set_media_epoch(test_epoch);
    let queue = Arc::new(std::sync::Mutex::new(vec![media_packet(0, 200)]));
    let session = ViewerSession::new(t0, params(client.fingerprint));
    shard
        .insert(session, Box::new(SharedSource(queue.clone())), None)
        .unwrap();
    connect_via_shard(&mut shard, &mut client, t0);
    let mut out = Vec::new();

    // Becoming established is reason enough for a pass (the GOP cache waits).
    shard.pump_media(t0);
    shard.drain_transmits(&mut out);
    assert_eq!(out.len(), 1);
    out.clear();

    // A packet that appears without the epoch moving is not looked for...
    queue.lock().unwrap().push(media_packet(1, 200));
    shard.pump_media(t0);
    shard.drain_transmits(&mut out);
    assert!(out.is_empty(), "pass ran although the epoch stood still");

    // ...and is sent by the first pass after the epoch moves.
    EPOCH.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    shard.pump_media(t0);
    shard.drain_transmits(&mut out);
    assert_eq!(out.len(), 1);
    out.clear();

    // A keyframe request forces a pass even with the epoch unchanged.
    queue.lock().unwrap().push(media_packet(2, 200));
    let pli = PictureLossIndication {
        sender_ssrc: 1,
        media_ssrc: VIDEO_SSRC,
    };
    shard.handle_datagram(
        t0,
        client_addr(),
        &client.encrypt_rtcp(&pli.marshal().unwrap()),
    );
    shard.pump_media(t0);
    shard.drain_transmits(&mut out);
    let rtp: Vec<_> = out
        .iter()
        .filter(|t| rtmlive::transport::classify(&t.data) == rtmlive::transport::DatagramKind::Rtp)
        .collect();
    assert_eq!(rtp.len(), 1, "keyframe request did not trigger a pass");
}

#[test]
fn a_retired_dtls_endpoint_still_says_goodbye() {
    let mut client = Client::gcm();
    let t0 = Instant::now();
    let mut session = ViewerSession::new(t0, params(client.fingerprint));
    let now = connect(&mut session, &mut client, t0);
    // The player's first receiver report proves it has the keys: the endpoint is retired.
    let rr = ReceiverReport {
        ssrc: 0x4242,
        reports: Vec::new(),
        profile_extensions: bytes::Bytes::new(),
    };
    session
        .handle_datagram(
            now,
            client_addr(),
            &client.encrypt_rtcp(&rr.marshal().unwrap()),
        )
        .unwrap();
    drain(&mut session);
    // DTLS from the peer is now ignored, never an error.
    session
        .handle_datagram(
            now,
            client_addr(),
            &[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0],
        )
        .unwrap();
    // Closing still sends RTCP BYE and a close_notify the client accepts.
    session.close(now, CloseReason::Local);
    let out = drain(&mut session);
    let dtls: Vec<_> = out
        .iter()
        .filter(|t| (20..=63).contains(&t.data[0]))
        .collect();
    assert_eq!(dtls.len(), 1, "one close_notify");
    assert!(!client.peer_closed);
    client.receive_dtls(now, &dtls[0].data);
    assert!(
        client.peer_closed,
        "the prepared close_notify was not accepted"
    );
    assert!(out.iter().any(|t| t.data[0] >> 6 == 2), "RTCP BYE");
}
