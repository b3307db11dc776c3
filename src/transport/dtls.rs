//! DTLS-SRTP (RFC 5763/5764) over `rtc-dtls`'s sans-IO [`Endpoint`]: the server side for
//! every viewer, and the client side for a publisher whose offer insists on
//! `a=setup:passive` (the default of ffmpeg's `whip` muxer).
//!
//! The server identity (one self-signed ECDSA P-256 certificate and the handshake configuration
//! built from it) is created once per process and shared by every viewer as an
//! `Arc<HandshakeConfig>`; building it per viewer would cost a key import per session. Because
//! the configuration is shared, it cannot hold a viewer's expected fingerprint: the handshake
//! requires *a* client certificate (and rtc-dtls checks the client's CertificateVerify
//! signature with it), and [`DtlsServer`] compares its SHA-256 fingerprint against the one from
//! the viewer's offer as soon as the handshake completes, before any key is exported or any
//! media is sent.
//!
//! `rtc-dtls` keys associations by remote address and creates one for *any* datagram, so each
//! viewer gets its own `Endpoint` addressed with the fixed key [`PEER_KEY`], and the session
//! feeds it only datagrams from ICE-verified addresses; replies go to the ICE-selected address.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use rtc_srtp::protection_profile::ProtectionProfile;

/// The address every viewer's `Endpoint` knows its one peer by (TEST-NET-1, never routed).
pub const PEER_KEY: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 9));
const LOCAL_KEY: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 9));

/// Errors of the DTLS layer.
#[derive(Debug, thiserror::Error)]
pub enum DtlsError {
    #[error("dtls: {0}")]
    Dtls(#[from] rtc_shared::error::Error),
    #[error("crypto provider: {0}")]
    Crypto(String),
    #[error("the client certificate does not match the fingerprint from the offer")]
    FingerprintMismatch,
    #[error("the client sent no certificate")]
    NoClientCertificate,
    #[error("negotiated SRTP profile {0:?} is not supported")]
    UnsupportedProfile(SrtpProtectionProfile),
    #[error("handshake not complete")]
    NotConnected,
}

/// A SHA-256 certificate fingerprint (RFC 8122 `a=fingerprint:sha-256 ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprint of a DER certificate.
    pub fn of_der(der: &[u8]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    /// Parses `AB:CD:...` (32 colon-separated hex bytes, either case), as SDP writes it.
    pub fn parse(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        let mut n = 0;
        for part in s.trim().split(':') {
            if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            let b = u8::from_str_radix(part, 16).ok()?;
            *out.get_mut(n)? = b;
            n += 1;
        }
        (n == 32).then_some(Self(out))
    }
}

impl std::fmt::Display for Fingerprint {
    /// Upper-case colon-separated hex, the SDP form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// Which end of the DTLS handshake the edge is (RFC 5763 `a=setup`: `passive` = server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DtlsRole {
    /// The edge waits for the ClientHello (`a=setup:passive` in the answer). Viewers always.
    #[default]
    Server,
    /// The edge sends the ClientHello once ICE connected (`a=setup:active`).
    Client,
}

/// The server's DTLS identity, created once and shared by all sessions.
pub struct DtlsIdentity {
    config: Arc<HandshakeConfig>,
    client_config: Arc<HandshakeConfig>,
    fingerprint: Fingerprint,
    provider: Arc<dyn RTCCryptoProvider>,
}

impl DtlsIdentity {
    /// Generates a self-signed ECDSA P-256 certificate and the server handshake configuration:
    /// SRTP profiles AEAD_AES_128_GCM (preferred) and AES128_CM_HMAC_SHA1_80, client certificate
    /// required, extended master secret required.
    pub fn generate() -> Result<Self, DtlsError> {
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| DtlsError::Crypto(e.to_string()))?;
        let cert =
            Certificate::generate_self_signed(vec!["rtmlive".to_owned()], provider.crypto())?;
        let fingerprint = Fingerprint::of_der(
            cert.certificate
                .first()
                .map(|c| c.as_ref())
                .ok_or(DtlsError::NoClientCertificate)?,
        );
        let client_config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert.clone()])
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            // The fingerprint check replaces the CA chain here too.
            .with_insecure_skip_verify(true)
            .build(true, None)?;
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            // No CA chain in WebRTC: the fingerprint check in `DtlsServer` replaces it.
            .with_insecure_skip_verify(true)
            .build(false, None)?;
        Ok(Self {
            config: Arc::new(config),
            client_config: Arc::new(client_config),
            fingerprint,
            provider,
        })
    }

    /// Our certificate's fingerprint, for `a=fingerprint:sha-256` / the miniSDP answer.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The crypto provider SRTP contexts are built with.
    pub fn provider(&self) -> &Arc<dyn RTCCryptoProvider> {
        &self.provider
    }

    /// The shared handshake configuration.
    pub fn handshake_config(&self) -> &Arc<HandshakeConfig> {
        &self.config
    }
}

