//! RFC 7983 demultiplexing of the one media port.
//!
//! Everything a player sends arrives on one UDP port, so the first byte of each datagram decides
//! which protocol core sees it. The rules follow RFC 7983 §7 (STUN 0–3, DTLS 20–63, RTP/RTCP
//! 128–191) plus one private range: a first byte of `0xFF` is miniSDP signaling, which RFC 7983
//! leaves unassigned and which cannot be mistaken for any of the above. Within 128–191 RTCP is told
//! from RTP by the packet type in the second byte (RFC 5761 §4: 192–223 is RTCP).
//!
//! Classification is a pure function of the bytes, checks only what it must to route safely, and
//! never fails: anything that fits no rule is [`DatagramKind::Junk`], which the caller drops
//! without creating state.

/// What a datagram on the media port is, decided from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatagramKind {
    /// A STUN message (ICE connectivity check or consent refresh).
    Stun,
    /// A DTLS record (handshake, alert, or application data).
    Dtls,
    /// An SRTP packet (media from the client; a playback edge receives none in normal operation).
    Rtp,
    /// An SRTCP packet (receiver reports, NACK, PLI/FIR, BYE).
    Rtcp,
    /// A miniSDP signaling packet (offer, stop), first byte `0xFF`.
    MiniSdp,
    /// Anything else, including datagrams too short for the protocol their first byte names.
    Junk,
}

/// Size of a STUN header; the smallest valid STUN message.
const STUN_HEADER_LEN: usize = 20;
/// STUN magic cookie (RFC 5389 §6), which every RFC 5389 message carries at bytes 4..8.
const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// A DTLS record header (type, version, epoch, sequence number, length).
const DTLS_RECORD_HEADER_LEN: usize = 13;
/// The fixed RTP header.
const RTP_HEADER_LEN: usize = 12;
/// RTCP header plus the sender SSRC: the smallest RTCP packet that names its sender.
const RTCP_MIN_LEN: usize = 8;

/// Classifies one datagram received on the media port.
pub fn classify(data: &[u8]) -> DatagramKind {
    let Some(&first) = data.first() else {
        return DatagramKind::Junk;
    };
    match first {
        0..=3 => {
            // RFC 7983 names only the first byte; the cookie check costs nothing and keeps
            // obviously wrong bytes away from the STUN parser and the session lookup.
            if data.len() >= STUN_HEADER_LEN && data.get(4..8) == Some(&STUN_MAGIC_COOKIE[..]) {
                DatagramKind::Stun
            } else {
                DatagramKind::Junk
            }
        }
        20..=63 => {
            if data.len() >= DTLS_RECORD_HEADER_LEN {
                DatagramKind::Dtls
            } else {
                DatagramKind::Junk
            }
        }
        128..=191 => match data.get(1) {
            Some(&pt) if (192..=223).contains(&pt) && data.len() >= RTCP_MIN_LEN => {
                DatagramKind::Rtcp
            }
            Some(&pt) if !(192..=223).contains(&pt) && data.len() >= RTP_HEADER_LEN => {
                DatagramKind::Rtp
            }
            _ => DatagramKind::Junk,
        },
        0xFF => DatagramKind::MiniSdp,
        _ => DatagramKind::Junk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun() -> Vec<u8> {
        let mut m = vec![0u8; 20];
        m[0] = 0x00;
        m[1] = 0x01;
        m[4..8].copy_from_slice(&STUN_MAGIC_COOKIE);
        m
    }

    #[test]
    fn classifies_each_range() {
        assert_eq!(classify(&stun()), DatagramKind::Stun);
        assert_eq!(classify(&[22; 13]), DatagramKind::Dtls);
        let mut rtp = [0u8; 12];
        rtp[0] = 0x80;
        rtp[1] = 96;
        assert_eq!(classify(&rtp), DatagramKind::Rtp);
        rtp[1] = 0x80 | 96; // marker bit set is still RTP
        assert_eq!(classify(&rtp), DatagramKind::Rtp);
        let rtcp = [0x81, 205, 0, 2, 0, 0, 0, 1];
        assert_eq!(classify(&rtcp), DatagramKind::Rtcp);
        assert_eq!(classify(&[0xFF, 1, 2]), DatagramKind::MiniSdp);
    }

    #[test]
    fn short_or_unknown_is_junk() {
        assert_eq!(classify(&[]), DatagramKind::Junk);
        assert_eq!(classify(&[0, 1, 2]), DatagramKind::Junk);
        let mut no_cookie = stun();
        no_cookie[4] = 0;
        assert_eq!(classify(&no_cookie), DatagramKind::Junk);
        assert_eq!(classify(&[22; 12]), DatagramKind::Junk);
        assert_eq!(classify(&[0x80, 96, 0]), DatagramKind::Junk);
        assert_eq!(classify(&[0x81, 200, 0]), DatagramKind::Junk);
        for b in [4u8, 19, 64, 127, 192, 254] {
            assert_eq!(classify(&[b; 40]), DatagramKind::Junk, "first byte {b}");
        }
    }

    #[test]
    fn never_panics_on_any_prefix() {
        let data: Vec<u8> = (0..=255).collect();
        for start in 0..data.len() {
            for len in 0..4 {
                let end = (start + len).min(data.len());
                let _ = classify(&data[start..end]);
            }
        }
    }
}
