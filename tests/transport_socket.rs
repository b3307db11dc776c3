//! The socket driver over loopback: miniSDP hook → pending session → STUN → DTLS → SRTP media
//! pulled from a `MediaSource`, through real UDP sockets, `sendmmsg` and (where the kernel has
//! it) GSO; and an HTTP-signaled session adopted from the lobby.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtmlive::transport::dtls::Fingerprint;
use rtmlive::transport::shard::{Lobby, Registrar, SignalingHandler};
use rtmlive::transport::socket::{Driver, DriverConfig};
use rtmlive::transport::{DatagramKind, ViewerSession, classify};

/// A stand-in for the server's miniSDP handler: every offer registers a session for the client
/// fingerprint it was built with and answers with `answer_len` bytes.
struct TestSignaling {
    client_fp: Arc<Mutex<Option<Fingerprint>>>,
    answer_len: usize,
    packets: usize,
}

impl SignalingHandler for TestSignaling {
    fn handle(&mut self, now: Instant, _from: SocketAddr, _data: &[u8], shard: &mut Registrar<'_>) {
        let Some(fp) = *self.client_fp.lock().unwrap() else {
            return;
        };
        if let Some(id) = shard.find(SERVER_UFRAG.as_bytes()) {
            shard.note_received(id);
            let _ = shard.send_via(id, BytesMut::from(&vec![0xFF; self.answer_len][..]));
            return;
        }
        let session = ViewerSession::new(now, params(fp));
        let packets = (0..self.packets as u64)
            .map(|s| media_packet(s, 1100))
            .collect::<Vec<_>>();
        let source = VecSource {
            pending: packets.clone(),
            cache: packets,
            keyframe_requests: Default::default(),
        };
        if let Ok(id) = shard.register(session, Box::new(source)) {
            let _ = shard.send_via(id, BytesMut::from(&vec![0xFF; self.answer_len][..]));
        }
    }
}

fn recv(sock: &UdpSocket, deadline: Instant) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => return Some(buf[..n].to_vec()),
            Err(_) => continue,
        }
    }
    None
}

/// Runs STUN + DTLS against the driver and collects `expect` media packets.
fn play(client: &mut Client, sock: &UdpSocket, server: SocketAddr, expect: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    sock.send_to(&client.binding_request(SERVER_PWD, true), server)
        .unwrap();
    let resp = recv(sock, deadline).expect("binding response");
    assert_eq!(classify(&resp), DatagramKind::Stun);
    assert_eq!(
        client.check_binding_response(&resp),
        sock.local_addr().unwrap()
    );
    client.start_dtls(Instant::now());
    let mut media = Vec::new();
    while media.len() < expect {
        for d in client.outgoing() {
            sock.send_to(&d, server).unwrap();
        }
        let Some(d) = recv(sock, deadline) else {
            panic!("timed out with {} media packets", media.len())
        };
        match classify(&d) {
            DatagramKind::Dtls => client.receive_dtls(Instant::now(), &d),
            DatagramKind::Rtp => {
                assert!(
                    client.connected,
                    "media before the client finished DTLS ({} bytes, first {:02x?})",
                    d.len(),
                    &d[..4]
                );
                media.push(client.decrypt_rtp(&d).to_vec())
            }
            _ => {}
        }
    }
    media
}

#[test]
fn minisdp_hook_then_media_over_loopback() {
    let fp_slot = Arc::new(Mutex::new(None));
    let lobby = Lobby::new(16);
    let config = DriverConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        shards: 2,
        ..DriverConfig::default()
    };
    let slot = fp_slot.clone();
    let driver = Driver::spawn(config, lobby, move |_| {
        Some(Box::new(TestSignaling {
            client_fp: slot.clone(),
            answer_len: 250,
            packets: 30,
        }) as Box<dyn SignalingHandler>)
    })
    .unwrap();
    let server = driver.local_addr();

    let mut client = Client::gcm();
    *fp_slot.lock().unwrap() = Some(client.fingerprint);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();

    // A 100-byte offer: the 250-byte answer fits the 3× budget.
    let mut offer = vec![0xFF];
    offer.extend_from_slice(&[1u8; 99]);
    sock.send_to(&offer, server).unwrap();
    let answer = recv(&sock, Instant::now() + Duration::from_secs(5)).expect("answer");
    assert_eq!(answer.len(), 250);
    // A retransmitted offer (same session) earns another answer, not a new session.
    sock.send_to(&offer, server).unwrap();
    let again = recv(&sock, Instant::now() + Duration::from_secs(5)).expect("answer again");
    assert_eq!(again.len(), 250);

    let media = play(&mut client, &sock, server, 30);
    for (i, m) in media.iter().enumerate() {
        assert_eq!(m, &media_packet(i as u64, 1100).bytes.to_vec());
    }
    driver.shutdown();
    // Shutting down tells the viewer: an SRTCP packet (the BYE) arrives, not silence.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut told = false;
    while let Some(d) = recv(&sock, deadline) {
        if classify(&d) == DatagramKind::Rtcp {
            told = true;
            break;
        }
    }
    assert!(told, "no RTCP BYE after shutdown");
}

#[test]
fn oversized_answer_is_refused_before_verification() {
    let fp_slot = Arc::new(Mutex::new(None));
    let config = DriverConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        shards: 1,
        ..DriverConfig::default()
    };
    let slot = fp_slot.clone();
    let driver = Driver::spawn(config, Lobby::new(4), move |_| {
        Some(Box::new(TestSignaling {
            client_fp: slot.clone(),
            answer_len: 400,
            packets: 0,
        }) as Box<dyn SignalingHandler>)
    })
    .unwrap();
    *fp_slot.lock().unwrap() = Some(Fingerprint([3; 32]));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // 100 bytes in → at most 300 out: the 400-byte answer must not be sent.
    let mut offer = vec![0xFF];
    offer.extend_from_slice(&[1u8; 99]);
    sock.send_to(&offer, driver.local_addr()).unwrap();
    assert!(recv(&sock, Instant::now() + Duration::from_millis(500)).is_none());
    driver.shutdown();
}

#[test]
fn lobby_session_is_adopted_on_first_stun() {
    let lobby = Lobby::new(16);
    let config = DriverConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        shards: 2,
        ..DriverConfig::default()
    };
    let driver = Driver::spawn(config, lobby.clone(), |_| None).unwrap();
    let mut client = Client::new(
        identity().fingerprint(),
        vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80],
    );
    let packets: Vec<_> = (0..20).map(|s| media_packet(s, 900)).collect();
    let session = ViewerSession::new(Instant::now(), params(client.fingerprint));
    lobby
        .lock()
        .unwrap()
        .insert(
            session,
            Box::new(VecSource {
                pending: packets.clone(),
                cache: packets.clone(),
                keyframe_requests: Default::default(),
            }),
        )
        .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let media = play(&mut client, &sock, driver.local_addr(), 20);
    for (m, p) in media.iter().zip(&packets) {
        assert_eq!(&m[..], &p.bytes[..]);
    }
    assert!(lobby.lock().unwrap().is_empty());
    driver.shutdown();
}