/// Whether `data` is a DTLS record carrying the start of a ClientHello **without a cookie**
/// (RFC 6347 §4.2.1): the one message a server may answer, with a HelloVerifyRequest, before
/// the client's address is verified. The HelloVerifyRequest exists for exactly that purpose:
/// it is smaller than the ClientHello, allocates no handshake state worth protecting, and
/// proves nothing but that the client receives at its address.
pub fn is_cookieless_client_hello(data: &[u8]) -> bool {
    const RECORD: usize = 13;
    const HANDSHAKE: usize = 12;
    // Record: content type 22 (handshake), epoch 0. Handshake: type 1 (client_hello), the
    // first fragment (offset 0).
    let record_ok = data.first() == Some(&22) && data.get(3..5) == Some(&[0, 0]);
    let hello =
        data.get(RECORD) == Some(&1) && data.get(RECORD + 6..RECORD + 9) == Some(&[0, 0, 0]);
    if !(record_ok && hello) {
        return false;
    }
    // ClientHello body: version (2), random (32), session_id <0..32>, cookie <0..255>.
    let body = RECORD + HANDSHAKE;
    let Some(&sid_len) = data.get(body + 34) else {
        return false;
    };
    data.get(body + 35 + usize::from(sid_len)) == Some(&0)
}

/// SRTP master keys exported from a finished handshake.
pub struct SrtpKeys {
    pub profile: ProtectionProfile,
    pub local_key: Vec<u8>,
    pub local_salt: Vec<u8>,
    pub remote_key: Vec<u8>,
    pub remote_salt: Vec<u8>,
}

/// What one inbound DTLS datagram produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DtlsProgress {
    /// The handshake completed with this datagram (the fingerprint is verified: keys are ready).
    pub completed: bool,
    /// The peer sent close_notify.
    pub peer_closed: bool,
}

/// The DTLS side of one session (named for its usual role; see [`DtlsRole`]).
///
/// WebRTC media uses DTLS only to agree on SRTP keys; no application data follows. Once the
/// peer has proved it finished the handshake too (its first authenticated SRTP/SRTCP packet),
/// the session [retires](Self::retire) the endpoint: its handshake state and cached flights
/// are most of a viewer's memory (about 15 KB of 18), and all that is still needed of it is the
/// close_notify it would send at the end, which is built at that moment (no DTLS record follows
/// it, so its sequence number is already known) and kept as 40-odd bytes.
pub struct DtlsServer {
    /// `None` once retired.
    endpoint: Option<Box<Endpoint>>,
    /// The close_notify prepared at retirement, sent by [`Self::close`].
    close_notify: Vec<Box<[u8]>>,
    /// Datagrams to hand out through [`Self::poll_transmit`] after retirement.
    queued: Vec<BytesMut>,
    expected: Fingerprint,
    completed: bool,
    role: DtlsRole,
    /// Client role: the configuration to connect with, until [`Self::connect`] used it.
    client: Option<Arc<HandshakeConfig>>,
}

impl DtlsServer {
    pub fn new(identity: &DtlsIdentity, expected_client_fingerprint: Fingerprint) -> Self {
        Self::with_role(identity, expected_client_fingerprint, DtlsRole::Server)
    }

