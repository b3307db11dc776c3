//! SRTP fan-out throughput of the transport's egress path, one thread.
//!
//! Builds N established `ViewerSession`s (real STUN + DTLS handshakes against an in-memory
//! rtc-dtls client), then sends one shared stream to all of them:
//!
//! * `--mode protect` (default): `ViewerSession::send_media` for every packet × viewer, output
//!   dropped. This is the per-viewer CPU cost of the session (rewrite check, rtc-srtp protect and
//!   its allocation, stats).
//! * `--mode socket`: the same, plus `socket::Batcher` (`sendmmsg`, and UDP GSO with `--gso`) to
//!   N loopback sink sockets that never read (`SO_RCVBUF` at the kernel minimum), the `rx=drop`
//!   setup of `shared/tools/fanout-limit`.
//!
//! The stream is fanout-limit's: 2 Mbit/s, 30 fps, 8,333-byte frames cut into 7 RTP packets
//! (6 × 1,200 B + 1,133 B payload) with a 16-byte RFC 8285 extension block.
//!
//! Run: `taskset -c 0 cargo bench --bench srtp_fanout -- --viewers 1000 --seconds 10 [--mode socket] [--gso] [--profile cm]`

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use rtc_dtls::config::{ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::Endpoint;
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use rtc_stun::message::{BINDING_REQUEST, Message, Setter, TransactionId};
use rtmlive::media::{FrameKind, TrackKind};
use rtmlive::rtp::MediaPacket;
use rtmlive::transport::dtls::{DtlsIdentity, Fingerprint};
use rtmlive::transport::ice_lite::IceConfig;
use rtmlive::transport::rtcp::NtpClock;
use rtmlive::transport::socket::{Batcher, probe_gso};
use rtmlive::transport::{SessionParams, TrackParams, Transmit, ViewerSession};

const SSRC: u32 = 0x5EED_0001;

struct UseCandidate;
impl Setter for UseCandidate {
    fn add_to(&self, m: &mut Message) -> Result<(), rtc_shared::error::Error> {
        m.add(rtc_stun::attributes::ATTR_USE_CANDIDATE, &[]);
        Ok(())
    }
}

struct Args {
    viewers: usize,
    seconds: f64,
    socket: bool,
    gso: bool,
    profile: SrtpProtectionProfile,
}

fn args() -> Args {
    let mut a = Args {
        viewers: 1000,
        seconds: 5.0,
        socket: false,
        gso: false,
        profile: SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--viewers" => {
                a.viewers = next.parse().expect("--viewers N");
                i += 1;
            }
            "--seconds" => {
                a.seconds = next.parse().expect("--seconds S");
                i += 1;
            }
            "--mode" => {
                a.socket = next == "socket";
                i += 1;
            }
            "--profile" => {
                if next == "cm" {
                    a.profile = SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80;
                }
                i += 1;
            }
            "--gso" => a.gso = true,
            _ => {}
        }
        i += 1;
    }
    a
}

/// One second of the synthetic stream: 30 frames × 7 packets.
fn stream() -> Vec<MediaPacket> {
    let mut out = Vec::new();
    let mut seq = 0u64;
    for f in 0..30u32 {
        let ts = f * 3000;
        for p in 0..7 {
            let payload = if p == 6 { 1133 } else { 1200 };
            let mut b = Vec::with_capacity(32 + payload);
            b.extend_from_slice(&[0x90, if p == 6 { 0x80 | 96 } else { 96 }]);
            b.extend_from_slice(&(seq as u16).to_be_bytes());
            b.extend_from_slice(&ts.to_be_bytes());
            b.extend_from_slice(&SSRC.to_be_bytes());
            // one-byte extensions: id 1 (8-byte DTS), id 2 (6-byte frame range), padded to 16
            b.extend_from_slice(&[0xBE, 0xDE, 0, 4]);
            b.push((1 << 4) | 7);
            b.extend_from_slice(&u64::from(ts).to_be_bytes());
            b.push((2 << 4) | 5);
            b.extend_from_slice(&[0, 0, 0, 6, 0, 0]);
            b.extend(std::iter::repeat_n(0u8, 32 - b.len()));
            b.extend((0..payload).map(|i| i as u8));
            out.push(MediaPacket {
                bytes: Bytes::from(b),
                track: TrackKind::Video,
                seq,
                timestamp: ts,
                marker: p == 6,
                frame_kind: if f == 0 {
                    FrameKind::Key
                } else {
                    FrameKind::Inter
                },
                keyframe_start: f == 0 && p == 0,
                dts_ms: i64::from(f) * 33,
                seq_range_offset: None,
            });
            seq += 1;
        }
    }
    out
}

