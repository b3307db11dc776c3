//! SRTP/SRTCP of one viewer and the per-viewer header rewrite.
//!
//! A stream is packetized once; the session's job is to turn a shared [`MediaPacket`] into this
//! viewer's SRTP datagram with exactly one copy: the shared bytes are copied (and, when the
//! viewer needs it, rewritten: [`Rewrite`]) into the datagram's own buffer, which
//! [`RtpProtector`] then encrypts in place. Outbound SRTCP and everything inbound go through
//! `rtc-srtp`'s contexts (which keep the replay windows); they are rare next to media.

use bytes::BytesMut;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

mod protect;
mod rewrite;

pub use protect::RtpProtector;
pub use rewrite::Rewrite;

use super::dtls::SrtpKeys;
use super::ext_policy::ExtensionPolicy;
use crate::rtp::MediaPacket;

/// Room for an extension block that grows when renumbered (one-byte to two-byte form).
const REWRITE_GROWTH: usize = 32;

/// SRTCP replay window for inbound RTCP (RFC 3711 §3.3.2 suggests at least 64).
const REPLAY_WINDOW: usize = 128;

/// Errors of the SRTP layer.
#[derive(Debug, thiserror::Error)]
pub enum SrtpError {
    #[error("srtp: {0}")]
    Srtp(#[from] rtc_shared::error::Error),
    #[error("RTP packet shorter than its fixed header")]
    ShortPacket,
    #[error("frame-seq-range offset {0} lies outside the packet")]
    BadSeqRangeOffset(u16),
    #[error("not an RTP version 2 packet")]
    NotRtp,
    #[error("SRTP master key or salt of the wrong length")]
    KeyLength,
    #[error("SRTP protection profile {0:?} not supported")]
    UnsupportedProfile(ProtectionProfile),
    #[error("crypto: {0}")]
    Crypto(String),
}

impl SrtpError {
    /// Whether an incoming packet was refused by the replay window (a duplicate or a packet
    /// older than the window), as opposed to failing authentication.
    pub fn is_replay(&self) -> bool {
        use rtc_shared::error::Error;
        matches!(
            self,
            SrtpError::Srtp(Error::SrtpSsrcDuplicated(..) | Error::SrtcpSsrcDuplicated(..))
        )
    }
}

/// The SRTP state of a viewer: outbound RTP (in place), outbound SRTCP (our keys) and
/// inbound (the client's keys).
pub struct SrtpSession {
    rtp_tx: RtpProtector,
    tx: Context,
    rx: Context,
    profile: ProtectionProfile,
}

impl SrtpSession {
    /// Builds both contexts from exported keys. Inbound SRTCP gets replay protection.
    pub fn new(keys: &SrtpKeys, provider: &dyn RTCCryptoProvider) -> Result<Self, SrtpError> {
        let tx = Context::new(
            &keys.local_key,
            &keys.local_salt,
            keys.profile,
            None,
            None,
            provider.crypto(),
        )?;
        let rx = Context::new(
            &keys.remote_key,
            &keys.remote_salt,
            keys.profile,
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
            provider.crypto(),
        )?;
        let rtp_tx = RtpProtector::new(
            provider.crypto(),
            keys.profile,
            &keys.local_key,
            &keys.local_salt,
        )?;
        Ok(Self {
            rtp_tx,
            tx,
            rx,
            profile: keys.profile,
        })
    }

    /// The negotiated profile.
    pub fn profile(&self) -> ProtectionProfile {
        self.profile
    }

    /// Protects one shared media packet for this viewer, rewriting per `rewrite`: one copy
    /// into the datagram's buffer, encrypted where it lies.
    pub fn protect_media(
        &mut self,
        pkt: &MediaPacket,
        rewrite: &Rewrite,
        ext: &ExtensionPolicy,
    ) -> Result<BytesMut, SrtpError> {
        let overhead = self.rtp_tx.overhead();
        let mut out;
        if rewrite.is_identity_for(&pkt.bytes, ext) {
            out = BytesMut::with_capacity(pkt.bytes.len() + overhead);
            out.extend_from_slice(&pkt.bytes);
        } else {
            out = BytesMut::with_capacity(pkt.bytes.len() + REWRITE_GROWTH + overhead);
            rewrite.apply(pkt, ext, &mut out)?;
        }
        self.rtp_tx.protect(&mut out)?;
        Ok(out)
    }

    /// Protects an RTCP compound packet we send (SR, BYE).
    pub fn protect_rtcp(&mut self, plain: &[u8]) -> Result<BytesMut, SrtpError> {
        Ok(self.tx.encrypt_rtcp(plain)?)
    }

    /// Authenticates and decrypts an SRTP packet from the client (a WHIP publisher's media).
    pub fn unprotect_rtp(&mut self, data: &[u8]) -> Result<BytesMut, SrtpError> {
        Ok(self.rx.decrypt_rtp(data)?)
    }

    /// Authenticates and decrypts an SRTCP packet from the client.
    pub fn unprotect_rtcp(&mut self, data: &[u8]) -> Result<BytesMut, SrtpError> {
        Ok(self.rx.decrypt_rtcp(data)?)
    }
}