    /// A DTLS endpoint in `role`; `expected_peer_fingerprint` is checked either way.
    pub fn with_role(
        identity: &DtlsIdentity,
        expected_peer_fingerprint: Fingerprint,
        role: DtlsRole,
    ) -> Self {
        let (server, client) = match role {
            DtlsRole::Server => (Some(identity.config.clone()), None),
            DtlsRole::Client => (None, Some(identity.client_config.clone())),
        };
        Self {
            endpoint: Some(Box::new(Endpoint::new(
                LOCAL_KEY,
                TransportProtocol::UDP,
                server,
            ))),
            close_notify: Vec::new(),
            queued: Vec::new(),
            expected: expected_peer_fingerprint,
            completed: false,
            role,
            client,
        }
    }

    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Client role: sends the ClientHello (once; later calls do nothing). The session calls
    /// this when ICE has verified the peer's address.
    pub fn connect(&mut self, now: Instant) -> Result<(), DtlsError> {
        if let (Some(config), Some(ep)) = (self.client.take(), self.endpoint.as_mut()) {
            ep.connect(now, PEER_KEY, config, None)?;
        }
        Ok(())
    }

    /// Feeds one DTLS datagram (from a verified address).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        data: &[u8],
    ) -> Result<DtlsProgress, DtlsError> {
        let mut progress = DtlsProgress::default();
        let Some(ep) = self.endpoint.as_mut() else {
            // Retired: the peer has finished the handshake, so nothing it sends can need an
            // answer (a close_notify arrives with its RTCP BYE, or consent expires).
            return Ok(progress);
        };
        let events = ep.read(now, PEER_KEY, None, BytesMut::from(data))?;
        for event in events {
            match event {
                EndpointEvent::HandshakeComplete => {
                    self.verify_fingerprint()?;
                    self.completed = true;
                    progress.completed = true;
                }
                EndpointEvent::PeerClosed => progress.peer_closed = true,
                // WebRTC media sessions without data channels carry no application data.
                _ => {}
            }
        }
        Ok(progress)
    }

    fn verify_fingerprint(&self) -> Result<(), DtlsError> {
        let state = self
            .endpoint
            .as_ref()
            .and_then(|ep| ep.get_connection_state(PEER_KEY))
            .ok_or(DtlsError::NotConnected)?;
        let der = state
            .peer_certificates
            .first()
            .ok_or(DtlsError::NoClientCertificate)?;
        if Fingerprint::of_der(der) != self.expected {
            return Err(DtlsError::FingerprintMismatch);
        }
        Ok(())
    }

    /// Whether the handshake finished and the fingerprint matched.
    pub fn is_connected(&self) -> bool {
        self.completed
    }

    /// Exports the SRTP keys (RFC 5764 §4.2) once connected.
    pub fn srtp_keys(&self) -> Result<SrtpKeys, DtlsError> {
        if !self.completed {
            return Err(DtlsError::NotConnected);
        }
        let state = self
            .endpoint
            .as_ref()
            .and_then(|ep| ep.get_connection_state(PEER_KEY))
            .ok_or(DtlsError::NotConnected)?;
        let profile = match state.srtp_protection_profile() {
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => ProtectionProfile::AeadAes128Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
                ProtectionProfile::Aes128CmHmacSha1_80
            }
            other => return Err(DtlsError::UnsupportedProfile(other)),
        };
        let mut cfg = rtc_srtp::config::Config {
            profile,
            ..Default::default()
        };
        let material = state.export_keying_material(
            rtc_srtp::config::LABEL_EXTRACTOR_DTLS_SRTP,
            &[],
            cfg.keying_material_len(),
        )?;
        cfg.set_session_keys_from_keying_material(
            material.as_ref(),
            self.role == DtlsRole::Client,
        )?;
        let keys = std::mem::take(&mut cfg.keys);
        Ok(SrtpKeys {
            profile,
            local_key: keys.local_master_key,
            local_salt: keys.local_master_salt,
            remote_key: keys.remote_master_key,
            remote_salt: keys.remote_master_salt,
        })
    }

    /// The next datagram to send to the peer.
    pub fn poll_transmit(&mut self) -> Option<BytesMut> {
        if let Some(d) = self.queued.pop() {
            return Some(d);
        }
        self.endpoint.as_mut()?.poll_transmit().map(|t| t.message)
    }

    /// When the handshake next needs [`Self::handle_timeout`] (flight retransmission).
    ///
    /// `None` once connected: a server's last flight is resent only when the client resends
    /// its own (input, not a timer), and a client is connected only after the server's last
    /// flight arrived. Skipping the endpoint then matters: its look-up is a hash-map probe, and
    /// a shard asks every session it touches.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.completed {
            return None;
        }
        self.endpoint.as_ref()?.poll_timeout(&PEER_KEY)
    }

    /// Drives flight retransmission; fails when the retransmissions are exhausted.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsError> {
        if self.completed {
            // No timer after the handshake (see `poll_timeout`).
            return Ok(());
        }
        let Some(ep) = self.endpoint.as_mut() else {
            return Ok(());
        };
        match ep.handle_timeout(PEER_KEY, now) {
            Ok(()) => Ok(()),
            // No association yet (no ClientHello seen): nothing to drive.
            Err(rtc_shared::error::Error::InvalidRemoteAddress(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Queues close_notify.
    pub fn close(&mut self, now: Instant) {
        match self.endpoint.as_mut() {
            Some(ep) => {
                let _ = ep.stop(now, PEER_KEY);
            }
            None => {
                let prepared = std::mem::take(&mut self.close_notify);
                self.queued
                    .extend(prepared.iter().rev().map(|d| BytesMut::from(&d[..])));
            }
        }
    }

    /// Frees the handshake state once the peer has proved it is connected (see the type's
    /// documentation), keeping only the close_notify. Call when an authenticated SRTP or SRTCP
    /// packet arrives; does nothing before the handshake completed or when already retired.
    /// Anything still queued for the peer stays queued.
    pub fn retire(&mut self, now: Instant) {
        if !self.completed {
            return;
        }
        let Some(mut ep) = self.endpoint.take() else {
            return;
        };
        let mut pending = Vec::new();
        while let Some(t) = ep.poll_transmit() {
            pending.push(t.message);
        }
        let _ = ep.stop(now, PEER_KEY);
        while let Some(t) = ep.poll_transmit() {
            self.close_notify.push(t.message[..].into());
        }
        drop(ep);
        // `queued` pops from the back.
        self.queued.extend(pending.into_iter().rev());
    }

    /// Whether [`Self::retire`] freed the endpoint.
    pub fn is_retired(&self) -> bool {
        self.endpoint.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_through_text() {
        let fp = Fingerprint::of_der(b"certificate");
        let text = fp.to_string();
        assert_eq!(text.len(), 32 * 3 - 1);
        assert_eq!(Fingerprint::parse(&text), Some(fp));
        assert_eq!(Fingerprint::parse(&text.to_lowercase()), Some(fp));
        assert_eq!(Fingerprint::parse("AB:CD"), None);
        assert_eq!(Fingerprint::parse(&format!("{text}:00")), None);
        assert_eq!(Fingerprint::parse("+1:00"), None);
    }

    /// A DTLS 1.2 ClientHello record with `sid` session-id bytes and `cookie` cookie bytes.
    fn client_hello(sid: usize, cookie: usize) -> Vec<u8> {
        let mut d = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        d.extend([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        d.extend([0xFE, 0xFD]);
        d.extend([7u8; 32]);
        d.push(sid as u8);
        d.extend(std::iter::repeat_n(9u8, sid));
        d.push(cookie as u8);
        d.extend(std::iter::repeat_n(5u8, cookie));
        d.extend([0, 2, 0xC0, 0x2B, 1, 0]);
        d
    }

    #[test]
    fn cookieless_client_hello_is_recognised_and_nothing_else() {
        assert!(is_cookieless_client_hello(&client_hello(0, 0)));
        assert!(is_cookieless_client_hello(&client_hello(32, 0)));
        assert!(!is_cookieless_client_hello(&client_hello(0, 20)));
        assert!(!is_cookieless_client_hello(&client_hello(32, 20)));
        let mut epoch1 = client_hello(0, 0);
        epoch1[4] = 1;
        assert!(!is_cookieless_client_hello(&epoch1));
        let mut server_hello = client_hello(0, 0);
        server_hello[13] = 2;
        assert!(!is_cookieless_client_hello(&server_hello));
        let mut fragment = client_hello(0, 0);
        fragment[21] = 1;
        assert!(!is_cookieless_client_hello(&fragment));
        // Every truncation is refused without panicking.
        let full = client_hello(32, 0);
        for n in 0..full.len() {
            let cut = &full[..n];
            let expected = n > 13 + 12 + 35 + 32;
            assert_eq!(is_cookieless_client_hello(cut), expected, "{n} bytes");
        }
    }

    #[test]
    fn identity_generates() {
        let id = DtlsIdentity::generate().expect("identity");
        assert_ne!(id.fingerprint().0, [0u8; 32]);
    }
}
