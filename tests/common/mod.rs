//! The in-memory player used by the transport tests: rtc-stun + rtc-dtls client + rtc-srtp.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use rtc_dtls::config::{ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;
use rtc_stun::message::{BINDING_REQUEST, Message, Setter, TransactionId};
use rtmlive::media::{FrameKind, TrackKind};
use rtmlive::rtp::MediaPacket;
use rtmlive::transport::dtls::{DtlsIdentity, Fingerprint};
use rtmlive::transport::ice_lite::IceConfig;
use rtmlive::transport::rtcp::NtpClock;
use rtmlive::transport::{SessionEvent, SessionParams, TrackParams, Transmit, ViewerSession};

pub const SERVER_UFRAG: &str = "0000srvufrag";
pub const SERVER_PWD: &str = "server-password-0123456789";
pub const CLIENT_UFRAG: &str = "cliufrag";
pub const VIDEO_SSRC: u32 = 0x1111_2222;
pub const AUDIO_SSRC: u32 = 0x3333_4444;

pub fn server_addr() -> SocketAddr {
    "203.0.113.1:8000".parse().unwrap()
}
pub fn client_addr() -> SocketAddr {
    "198.51.100.7:50000".parse().unwrap()
}

pub fn identity() -> Arc<DtlsIdentity> {
    static ID: std::sync::OnceLock<Arc<DtlsIdentity>> = std::sync::OnceLock::new();
    ID.get_or_init(|| Arc::new(DtlsIdentity::generate().expect("identity")))
        .clone()
}

pub struct UseCandidate;
impl Setter for UseCandidate {
    fn add_to(&self, m: &mut Message) -> Result<(), rtc_shared::error::Error> {
        m.add(rtc_stun::attributes::ATTR_USE_CANDIDATE, &[]);
        Ok(())
    }
}

/// The player side: rtc-stun + rtc-dtls client + rtc-srtp.
pub struct Client {
    pub endpoint: Endpoint,
    config: Arc<HandshakeConfig>,
    pub fingerprint: Fingerprint,
    srtp_rx: Option<Context>,
    srtcp_tx: Option<Context>,
    pub connected: bool,
    /// The server's close_notify arrived.
    pub peer_closed: bool,
    provider: Arc<dyn rtc_dtls::crypto_provider::RTCCryptoProvider>,
}

