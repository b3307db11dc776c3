//! DTLS-SRTP, client side: the player's self-signed certificate, the handshake with the edge
//! (rtc-dtls `Endpoint` in client mode, driven sans-IO), the check of the server certificate
//! against the fingerprint from the answer, and the SRTP contexts keyed from the handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use rtc_srtp::config::{Config as SrtpConfig, LABEL_EXTRACTOR_DTLS_SRTP};
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

#[derive(Debug, thiserror::Error)]
pub enum DtlsError {
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("DTLS config: {0}")]
    Config(String),
    #[error("DTLS handshake: {0}")]
    Handshake(String),
    #[error("server negotiated no SRTP profile we support")]
    NoSrtpProfile,
    #[error("SRTP keying: {0}")]
    Keying(String),
    #[error("the server closed the DTLS association")]
    Closed,
}

/// A SHA-256 certificate fingerprint (RFC 8122), the form SDP and miniSDP carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of_der(der: &[u8]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    /// `AB:CD:…` as in an SDP `a=fingerprint:sha-256` line.
    pub fn to_sdp_hex(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Parses `AB:CD:…` (case-insensitive).
    pub fn from_sdp_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        let mut n = 0;
        for part in s.trim().split(':') {
            *out.get_mut(n)? = u8::from_str_radix(part, 16).ok()?;
            n += 1;
        }
        (n == 32).then_some(Self(out))
    }
}

/// The player's DTLS identity: a fresh self-signed ECDSA P-256 certificate per process.
#[derive(Clone)]
pub struct LocalCertificate {
    pub certificate: Certificate,
    pub fingerprint: Fingerprint,
}

impl LocalCertificate {
    pub fn generate(provider: &Arc<dyn RTCCryptoProvider>) -> Result<Self, DtlsError> {
        let certificate =
            Certificate::generate_self_signed(vec!["player-test".to_owned()], provider.crypto())
                .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let der = certificate
            .certificate
            .first()
            .ok_or_else(|| DtlsError::Certificate("no certificate generated".into()))?;
        let fingerprint = Fingerprint::of_der(der.as_ref());
        Ok(Self {
            certificate,
            fingerprint,
        })
    }
}

/// Keys for both directions, ready for SRTP.
pub struct SrtpKeys {
    pub profile: ProtectionProfile,
    config: SrtpConfig,
}

fn srtp_profile(p: SrtpProtectionProfile) -> Option<ProtectionProfile> {
    match p {
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => Some(ProtectionProfile::AeadAes128Gcm),
        SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => Some(ProtectionProfile::AeadAes256Gcm),
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
            Some(ProtectionProfile::Aes128CmHmacSha1_80)
        }
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => {
            Some(ProtectionProfile::Aes128CmHmacSha1_32)
        }
        _ => None,
    }
}

/// The two SRTP contexts of a session: inbound media and RTCP, outbound RTCP.
pub struct SrtpSession {
    rx: Context,
    tx: Context,
    pub profile: ProtectionProfile,
}

impl SrtpSession {
    /// Replay window for inbound packets: large enough that retransmissions of a whole GOP
    /// (which arrive "late" by design under the no-drop policy) are not rejected as replays.
    pub const REPLAY_WINDOW: usize = 4096;

    pub fn new(keys: &SrtpKeys, provider: &Arc<dyn RTCCryptoProvider>) -> Result<Self, DtlsError> {
        let k = &keys.config.keys;
        let err = |e: rtc_shared::error::Error| DtlsError::Keying(e.to_string());
        let rx = Context::new(
            &k.remote_master_key,
            &k.remote_master_salt,
            keys.profile,
            Some(srtp_replay_protection(Self::REPLAY_WINDOW)),
            Some(srtcp_replay_protection(Self::REPLAY_WINDOW)),
            provider.crypto(),
        )
        .map_err(err)?;
        let tx = Context::new(
            &k.local_master_key,
            &k.local_master_salt,
            keys.profile,
            None,
            None,
            provider.crypto(),
        )
        .map_err(err)?;
        Ok(Self {
            rx,
            tx,
            profile: keys.profile,
        })
    }

    /// Authenticates and decrypts an SRTP packet.
    pub fn unprotect_rtp(&mut self, pkt: &[u8]) -> Result<BytesMut, rtc_shared::error::Error> {
        self.rx.decrypt_rtp(pkt)
    }

    /// Authenticates and decrypts an SRTCP packet.
    pub fn unprotect_rtcp(&mut self, pkt: &[u8]) -> Result<BytesMut, rtc_shared::error::Error> {
        self.rx.decrypt_rtcp(pkt)
    }

    /// Protects an outbound RTCP compound packet.
    pub fn protect_rtcp(&mut self, pkt: &[u8]) -> Result<BytesMut, rtc_shared::error::Error> {
        self.tx.encrypt_rtcp(pkt)
    }

    /// Protects an RTP packet (used by tests acting as the sender).
    pub fn protect_rtp(&mut self, pkt: &[u8]) -> Result<BytesMut, rtc_shared::error::Error> {
        self.tx.encrypt_rtp(pkt)
    }
}

