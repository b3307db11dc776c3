//! Outbound SRTP for RTP, in place: the fan-out hot path.
//!
//! `rtc-srtp`'s `Context::encrypt_rtp` re-parses the RTP header (allocating for its extension
//! elements), looks the SSRC up in two hash maps and allocates a fresh output buffer for every
//! packet. A viewer's egress already owns the one buffer the packet must be copied into (its
//! datagram), so this protector encrypts that buffer where it is and appends the tag: no
//! parse beyond the header length, no look-up beyond a two-entry scan, no second buffer.
//!
//! The cryptographic primitives are `rtc-crypto`'s (the same provider, ring's AES-GCM and
//! RustCrypto's AES-CTR/HMAC-SHA1, that `rtc-srtp` uses); only the framing is ours:
//! RFC 7714 (AEAD_AES_128_GCM) and RFC 3711 (AES_CM_128_HMAC_SHA1_80), session keys derived
//! with the RFC 3711 §4.3 AES-CM PRF (key derivation rate 0, as DTLS-SRTP uses). Tests check
//! every output against `rtc-srtp`'s decrypting context, across a sequence-number rollover and
//! with retransmissions of packets from before it.
//!
//! Inbound SRTP/SRTCP and outbound SRTCP stay with `rtc-srtp` (rare, and it keeps the replay
//! windows).

use bytes::BytesMut;
use rtc_srtp::crypto::{
    AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, HmacAlgorithm, Mac, RTCCrypto, StreamCipher,
    StreamCipherAlgorithm,
};
use rtc_srtp::protection_profile::ProtectionProfile;

use super::SrtpError;

/// SRTP key-derivation labels (RFC 3711 §4.3.2).
const LABEL_ENCRYPTION: u8 = 0x00;
const LABEL_AUTH: u8 = 0x01;
const LABEL_SALT: u8 = 0x02;

/// Distinct SSRCs tracked per viewer (audio, video, with room for a renegotiated pair).
const MAX_SSRCS: usize = 4;

enum Cipher {
    /// RFC 7714: AEAD over the payload, the header as associated data, 16-byte tag.
    Gcm {
        aead: Box<dyn AeadCipher>,
        salt: [u8; 12],
    },
    /// RFC 3711: AES counter mode over the payload, HMAC-SHA1 over header, payload and ROC,
    /// truncated to 80 bits.
    CmSha1 {
        ctr: Box<dyn StreamCipher>,
        mac: Box<dyn Mac>,
        salt: [u8; 14],
    },
}

/// The rollover counter of one SSRC as a sender sees it.
///
/// A sender's packets mostly go forward, but NACKed packets are sent again with their
/// original sequence number, which may lie before a rollover the sender has since passed: such
/// a packet must be protected with the ROC it first had, or the receiver cannot authenticate
/// it. The index is therefore estimated as a receiver does (RFC 3711 §3.3.1): the candidate
/// closest to the highest sequence number sent.
#[derive(Debug, Clone, Copy)]
struct SeqIndex {
    ssrc: u32,
    roc: u32,
    highest: u16,
}

impl SeqIndex {
    fn new(ssrc: u32, seq: u16) -> Self {
        SeqIndex {
            ssrc,
            roc: 0,
            highest: seq,
        }
    }

    /// The rollover counter for `seq`; advances the state when `seq` is the newest yet.
    fn roc_for(&mut self, seq: u16) -> u32 {
        let ahead = seq.wrapping_sub(self.highest);
        if ahead < 0x8000 {
            // Forward (or the same packet again).
            if seq < self.highest {
                self.roc = self.roc.wrapping_add(1);
            }
            self.highest = seq;
            self.roc
        } else if seq > self.highest {
            // Behind, across the last rollover: the previous ROC (none before the first).
            self.roc.saturating_sub(1)
        } else {
            self.roc
        }
    }
}

/// Protects outbound RTP packets of one session in their own buffer.
pub struct RtpProtector {
    cipher: Cipher,
    indexes: [Option<SeqIndex>; MAX_SSRCS],
}

impl std::fmt::Debug for RtpProtector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let profile = match self.cipher {
            Cipher::Gcm { .. } => "AEAD_AES_128_GCM",
            Cipher::CmSha1 { .. } => "AES_CM_128_HMAC_SHA1_80",
        };
        f.debug_struct("RtpProtector")
            .field("profile", &profile)
            .finish_non_exhaustive()
    }
}

/// RFC 3711 §4.3.3 AES-CM PRF, key derivation rate 0: `out.len()` bytes for `label`.
fn derive(
    crypto: &dyn RTCCrypto,
    label: u8,
    master_key: &[u8],
    master_salt: &[u8],
    out: &mut [u8],
) -> Result<(), SrtpError> {
    if master_key.len() != 16 || master_salt.len() > 14 {
        return Err(SrtpError::KeyLength);
    }
    // x = (label << 48) XOR master_salt, aligned left in the 128-bit counter block (x · 2^16).
    let mut x = [0u8; 16];
    x[..master_salt.len()].copy_from_slice(master_salt);
    x[7] ^= label;
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = x;
        block[14..16].copy_from_slice(&(i as u16).to_be_bytes());
        crypto
            .block_encrypt(BlockCipherAlgorithm::Aes128, master_key, &mut block)
            .map_err(|e| SrtpError::Crypto(e.to_string()))?;
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(())
}