impl Client {
    /// A client of the shared test identity offering AES-GCM SRTP (what most tests use).
    pub fn gcm() -> Self {
        Self::new(
            identity().fingerprint(),
            vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm],
        )
    }

    pub fn new(server_fp: Fingerprint, profiles: Vec<SrtpProtectionProfile>) -> Self {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let cert =
            Certificate::generate_self_signed(vec!["client".into()], provider.crypto()).unwrap();
        let fingerprint = Fingerprint::of_der(cert.certificate[0].as_ref());
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(profiles)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(Arc::new(move |certs: &[Vec<u8>], _| {
                let ok = certs
                    .first()
                    .is_some_and(|c| Fingerprint::of_der(c) == server_fp);
                if ok {
                    Ok(())
                } else {
                    Err(rtc_shared::error::Error::Other("server fingerprint".into()))
                }
            })))
            .build(true, None)
            .unwrap();
        Self {
            endpoint: Endpoint::new(client_addr(), TransportProtocol::UDP, None),
            config: Arc::new(config),
            fingerprint,
            srtp_rx: None,
            srtcp_tx: None,
            connected: false,
            peer_closed: false,
            provider,
        }
    }

    pub fn binding_request(&self, pwd: &str, use_candidate: bool) -> Vec<u8> {
        let mut m = Message::new();
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(rtc_stun::textattrs::TextAttribute::new(
                rtc_stun::attributes::ATTR_USERNAME,
                format!("{SERVER_UFRAG}:{CLIENT_UFRAG}"),
            )),
        ];
        if use_candidate {
            setters.push(Box::new(UseCandidate));
        }
        setters.push(Box::new(
            rtc_stun::integrity::MessageIntegrity::new_short_term_integrity_with_provider(
                pwd.to_owned(),
                self.provider.crypto(),
            ),
        ));
        setters.push(Box::new(rtc_stun::fingerprint::FINGERPRINT));
        m.build(&setters).unwrap();
        m.raw.clone()
    }

    pub fn check_binding_response(&self, data: &[u8]) -> SocketAddr {
        let mut m = Message::new();
        m.unmarshal_binary(data).unwrap();
        rtc_stun::fingerprint::FINGERPRINT.check(&m).unwrap();
        rtc_stun::integrity::MessageIntegrity::check(
            &mut m,
            SERVER_PWD.as_bytes(),
            self.provider.crypto(),
        )
        .unwrap();
        let mut xor = rtc_stun::xoraddr::XorMappedAddress::default();
        rtc_stun::message::Getter::get_from(&mut xor, &m).unwrap();
        SocketAddr::new(xor.ip, xor.port)
    }

    pub fn start_dtls(&mut self, now: Instant) {
        self.endpoint
            .connect(now, server_addr(), self.config.clone(), None)
            .unwrap();
    }

    pub fn outgoing(&mut self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        while let Some(t) = self.endpoint.poll_transmit() {
            v.push(t.message.to_vec());
        }
        v
    }

    pub fn receive_dtls(&mut self, now: Instant, data: &[u8]) {
        let events = self
            .endpoint
            .read(now, server_addr(), None, BytesMut::from(data))
            .unwrap();
        for e in events {
            if let EndpointEvent::PeerClosed = e {
                self.peer_closed = true;
            }
            if let EndpointEvent::HandshakeComplete = e {
                self.connected = true;
                let state = self.endpoint.get_connection_state(server_addr()).unwrap();
                let profile = match state.srtp_protection_profile() {
                    SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => {
                        ProtectionProfile::AeadAes128Gcm
                    }
                    _ => ProtectionProfile::Aes128CmHmacSha1_80,
                };
                let mut cfg = rtc_srtp::config::Config {
                    profile,
                    ..Default::default()
                };
                let km = state
                    .export_keying_material(
                        rtc_srtp::config::LABEL_EXTRACTOR_DTLS_SRTP,
                        &[],
                        cfg.keying_material_len(),
                    )
                    .unwrap();
                cfg.set_session_keys_from_keying_material(km.as_ref(), true)
                    .unwrap();
                let c = self.provider.crypto();
                self.srtp_rx = Some(
                    Context::new(
                        &cfg.keys.remote_master_key,
                        &cfg.keys.remote_master_salt,
                        profile,
                        None,
                        None,
                        c,
                    )
                    .unwrap(),
                );
                self.srtcp_tx = Some(
                    Context::new(
                        &cfg.keys.local_master_key,
                        &cfg.keys.local_master_salt,
                        profile,
                        None,
                        None,
                        c,
                    )
                    .unwrap(),
                );
            }
        }
    }

    pub fn decrypt_rtp(&mut self, data: &[u8]) -> BytesMut {
        self.srtp_rx.as_mut().unwrap().decrypt_rtp(data).unwrap()
    }

    pub fn decrypt_rtcp(&mut self, data: &[u8]) -> BytesMut {
        self.srtp_rx.as_mut().unwrap().decrypt_rtcp(data).unwrap()
    }

    /// SRTP from the client (a WHIP publisher's media).
    pub fn encrypt_rtp(&mut self, plain: &[u8]) -> Vec<u8> {
        self.srtcp_tx
            .as_mut()
            .unwrap()
            .encrypt_rtp(plain)
            .unwrap()
            .to_vec()
    }

    pub fn encrypt_rtcp(&mut self, plain: &[u8]) -> Vec<u8> {
        self.srtcp_tx
            .as_mut()
            .unwrap()
            .encrypt_rtcp(plain)
            .unwrap()
            .to_vec()
    }
}

pub fn params(client_fp: Fingerprint) -> SessionParams {
    SessionParams::new(
        IceConfig::new(SERVER_UFRAG.into(), SERVER_PWD.into(), CLIENT_UFRAG.into()),
        client_fp,
        vec![
            TrackParams {
                kind: TrackKind::Video,
                ssrc: VIDEO_SSRC,
                payload_type: 96,
                clock_rate: 90_000,
            },
            TrackParams {
                kind: TrackKind::Audio,
                ssrc: AUDIO_SSRC,
                payload_type: 111,
                clock_rate: 48_000,
            },
        ],
        identity(),
        NtpClock::new(Instant::now(), SystemTime::now()),
    )
}