/// The server fingerprint the handshake checks the server certificate against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// The answer has not arrived yet (ClientHello sent right behind the offer): any server
    /// certificate is refused until [`DtlsClient::set_expected`] is called. The server sends
    /// its certificate only after our STUN check, which needs the answer, so in practice the
    /// answer is always known by then.
    Pending,
    /// The answer carried no fingerprint (our server always sends one): accept any.
    Any,
    Exactly(Fingerprint),
}

impl From<Option<Fingerprint>> for Expected {
    fn from(f: Option<Fingerprint>) -> Self {
        f.map_or(Expected::Any, Expected::Exactly)
    }
}

/// The DTLS client of one session.
pub struct DtlsClient {
    endpoint: Endpoint,
    local: SocketAddr,
    remote: SocketAddr,
    config: Arc<HandshakeConfig>,
    expected: Arc<std::sync::Mutex<Expected>>,
    started: bool,
    done: bool,
}

impl DtlsClient {
    /// `expected` is the server fingerprint from the answer; `None` accepts any certificate
    /// (only for answers that carry none, which our server never sends).
    pub fn new(
        local: SocketAddr,
        remote: SocketAddr,
        cert: &LocalCertificate,
        expected: Option<Fingerprint>,
        provider: Arc<dyn RTCCryptoProvider>,
    ) -> Result<Self, DtlsError> {
        Self::build(local, remote, cert, expected.into(), provider)
    }

    /// A client whose server fingerprint is not known yet: for a ClientHello sent right
    /// behind the miniSDP offer, before the answer. Call [`Self::set_expected`] with the
    /// answer's fingerprint; until then every server certificate is refused.
    pub fn before_answer(
        local: SocketAddr,
        remote: SocketAddr,
        cert: &LocalCertificate,
        provider: Arc<dyn RTCCryptoProvider>,
    ) -> Result<Self, DtlsError> {
        Self::build(local, remote, cert, Expected::Pending, provider)
    }

    /// Sets the server fingerprint from the answer (see [`Self::before_answer`]).
    pub fn set_expected(&mut self, expected: Option<Fingerprint>) {
        if let Ok(mut e) = self.expected.lock() {
            *e = expected.into();
        }
    }

