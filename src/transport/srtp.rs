//! SRTP/SRTCP contexts of one viewer (`rtc-srtp`) and the per-viewer header rewrite.
//!
//! A stream is packetized once; the session's job is to turn a shared [`MediaPacket`] into this
//! viewer's SRTP datagram. When the viewer sees the stream's own SSRC, payload type, sequence
//! numbers and timestamps (the common case) the shared bytes are handed to `rtc-srtp` directly and
//! its output buffer is the only per-viewer copy. When the session rewrites (co-host switch, GOP
//! jump, a different negotiated SSRC/PT) the packet is first copied into a per-shard scratch
//! buffer, patched in O(1) at fixed offsets (no reparse), then protected.
//!
//! `rtc-srtp` has no in-place API: every protect allocates its output `BytesMut` and parses the
//! RTP header again. `benches/srtp_fanout.rs` measures what that costs (see docs/transport.md).

use bytes::BytesMut;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use super::dtls::SrtpKeys;
use super::ext_policy::ExtensionPolicy;
use crate::rtp::MediaPacket;
use crate::rtp::ext::RtmExt;

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
}

/// How one track's packets are rewritten for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// SSRC the viewer was told in the answer.
    pub ssrc: u32,
    /// Payload type the viewer negotiated.
    pub payload_type: u8,
    /// Added (wrapping) to every sequence number, and to the frame-seq-range values.
    pub seq_offset: u16,
    /// Added (wrapping) to every RTP timestamp.
    pub ts_offset: u32,
}

impl Rewrite {
    /// Whether `pkt` can be protected as is.
    fn is_identity_for(&self, pkt: &[u8], ext: &ExtensionPolicy) -> bool {
        ext.is_keep()
            && self.seq_offset == 0
            && self.ts_offset == 0
            && pkt.get(8..12) == Some(&self.ssrc.to_be_bytes()[..])
            && pkt.get(1).map(|b| b & 0x7F) == Some(self.payload_type)
    }

    /// The viewer-side sequence number of a stream sequence number.
    pub fn viewer_seq(&self, stream_seq: u16) -> u16 {
        stream_seq.wrapping_add(self.seq_offset)
    }

    /// The stream sequence number a viewer's NACK refers to.
    pub fn stream_seq(&self, viewer_seq: u16) -> u16 {
        viewer_seq.wrapping_sub(self.seq_offset)
    }

    /// Copies `pkt` into `scratch` with this rewrite and the extension policy applied.
    fn apply(
        &self,
        pkt: &MediaPacket,
        ext: &ExtensionPolicy,
        scratch: &mut Vec<u8>,
    ) -> Result<(), SrtpError> {
        let src = &pkt.bytes[..];
        if src.len() < 12 {
            return Err(SrtpError::ShortPacket);
        }
        let range_at = match ext {
            ExtensionPolicy::Keep => {
                scratch.clear();
                scratch.extend_from_slice(src);
                pkt.seq_range_offset
            }
            _ => ext
                .copy(src, scratch, Some(RtmExt::FrameSeqRange.default_id()))
                .map_err(|_| SrtpError::ShortPacket)?
                .and_then(|o| u16::try_from(o).ok()),
        };
        scratch[1] = (scratch[1] & 0x80) | (self.payload_type & 0x7F);
        let seq = u16::from_be_bytes([scratch[2], scratch[3]]).wrapping_add(self.seq_offset);
        scratch[2..4].copy_from_slice(&seq.to_be_bytes());
        let ts = u32::from_be_bytes([scratch[4], scratch[5], scratch[6], scratch[7]])
            .wrapping_add(self.ts_offset);
        scratch[4..8].copy_from_slice(&ts.to_be_bytes());
        scratch[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        if let Some(off) = range_at
            && self.seq_offset != 0
        {
            let o = usize::from(off);
            let range = scratch
                .get_mut(o..o + 4)
                .ok_or(SrtpError::BadSeqRangeOffset(off))?;
            let first = u16::from_be_bytes([range[0], range[1]]).wrapping_add(self.seq_offset);
            let last = u16::from_be_bytes([range[2], range[3]]).wrapping_add(self.seq_offset);
            range[0..2].copy_from_slice(&first.to_be_bytes());
            range[2..4].copy_from_slice(&last.to_be_bytes());
        }
        Ok(())
    }
}

/// The two SRTP contexts of a viewer: outbound (our keys) and inbound (the client's keys).
pub struct SrtpSession {
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
        Ok(Self {
            tx,
            rx,
            profile: keys.profile,
        })
    }