pub fn media_packet(seq: u64, payload_len: usize) -> MediaPacket {
    let mut b = vec![0x80, 96];
    b.extend_from_slice(&(seq as u16).to_be_bytes());
    b.extend_from_slice(&(seq as u32 * 3000).to_be_bytes());
    b.extend_from_slice(&VIDEO_SSRC.to_be_bytes());
    b.extend((0..payload_len).map(|i| (i as u64 + seq) as u8));
    MediaPacket {
        bytes: Bytes::from(b),
        track: TrackKind::Video,
        seq,
        timestamp: seq as u32 * 3000,
        marker: true,
        frame_kind: FrameKind::Inter,
        keyframe_start: false,
        dts_ms: seq as i64 * 33,
        seq_range_offset: None,
    }
}

pub fn drain(s: &mut ViewerSession) -> Vec<Transmit> {
    let mut v = Vec::new();
    while let Some(t) = s.poll_transmit() {
        v.push(t);
    }
    v
}

pub fn events(s: &mut ViewerSession) -> Vec<SessionEvent> {
    let mut v = Vec::new();
    while let Some(e) = s.poll_event() {
        v.push(e);
    }
    v
}

/// Runs STUN and DTLS to completion; returns the time reached.
pub fn connect(session: &mut ViewerSession, client: &mut Client, t0: Instant) -> Instant {
    let req = client.binding_request(SERVER_PWD, true);
    session.handle_datagram(t0, client_addr(), &req).unwrap();
    let out = drain(session);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, client_addr());
    assert_eq!(client.check_binding_response(&out[0].data), client_addr());
    assert_eq!(
        events(session),
        vec![SessionEvent::IceConnected {
            remote: client_addr()
        }]
    );

    let mut now = t0;
    client.start_dtls(now);
    let mut saw_connected = false;
    for _ in 0..20 {
        now += Duration::from_millis(10);
        for d in client.outgoing() {
            let _ = session.handle_datagram(now, client_addr(), &d);
        }
        for t in drain(session) {
            assert_eq!(t.to, client_addr());
            client.receive_dtls(now, &t.data);
        }
        saw_connected |= events(session).contains(&SessionEvent::DtlsConnected);
        if saw_connected && client.connected {
            break;
        }
    }
    assert!(
        saw_connected && client.connected,
        "handshake did not finish"
    );
    assert!(session.is_established());
    now
}

use rtmlive::transport::shard::MediaSource;

/// A `MediaSource` over a fixed list of packets, with a retransmission cache.
pub struct VecSource {
    pub pending: Vec<MediaPacket>,
    pub cache: Vec<MediaPacket>,
    pub keyframe_requests: Arc<std::sync::atomic::AtomicUsize>,
}

impl MediaSource for VecSource {
    fn poll_packets(&mut self, out: &mut Vec<MediaPacket>) {
        out.append(&mut self.pending);
    }
    fn lookup(&self, track: TrackKind, seq16: u16) -> Option<MediaPacket> {
        self.cache
            .iter()
            .find(|p| p.track == track && p.seq as u16 == seq16)
            .cloned()
    }
    fn request_keyframe(&mut self, _track: TrackKind) {
        self.keyframe_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs STUN and the DTLS handshake of `client` against the one pending session of `shard`
/// (inserted with the client's fingerprint); returns with the session established.
pub fn connect_via_shard(
    shard: &mut rtmlive::transport::shard::Shard,
    client: &mut Client,
    now: Instant,
) {
    let mut out = Vec::new();
    shard.handle_datagram(
        now,
        client_addr(),
        &client.binding_request(SERVER_PWD, true),
    );
    shard.drain_transmits(&mut out);
    assert_eq!(out.len(), 1, "one STUN response");
    client.check_binding_response(&out[0].data);
    out.clear();
    client.start_dtls(now);
    for _ in 0..10 {
        for d in client.outgoing() {
            shard.handle_datagram(now, client_addr(), &d);
        }
        shard.drain_transmits(&mut out);
        for t in out.drain(..) {
            client.receive_dtls(now, &t.data);
        }
        if client.connected && shard.pending() == 0 {
            break;
        }
    }
    assert!(client.connected, "handshake did not finish");
    assert_eq!(shard.pending(), 0);
}

/// A `MediaSource` whose packets the test hands over while the session runs.
pub struct SharedSource(pub Arc<std::sync::Mutex<Vec<MediaPacket>>>);

impl MediaSource for SharedSource {
    fn poll_packets(&mut self, out: &mut Vec<MediaPacket>) {
        out.append(&mut self.0.lock().unwrap());
    }
    fn lookup(&self, _track: TrackKind, _seq16: u16) -> Option<MediaPacket> {
        None
    }
    fn request_keyframe(&mut self, _track: TrackKind) {}
}