/// An established session whose nominated address is `remote`.
fn established(
    identity: &Arc<DtlsIdentity>,
    remote: SocketAddr,
    profile: SrtpProtectionProfile,
) -> ViewerSession {
    let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
    let cert = Certificate::generate_self_signed(vec!["c".into()], provider.crypto()).unwrap();
    let fp = Fingerprint::of_der(cert.certificate[0].as_ref());
    let cfg = Arc::new(
        ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(vec![profile])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true)
            .build(true, None)
            .unwrap(),
    );
    let now = Instant::now();
    let params = SessionParams::new(
        IceConfig::new("0000srv".into(), "pw".into(), "cli".into()),
        fp,
        vec![TrackParams {
            kind: TrackKind::Video,
            ssrc: SSRC,
            payload_type: 96,
            clock_rate: 90_000,
        }],
        identity.clone(),
        NtpClock::new(now, SystemTime::now()),
    );
    let mut s = ViewerSession::new(now, params);
    let mut m = Message::new();
    m.build(&[
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(rtc_stun::textattrs::TextAttribute::new(
            rtc_stun::attributes::ATTR_USERNAME,
            "0000srv:cli".into(),
        )),
        Box::new(UseCandidate),
        Box::new(
            rtc_stun::integrity::MessageIntegrity::new_short_term_integrity_with_provider(
                "pw".into(),
                provider.crypto(),
            ),
        ),
        Box::new(rtc_stun::fingerprint::FINGERPRINT),
    ])
    .unwrap();
    s.handle_datagram(now, remote, &m.raw).unwrap();
    let server_key: SocketAddr = "192.0.2.10:1".parse().unwrap();
    let mut client = Endpoint::new(remote, TransportProtocol::UDP, None);
    client.connect(now, server_key, cfg, None).unwrap();
    for _ in 0..10 {
        while let Some(t) = client.poll_transmit() {
            let _ = s.handle_datagram(now, remote, &t.message);
        }
        while let Some(t) = s.poll_transmit() {
            if t.data.first().is_some_and(|b| (20..=63).contains(b)) {
                let _ = client.read(now, server_key, None, BytesMut::from(&t.data[..]));
            }
        }
        if s.is_established() {
            break;
        }
    }
    assert!(s.is_established(), "handshake");
    while s.poll_event().is_some() {}
    s
}

fn main() {
    let a = args();
    let identity = Arc::new(DtlsIdentity::generate().unwrap());
    let packets = stream();

    let mut sinks = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..a.viewers {
        if a.socket {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
            s.set_recv_buffer_size(1).unwrap();
            s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
                .unwrap();
            let u: UdpSocket = s.into();
            addrs.push(u.local_addr().unwrap());
            sinks.push(u);
        } else {
            addrs.push(SocketAddr::from(([127, 0, 0, 1], 40_000 + i as u16)));
        }
    }
    let setup = Instant::now();
    let mut sessions: Vec<ViewerSession> = addrs
        .iter()
        .map(|&r| established(&identity, r, a.profile))
        .collect();
    eprintln!(
        "{} sessions established in {:.2} s",
        sessions.len(),
        setup.elapsed().as_secs_f64()
    );

    let tx =
        rtmlive::transport::socket::bind_socket("127.0.0.1:0".parse().unwrap(), false).unwrap();
    let gso = a.gso && probe_gso(&tx);
    let mut batcher = Batcher::new(64, gso);
    let mut batch: Vec<Transmit> = Vec::with_capacity(64);

    let warmup = Duration::from_secs(1);
    let run = Duration::from_secs_f64(a.seconds);
    let start = Instant::now();
    let mut measured_start = None;
    let mut sent: u64 = 0;
    let mut bytes: u64 = 0;
    let mut errors: u64 = 0;
    let mut seq_base = 0u64;
    let mut round = packets.clone();
    'outer: loop {
        // One second of stream per round; the sessions see continuing sequence numbers
        // (shifted once per round, not per viewer: the hub shares one packet with everyone).
        for (r, p) in round.iter_mut().zip(&packets) {
            r.seq = p.seq + seq_base;
            let mut b = p.bytes.to_vec();
            b[2..4].copy_from_slice(&(r.seq as u16).to_be_bytes());
            r.bytes = Bytes::from(b);
        }
        for frame in round.chunks(7) {
            let now = Instant::now();
            if measured_start.is_none() && now - start >= warmup {
                measured_start = Some((now, sent, bytes));
            }
            if let Some((t, _, _)) = measured_start
                && now - t >= run
            {
                break 'outer;
            }
            for s in sessions.iter_mut() {
                for p in frame {
                    if let Ok(Some(t)) = s.send_media(now, p) {
                        sent += 1;
                        bytes += t.data.len() as u64;
                        if a.socket {
                            batch.push(t);
                            // GSO wants a viewer's frame together; plain sendmmsg wants 64.
                            if batch.len() >= 64 - 7 {
                                errors += batcher.send(&tx, &batch).errors;
                                batch.clear();
                            }
                        }
                    }
                }
            }
        }
        seq_base += packets.len() as u64;
    }
    if !batch.is_empty() {
        errors += batcher.send(&tx, &batch).errors;
    }
    let (t, s0, b0) = measured_start.expect("ran past warm-up");
    let secs = t.elapsed().as_secs_f64();
    let pps = (sent - s0) as f64 / secs;
    let gbps = (bytes - b0) as f64 * 8.0 / secs / 1e9;
    println!(
        "srtp_fanout mode={} gso={} profile={:?} viewers={} seconds={:.1}: {:.0} pkt/s, {:.2} Gbit/s SRTP, ≈ {:.0} viewers of 2 Mbit/s, send errors {}",
        if a.socket { "socket" } else { "protect" },
        gso,
        a.profile,
        a.viewers,
        secs,
        pps,
        gbps,
        gbps * 1e9 / 2e6,
        errors
    );
    drop(sinks);
}