    /// Our address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Where the handshake is addressed.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    fn build(
        local: SocketAddr,
        remote: SocketAddr,
        cert: &LocalCertificate,
        expected: Expected,
        provider: Arc<dyn RTCCryptoProvider>,
    ) -> Result<Self, DtlsError> {
        let expected = Arc::new(std::sync::Mutex::new(expected));
        let slot = expected.clone();
        let verify: rtc_dtls::config::VerifyPeerCertificateFn =
            Arc::new(move |certs: &[Vec<u8>], _| {
                let refuse = |why: &str| Err(rtc_shared::error::Error::Other(why.into()));
                let expected = match slot.lock() {
                    Ok(e) => *e,
                    Err(_) => return refuse("fingerprint slot poisoned"),
                };
                match (expected, certs.first()) {
                    (Expected::Any, _) => Ok(()),
                    (Expected::Pending, _) => {
                        refuse("server certificate before the answer's fingerprint")
                    }
                    (Expected::Exactly(fp), Some(der)) if Fingerprint::of_der(der) == fp => Ok(()),
                    _ => refuse("server certificate does not match the answer's fingerprint"),
                }
            });
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider)
            .with_certificates(vec![cert.certificate.clone()])
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(verify))
            .build(true, Some(remote))
            .map_err(|e| DtlsError::Config(e.to_string()))?;
        Ok(Self {
            endpoint: Endpoint::new(local, TransportProtocol::UDP, None),
            local,
            remote,
            config: Arc::new(config),
            expected,
            started: false,
            done: false,
        })
    }

    pub fn is_started(&self) -> bool {
        self.started
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Queues the ClientHello.
    pub fn start(&mut self, now: Instant) -> Result<(), DtlsError> {
        if !self.started {
            self.endpoint
                .connect(now, self.remote, self.config.clone(), None)
                .map_err(|e| DtlsError::Handshake(e.to_string()))?;
            self.started = true;
        }
        Ok(())
    }

    /// A DTLS record from the server. Returns the SRTP keys when the handshake completes.
    pub fn handle(&mut self, now: Instant, data: &[u8]) -> Result<Option<SrtpKeys>, DtlsError> {
        if !self.started {
            return Ok(None);
        }
        let events = self
            .endpoint
            .read(now, self.remote, None, BytesMut::from(data))
            .map_err(|e| DtlsError::Handshake(e.to_string()))?;
        let mut keys = None;
        for ev in events {
            match ev {
                EndpointEvent::HandshakeComplete if !self.done => {
                    self.done = true;
                    keys = Some(self.export_keys()?);
                }
                EndpointEvent::PeerClosed => return Err(DtlsError::Closed),
                _ => {}
            }
        }
        Ok(keys)
    }

    fn export_keys(&self) -> Result<SrtpKeys, DtlsError> {
        let state = self
            .endpoint
            .get_connection_state(self.remote)
            .ok_or_else(|| DtlsError::Handshake("association vanished".into()))?;
        let profile =
            srtp_profile(state.srtp_protection_profile()).ok_or(DtlsError::NoSrtpProfile)?;
        let mut config = SrtpConfig {
            profile,
            ..SrtpConfig::default()
        };
        let material = state
            .export_keying_material(LABEL_EXTRACTOR_DTLS_SRTP, &[], config.keying_material_len())
            .map_err(|e| DtlsError::Keying(e.to_string()))?;
        config
            .set_session_keys_from_keying_material(material.as_ref(), true)
            .map_err(|e| DtlsError::Keying(e.to_string()))?;
        Ok(SrtpKeys { profile, config })
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<BytesMut> {
        self.endpoint.poll_transmit().map(|t| t.message)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.endpoint.poll_timeout(&self.remote)
    }

    /// Drives flight retransmissions.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsError> {
        if !self.started {
            return Ok(());
        }
        self.endpoint
            .handle_timeout(self.remote, now)
            .map_err(|e| DtlsError::Handshake(e.to_string()))
    }

    /// Queues a close_notify.
    pub fn close(&mut self, now: Instant) {
        let _ = self.endpoint.stop(now, self.remote);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rtc_dtls::config::ClientAuthType;
    use rtc_dtls::crypto_provider::default_provider;

    /// An rtc-dtls server endpoint configured the way the edge is (webrtc-stack-notes.md).
    pub(crate) fn server(
        addr: SocketAddr,
        provider: &Arc<dyn RTCCryptoProvider>,
    ) -> (Endpoint, Fingerprint) {
        let cert = LocalCertificate::generate(provider).unwrap();
        let cfg = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert.certificate.clone()])
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true)
            .build(false, None)
            .unwrap();
        (
            Endpoint::new(addr, TransportProtocol::UDP, Some(Arc::new(cfg))),
            cert.fingerprint,
        )
    }

    fn run(expected: impl FnOnce(Fingerprint) -> Option<Fingerprint>) -> Result<(), DtlsError> {
        let p = default_provider().unwrap();
        let (ca, sa): (SocketAddr, SocketAddr) = (
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.1:8000".parse().unwrap(),
        );
        let (mut srv, fp) = server(sa, &p);
        let cert = LocalCertificate::generate(&p).unwrap();
        let mut cli = DtlsClient::new(ca, sa, &cert, expected(fp), p.clone())?;
        let now = Instant::now();
        cli.start(now)?;
        let mut srv_done = false;
        let mut keys = None;
        for _ in 0..20 {
            while let Some(d) = cli.poll_transmit() {
                for ev in srv.read(now, ca, None, d).unwrap() {
                    srv_done |= matches!(ev, EndpointEvent::HandshakeComplete);
                }
            }
            while let Some(t) = srv.poll_transmit() {
                if let Some(k) = cli.handle(now, &t.message)? {
                    keys = Some(k);
                }
            }
            if keys.is_some() && srv_done {
                break;
            }
        }
        let keys = keys.ok_or_else(|| DtlsError::Handshake("no keys".into()))?;
        assert!(matches!(keys.profile, ProtectionProfile::AeadAes128Gcm));
        // SRTP: the server side's key schedule, mirrored, decrypts what we would receive.
        let state = srv.get_connection_state(ca).unwrap();
        let mut scfg = SrtpConfig {
            profile: keys.profile,
            ..SrtpConfig::default()
        };
        let mat = state
            .export_keying_material(LABEL_EXTRACTOR_DTLS_SRTP, &[], scfg.keying_material_len())
            .unwrap();
        scfg.set_session_keys_from_keying_material(mat.as_ref(), false)
            .unwrap();
        let server_keys = SrtpKeys {
            profile: keys.profile,
            config: scfg,
        };
        let mut s = SrtpSession::new(&server_keys, &p)?;
        let mut c = SrtpSession::new(&keys, &p)?;
        let rtp = [0x80u8, 96, 0, 1, 0, 0, 0, 9, 0, 0, 0, 42, 1, 2, 3, 4];
        let prot = s.protect_rtp(&rtp).unwrap();
        assert_eq!(&c.unprotect_rtp(&prot).unwrap()[..], &rtp[..]);
        let mut tampered = prot.to_vec();
        tampered[13] ^= 1;
        assert!(c.unprotect_rtp(&tampered).is_err());
        Ok(())
    }

    #[test]
    fn handshake_with_matching_fingerprint_keys_srtp() {
        run(Some).unwrap();
    }

    #[test]
    fn wrong_fingerprint_fails_the_handshake() {
        assert!(run(|_| Some(Fingerprint([7; 32]))).is_err());
    }

    #[test]
    fn fingerprint_hex_round_trip() {
        let f = Fingerprint([0xAB; 32]);
        assert_eq!(Fingerprint::from_sdp_hex(&f.to_sdp_hex()), Some(f));
        assert_eq!(Fingerprint::from_sdp_hex("AB:CD"), None);
        assert_eq!(Fingerprint::from_sdp_hex(&"00:".repeat(33)), None);
    }
}