    /// The negotiated profile.
    pub fn profile(&self) -> ProtectionProfile {
        self.profile
    }

    /// Protects one shared media packet for this viewer, rewriting per `rewrite`.
    pub fn protect_media(
        &mut self,
        pkt: &MediaPacket,
        rewrite: &Rewrite,
        ext: &ExtensionPolicy,
        scratch: &mut Vec<u8>,
    ) -> Result<BytesMut, SrtpError> {
        if rewrite.is_identity_for(&pkt.bytes, ext) {
            return Ok(self.tx.encrypt_rtp(&pkt.bytes)?);
        }
        rewrite.apply(pkt, ext, scratch)?;
        Ok(self.tx.encrypt_rtp(scratch)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{FrameKind, TrackKind};
    use bytes::Bytes;

    fn packet(seq_range: bool) -> MediaPacket {
        let mut b = vec![0x90, 96, 0x12, 0x34, 0, 0, 0x10, 0, 0xAA, 0xBB, 0xCC, 0xDD];
        // one-byte extension block: id 21 len 4 (frame-seq-range)
        b.extend_from_slice(&[
            0xBE,
            0xDE,
            0,
            2,
            (21 << 4) | 3,
            0x12,
            0x30,
            0x12,
            0x35,
            0,
            0,
            0,
        ]);
        b.extend_from_slice(&[1, 2, 3, 4]);
        MediaPacket {
            bytes: Bytes::from(b),
            track: TrackKind::Video,
            seq: 0x1234,
            timestamp: 0x1000,
            marker: false,
            frame_kind: FrameKind::Key,
            keyframe_start: true,
            dts_ms: 0,
            seq_range_offset: seq_range.then_some(17),
        }
    }

    #[test]
    fn rewrite_patches_header_and_range() {
        let r = Rewrite {
            ssrc: 0x01020304,
            payload_type: 100,
            seq_offset: 0x10,
            ts_offset: 5,
        };
        let mut s = Vec::new();
        let p = packet(true);
        r.apply(&p, &ExtensionPolicy::Keep, &mut s).unwrap();
        assert_eq!(s[1], 100);
        assert_eq!(&s[2..4], &[0x12, 0x44]);
        assert_eq!(&s[4..8], &[0, 0, 0x10, 5]);
        assert_eq!(&s[8..12], &[1, 2, 3, 4]);
        assert_eq!(&s[17..21], &[0x12, 0x40, 0x12, 0x45]);
        assert_eq!(&s[24..], &[1, 2, 3, 4]);
        assert_eq!(r.stream_seq(r.viewer_seq(0xFFFF)), 0xFFFF);
    }

    #[test]
    fn identity_is_detected_and_bad_offset_rejected() {
        let p = packet(false);
        let id = Rewrite {
            ssrc: 0xAABBCCDD,
            payload_type: 96,
            seq_offset: 0,
            ts_offset: 0,
        };
        assert!(id.is_identity_for(&p.bytes, &ExtensionPolicy::Keep));
        assert!(!id.is_identity_for(&p.bytes, &ExtensionPolicy::Strip));
        let mut bad = packet(true);
        bad.seq_range_offset = Some(200);
        let r = Rewrite {
            seq_offset: 1,
            ..id
        };
        assert!(matches!(
            r.apply(&bad, &ExtensionPolicy::Keep, &mut Vec::new()),
            Err(SrtpError::BadSeqRangeOffset(200))
        ));
    }
}