/// Length of the RTP header (fixed part, CSRCs, extension block) of `pkt`: what SRTP leaves
/// in the clear.
fn header_len(pkt: &[u8]) -> Result<usize, SrtpError> {
    let b0 = *pkt.first().ok_or(SrtpError::ShortPacket)?;
    if b0 >> 6 != 2 {
        return Err(SrtpError::NotRtp);
    }
    let mut len = 12 + 4 * usize::from(b0 & 0x0F);
    if b0 & 0x10 != 0 {
        let words = pkt.get(len + 2..len + 4).ok_or(SrtpError::ShortPacket)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if pkt.len() < len {
        return Err(SrtpError::ShortPacket);
    }
    Ok(len)
}

impl RtpProtector {
    /// Derives the session keys from the DTLS-exported master key and salt (ours).
    pub fn new(
        crypto: &dyn RTCCrypto,
        profile: ProtectionProfile,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        let err = |e: rtc_srtp::crypto::CryptoError| SrtpError::Crypto(e.to_string());
        let cipher = match profile {
            ProtectionProfile::AeadAes128Gcm => {
                let mut key = [0u8; 16];
                let mut salt = [0u8; 12];
                derive(crypto, LABEL_ENCRYPTION, master_key, master_salt, &mut key)?;
                derive(crypto, LABEL_SALT, master_key, master_salt, &mut salt)?;
                Cipher::Gcm {
                    aead: crypto
                        .new_aead(AeadAlgorithm::Aes128Gcm, &key)
                        .map_err(err)?,
                    salt,
                }
            }
            ProtectionProfile::Aes128CmHmacSha1_80 => {
                let mut key = [0u8; 16];
                let mut auth = [0u8; 20];
                let mut salt = [0u8; 14];
                derive(crypto, LABEL_ENCRYPTION, master_key, master_salt, &mut key)?;
                derive(crypto, LABEL_AUTH, master_key, master_salt, &mut auth)?;
                derive(crypto, LABEL_SALT, master_key, master_salt, &mut salt)?;
                Cipher::CmSha1 {
                    ctr: crypto
                        .new_stream_cipher(StreamCipherAlgorithm::Aes128Ctr, &key)
                        .map_err(err)?,
                    mac: crypto.new_hmac(HmacAlgorithm::Sha1, &auth).map_err(err)?,
                    salt,
                }
            }
            other => return Err(SrtpError::UnsupportedProfile(other)),
        };
        Ok(RtpProtector {
            cipher,
            indexes: [None; MAX_SSRCS],
        })
    }

    /// Bytes a protected packet is longer than its plaintext (the tag).
    pub fn overhead(&self) -> usize {
        match self.cipher {
            Cipher::Gcm { .. } => 16,
            Cipher::CmSha1 { .. } => 10,
        }
    }

    fn roc_for(&mut self, ssrc: u32, seq: u16) -> u32 {
        if let Some(ix) = self.indexes.iter_mut().flatten().find(|ix| ix.ssrc == ssrc) {
            return ix.roc_for(seq);
        }
        // A new SSRC: take a free entry, or the first one (an SSRC that went away).
        let slot = self.indexes.iter().position(Option::is_none).unwrap_or(0);
        self.indexes[slot] = Some(SeqIndex::new(ssrc, seq));
        0
    }

    /// Encrypts the RTP packet in `buf` in place and appends its authentication tag.
    pub fn protect(&mut self, buf: &mut BytesMut) -> Result<(), SrtpError> {
        let hl = header_len(buf)?;
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let roc = self.roc_for(ssrc, seq);
        let len = buf.len();
        let err = |e: rtc_srtp::crypto::CryptoError| SrtpError::Crypto(e.to_string());
        match &mut self.cipher {
            Cipher::Gcm { aead, salt } => {
                // RFC 7714 §8.1: IV = (0x0000 || SSRC || ROC || SEQ) XOR salt.
                let mut nonce = [0u8; 12];
                nonce[2..6].copy_from_slice(&ssrc.to_be_bytes());
                nonce[6..10].copy_from_slice(&roc.to_be_bytes());
                nonce[10..12].copy_from_slice(&seq.to_be_bytes());
                for (n, s) in nonce.iter_mut().zip(salt.iter()) {
                    *n ^= s;
                }
                buf.resize(len + 16, 0);
                let (aad, rest) = buf.split_at_mut(hl);
                let (payload, tag) = rest.split_at_mut(len - hl);
                aead.seal_in_place(&nonce, aad, payload, tag).map_err(err)?;
            }
            Cipher::CmSha1 { ctr, mac, salt } => {
                // RFC 3711 §4.1.1: IV = (salt · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16).
                let mut iv = [0u8; 16];
                iv[4..8].copy_from_slice(&ssrc.to_be_bytes());
                iv[8..12].copy_from_slice(&roc.to_be_bytes());
                iv[12..14].copy_from_slice(&seq.to_be_bytes());
                for (n, s) in iv.iter_mut().zip(salt.iter()) {
                    *n ^= s;
                }
                ctr.apply_keystream(&iv, &mut buf[hl..]).map_err(err)?;
                let mut tag = [0u8; 20];
                mac.sign(&[&buf[..], &roc.to_be_bytes()], &mut tag)
                    .map_err(err)?;
                buf.extend_from_slice(&tag[..10]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_dtls::crypto_provider::RTCCryptoProvider;
    use rtc_srtp::context::Context;

    fn provider() -> std::sync::Arc<dyn RTCCryptoProvider> {
        rtc_dtls::crypto_provider::default_provider().expect("provider")
    }

    fn rtp(seq: u16, ssrc: u32, ext: bool, payload_len: usize) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        if ext {
            p[0] |= 0x10;
            // two-byte form: id 18, 8 bytes (DTS) → 10 bytes + 2 padding = 3 words
            p.extend_from_slice(&[0x10, 0x00, 0, 3, 18, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0]);
        }
        p.extend((0..payload_len).map(|i| (i * 7 + usize::from(seq)) as u8));
        p
    }

    fn check(profile: ProtectionProfile, key_len: usize, salt_len: usize) {
        let prov = provider();
        let key: Vec<u8> = (0..key_len as u8)
            .map(|i| i.wrapping_mul(17) ^ 0x5A)
            .collect();
        let salt: Vec<u8> = (0..salt_len as u8)
            .map(|i| i.wrapping_mul(29) ^ 0xA5)
            .collect();
        let mut ours = RtpProtector::new(prov.crypto(), profile, &key, &salt).unwrap();
        let mut reference = Context::new(&key, &salt, profile, None, None, prov.crypto()).unwrap();
        // Two SSRCs, a rollover on one of them, retransmissions from before the rollover, and
        // packets with and without an extension block and with an empty payload.
        let mut sends: Vec<(u16, u32, bool, usize)> = Vec::new();
        for s in 0xFFF0u16..=0xFFFF {
            sends.push((s, 0xAAAA_0001, true, 1200));
            sends.push((s.wrapping_sub(0x7000), 0xBBBB_0002, false, 100));
        }
        for s in 0u16..16 {
            sends.push((s, 0xAAAA_0001, s % 2 == 0, 1100 + usize::from(s)));
        }
        sends.push((0xFFF5, 0xAAAA_0001, true, 1200)); // NACKed, sent again after the rollover
        sends.push((3, 0xAAAA_0001, false, 0));
        sends.push((0xFFFE, 0xAAAA_0001, true, 1200));
        for (seq, ssrc, ext, n) in sends {
            let plain = rtp(seq, ssrc, ext, n);
            let mut buf = BytesMut::from(&plain[..]);
            ours.protect(&mut buf).unwrap();
            assert_eq!(buf.len(), plain.len() + ours.overhead());
            let hl = header_len(&plain).unwrap();
            assert_eq!(&buf[..hl], &plain[..hl], "header stays in the clear");
            let decrypted = reference
                .decrypt_rtp(&buf)
                .unwrap_or_else(|e| panic!("seq {seq:#x} ssrc {ssrc:#x}: {e}"));
            assert_eq!(&decrypted[..], &plain[..], "seq {seq:#x}");
        }
    }

    #[test]
    fn aes_gcm_output_decrypts_with_rtc_srtp() {
        check(ProtectionProfile::AeadAes128Gcm, 16, 12);
    }

    #[test]
    fn aes_cm_hmac_sha1_80_output_decrypts_with_rtc_srtp() {
        check(ProtectionProfile::Aes128CmHmacSha1_80, 16, 14);
    }

    #[test]
    fn malformed_packets_are_errors() {
        let prov = provider();
        let mut p = RtpProtector::new(
            prov.crypto(),
            ProtectionProfile::AeadAes128Gcm,
            &[1; 16],
            &[2; 12],
        )
        .unwrap();
        for bad in [
            &[][..],
            &[0x80, 96, 0, 1][..],
            &[0x40; 20][..],
            // extension block claims 4 words, none present
            &[0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xBE, 0xDE, 0, 4][..],
            // one CSRC announced, none present
            &[0x81, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1][..],
        ] {
            assert!(p.protect(&mut BytesMut::from(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn index_estimate_follows_rollover_and_retransmissions() {
        let mut ix = SeqIndex::new(1, 0xFFFE);
        assert_eq!(ix.roc_for(0xFFFE), 0);
        assert_eq!(ix.roc_for(0xFFFF), 0);
        assert_eq!(ix.roc_for(0x0000), 1);
        assert_eq!(
            ix.roc_for(0xFFFF),
            0,
            "retransmission from before the rollover"
        );
        assert_eq!(ix.roc_for(0x0001), 1);
        assert_eq!(ix.roc_for(0x8000), 1);
        assert_eq!(ix.roc_for(0x0002), 1, "behind, same ROC");
        // Before the very first packet: there is no earlier ROC.
        let mut fresh = SeqIndex::new(1, 5);
        assert_eq!(fresh.roc_for(0xFFF0), 0);
    }
}
