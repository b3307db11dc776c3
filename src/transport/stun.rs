//! The slice of STUN (RFC 5389/8489) an ICE-lite responder needs, parsed by hand.
//!
//! An edge answers Binding requests and nothing else, so a full STUN message model (with its
//! per-message allocations) buys nothing. This parser borrows the datagram, walks the attributes
//! once, and checks MESSAGE-INTEGRITY (HMAC-SHA1, short-term credentials) and FINGERPRINT
//! (CRC-32) exactly as RFC 5389 §15.4/§15.5 define them. The encoder writes a Binding success
//! response with XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT.
//!
//! The tests and `tests/transport_session.rs` cross-check both directions against `rtc-stun`.

use std::net::{IpAddr, SocketAddr};

use ring::hmac;

/// STUN magic cookie (RFC 5389 §6).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;
/// Largest STUN message we verify; ICE checks are ~100 bytes, so anything near an MTU is junk.
pub const MAX_MESSAGE_LEN: usize = 1280;

const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;

const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_PRIORITY: u16 = 0x0024;
const ATTR_USE_CANDIDATE: u16 = 0x0025;
const ATTR_FINGERPRINT: u16 = 0x8028;
const ATTR_ICE_CONTROLLING: u16 = 0x802A;

const MI_LEN: usize = 20;

/// Why a STUN datagram was not an acceptable Binding request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    #[error("message shorter than its header or declared length")]
    Truncated,
    #[error("message longer than {MAX_MESSAGE_LEN} bytes")]
    TooLong,
    #[error("not a STUN message (bad cookie, type bits or length alignment)")]
    NotStun,
    #[error("not a Binding request (type {0:#06x})")]
    NotBindingRequest(u16),
    #[error("attribute runs past the end of the message")]
    BadAttribute,
    #[error("attribute after FINGERPRINT, or MESSAGE-INTEGRITY after FINGERPRINT")]
    BadAttributeOrder,
    #[error("USERNAME missing")]
    MissingUsername,
    #[error("MESSAGE-INTEGRITY missing")]
    MissingIntegrity,
    #[error("FINGERPRINT missing")]
    MissingFingerprint,
    #[error("FINGERPRINT does not match")]
    BadFingerprint,
    #[error("USERNAME does not name this session")]
    WrongUsername,
    #[error("MESSAGE-INTEGRITY does not verify")]
    BadIntegrity,
}

/// A structurally valid Binding request, borrowed from the datagram. Not yet authenticated:
/// call [`BindingRequest::verify`].
#[derive(Debug, Clone, Copy)]
pub struct BindingRequest<'a> {
    data: &'a [u8],
    /// Transaction id, echoed in the response.
    pub transaction_id: [u8; 12],
    /// The USERNAME value, `"<our ufrag>:<their ufrag>"` for ICE.
    pub username: &'a [u8],
    /// USE-CANDIDATE present: the controlling agent nominates this pair.
    pub use_candidate: bool,
    /// PRIORITY, when present.
    pub priority: Option<u32>,
    /// ICE-CONTROLLING present (the peer is the controlling agent, as it must be against ICE-lite).
    pub controlling: bool,
    mi_offset: usize,
    fp_offset: usize,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

impl<'a> BindingRequest<'a> {
    /// Parses a Binding request; checks structure and FINGERPRINT, not credentials.
    pub fn parse(data: &'a [u8]) -> Result<Self, StunError> {
        if data.len() < HEADER_LEN {
            return Err(StunError::Truncated);
        }
        if data.len() > MAX_MESSAGE_LEN {
            return Err(StunError::TooLong);
        }
        let typ = be16(data, 0).ok_or(StunError::Truncated)?;
        let len = usize::from(be16(data, 2).ok_or(StunError::Truncated)?);
        if typ & 0xC000 != 0 || be32(data, 4) != Some(MAGIC_COOKIE) || len % 4 != 0 {
            return Err(StunError::NotStun);
        }
        if HEADER_LEN + len != data.len() {
            return Err(StunError::Truncated);
        }
        if typ != BINDING_REQUEST {
            return Err(StunError::NotBindingRequest(typ));
        }
        let mut transaction_id = [0u8; 12];
        transaction_id.copy_from_slice(data.get(8..20).ok_or(StunError::Truncated)?);

        let mut req = BindingRequest {
            data,
            transaction_id,
            username: &[],
            use_candidate: false,
            priority: None,
            controlling: false,
            mi_offset: 0,
            fp_offset: 0,
        };
        let mut have_username = false;
        let mut at = HEADER_LEN;
        while at < data.len() {
            let typ = be16(data, at).ok_or(StunError::BadAttribute)?;
            let alen = usize::from(be16(data, at + 2).ok_or(StunError::BadAttribute)?);
            let value = data
                .get(at + 4..at + 4 + alen)
                .ok_or(StunError::BadAttribute)?;
            if req.fp_offset != 0 {
                // FINGERPRINT must be last (RFC 5389 §15.5).
                return Err(StunError::BadAttributeOrder);
            }
            // RFC 5389 §15.4: attributes after MESSAGE-INTEGRITY other than FINGERPRINT are
            // ignored; we keep walking only to find FINGERPRINT.
            let after_mi = req.mi_offset != 0;
            match typ {
                ATTR_USERNAME if !after_mi => {
                    req.username = value;
                    have_username = true;
                }
                ATTR_USE_CANDIDATE if !after_mi => req.use_candidate = true,
                ATTR_PRIORITY if !after_mi => req.priority = be32(value, 0),
                ATTR_ICE_CONTROLLING if !after_mi => req.controlling = true,
                ATTR_MESSAGE_INTEGRITY if !after_mi => {
                    if alen != MI_LEN {
                        return Err(StunError::BadAttribute);
                    }
                    req.mi_offset = at;
                }
                ATTR_FINGERPRINT => {
                    if alen != 4 {
                        return Err(StunError::BadAttribute);
                    }
                    req.fp_offset = at;
                }
                _ => {}
            }
            at += 4 + alen.div_ceil(4) * 4;
        }
        if at != data.len() {
            return Err(StunError::BadAttribute);
        }
        if !have_username {
            return Err(StunError::MissingUsername);
        }
        if req.mi_offset == 0 {
            return Err(StunError::MissingIntegrity);
        }
        if req.fp_offset == 0 {
            return Err(StunError::MissingFingerprint);
        }
        let fp = be32(data, req.fp_offset + 4).ok_or(StunError::Truncated)?;
        let prefix = data.get(..req.fp_offset).ok_or(StunError::Truncated)?;
        if fingerprint(prefix) != fp {
            return Err(StunError::BadFingerprint);
        }
        Ok(req)
    }

    /// The local (first) half of USERNAME: what a shard looks a pending session up by.
    pub fn local_ufrag(&self) -> &'a [u8] {
        let end = self
            .username
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(self.username.len());
        self.username.get(..end).unwrap_or(&[])
    }

    /// Checks USERNAME against `expected` and MESSAGE-INTEGRITY against `key`.
    pub fn verify(&self, expected_username: &[u8], key: &hmac::Key) -> Result<(), StunError> {
        if self.username != expected_username {
            return Err(StunError::WrongUsername);
        }
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let prefix = self
            .data
            .get(..self.mi_offset)
            .ok_or(StunError::Truncated)?;
        let tag = self
            .data
            .get(self.mi_offset + 4..self.mi_offset + 4 + MI_LEN)
            .ok_or(StunError::Truncated)?;
        let scratch = buf.get_mut(..prefix.len()).ok_or(StunError::TooLong)?;
        scratch.copy_from_slice(prefix);
        // The HMAC covers the header with a length that ends at MESSAGE-INTEGRITY.
        let covered = (self.mi_offset + 4 + MI_LEN - HEADER_LEN) as u16;
        scratch[2..4].copy_from_slice(&covered.to_be_bytes());
        hmac::verify(key, scratch, tag).map_err(|_| StunError::BadIntegrity)
    }
}

/// The FINGERPRINT value (CRC-32 XOR `0x5354554E`) of a message prefix whose header length
/// already covers FINGERPRINT.
fn fingerprint(prefix: &[u8]) -> u32 {
    rtc_stun::fingerprint::fingerprint_value(prefix)
}

/// The short-term credential key for MESSAGE-INTEGRITY (RFC 5389 §15.4: the password itself).
pub fn integrity_key(password: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes())
}

/// Writes a Binding success response for `transaction_id` telling the peer its address `mapped`,
/// authenticated with `key` (our password) and fingerprinted. Replaces `out`'s contents.
pub fn write_binding_success(
    out: &mut Vec<u8>,
    transaction_id: &[u8; 12],
    mapped: SocketAddr,
    key: &hmac::Key,
) {
    out.clear();
    out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    out.extend_from_slice(&[0, 0]); // length, patched below
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(transaction_id);

    // XOR-MAPPED-ADDRESS (RFC 5389 §15.2).
    let port = mapped.port() ^ (MAGIC_COOKIE >> 16) as u16;
    match mapped.ip() {
        IpAddr::V4(ip) => {
            out.extend_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
            out.extend_from_slice(&8u16.to_be_bytes());
            out.extend_from_slice(&[0, 0x01]);
            out.extend_from_slice(&port.to_be_bytes());
            let x = u32::from(ip) ^ MAGIC_COOKIE;
            out.extend_from_slice(&x.to_be_bytes());
        }
        IpAddr::V6(ip) => {
            out.extend_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
            out.extend_from_slice(&20u16.to_be_bytes());
            out.extend_from_slice(&[0, 0x02]);
            out.extend_from_slice(&port.to_be_bytes());
            let mut pad = [0u8; 16];
            pad[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            pad[4..].copy_from_slice(transaction_id);
            out.extend(ip.octets().iter().zip(pad.iter()).map(|(a, b)| a ^ b));
        }
    }

    // MESSAGE-INTEGRITY: HMAC over everything so far, with the length covering MI itself.
    let len_with_mi = (out.len() - HEADER_LEN + 4 + MI_LEN) as u16;
    out[2..4].copy_from_slice(&len_with_mi.to_be_bytes());
    let tag = hmac::sign(key, out);
    out.extend_from_slice(&ATTR_MESSAGE_INTEGRITY.to_be_bytes());
    out.extend_from_slice(&(MI_LEN as u16).to_be_bytes());
    out.extend_from_slice(tag.as_ref());

    // FINGERPRINT: CRC over everything so far, with the length covering FINGERPRINT.
    let len_with_fp = (out.len() - HEADER_LEN + 8) as u16;
    out[2..4].copy_from_slice(&len_with_fp.to_be_bytes());
    let fp = fingerprint(out);
    out.extend_from_slice(&ATTR_FINGERPRINT.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&fp.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_stun::message::{BINDING_REQUEST as RTC_BINDING_REQUEST, Message, Setter};

    /// rtc-stun has no USE-CANDIDATE setter (it lives in rtc-ice).
    struct UseCandidate;
    impl Setter for UseCandidate {
        fn add_to(&self, m: &mut Message) -> Result<(), rtc_shared::error::Error> {
            m.add(rtc_stun::attributes::ATTR_USE_CANDIDATE, &[]);
            Ok(())
        }
    }

    fn provider() -> std::sync::Arc<dyn rtc_dtls::crypto_provider::RTCCryptoProvider> {
        rtc_dtls::crypto_provider::default_provider().expect("provider")
    }

    fn request(username: &str, password: &str, use_candidate: bool) -> Vec<u8> {
        let p = provider();
        let mut m = Message::new();
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(RTC_BINDING_REQUEST),
            Box::new(rtc_stun::message::TransactionId::new()),
            Box::new(rtc_stun::textattrs::TextAttribute::new(
                rtc_stun::attributes::ATTR_USERNAME,
                username.to_owned(),
            )),
        ];
        if use_candidate {
            setters.push(Box::new(UseCandidate));
        }
        setters.push(Box::new(
            rtc_stun::integrity::MessageIntegrity::new_short_term_integrity_with_provider(
                password.to_owned(),
                p.crypto(),
            ),
        ));
        setters.push(Box::new(rtc_stun::fingerprint::FINGERPRINT));
        m.build(&setters).expect("build");
        m.raw.clone()
    }

    #[test]
    fn parses_and_verifies_an_rtc_stun_request() {
        let raw = request("srv:cli", "serverpassword", true);
        let req = BindingRequest::parse(&raw).expect("parse");
        assert!(req.use_candidate);
        assert_eq!(req.local_ufrag(), b"srv");
        req.verify(b"srv:cli", &integrity_key("serverpassword"))
            .expect("verify");
        assert_eq!(
            req.verify(b"srv:cli", &integrity_key("wrong")),
            Err(StunError::BadIntegrity)
        );
        assert_eq!(
            req.verify(b"srv:other", &integrity_key("serverpassword")),
            Err(StunError::WrongUsername)
        );
    }

    #[test]
    fn rejects_a_flipped_bit_anywhere() {
        let raw = request("srv:cli", "pw", false);
        let key = integrity_key("pw");
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let ok = BindingRequest::parse(&bad).and_then(|r| r.verify(b"srv:cli", &key));
            assert!(ok.is_err(), "bit flip at {i} accepted");
        }
    }

    #[test]
    fn response_verifies_with_rtc_stun() {
        let p = provider();
        let key = integrity_key("serverpassword");
        let mut out = Vec::new();
        let tid = [7u8; 12];
        let mapped: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        write_binding_success(&mut out, &tid, mapped, &key);
        let mut m = Message::new();
        m.unmarshal_binary(&out).expect("unmarshal");
        rtc_stun::fingerprint::FINGERPRINT.check(&m).expect("fp");
        rtc_stun::integrity::MessageIntegrity::check(&mut m, b"serverpassword", p.crypto())
            .expect("mi");
        let mut xor = rtc_stun::xoraddr::XorMappedAddress::default();
        use rtc_stun::message::Getter;
        xor.get_from(&m).expect("xor");
        assert_eq!(SocketAddr::new(xor.ip, xor.port), mapped);

        let mapped6: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        write_binding_success(&mut out, &tid, mapped6, &key);
        let mut m = Message::new();
        m.unmarshal_binary(&out).expect("unmarshal");
        let mut xor = rtc_stun::xoraddr::XorMappedAddress::default();
        xor.get_from(&m).expect("xor6");
        assert_eq!(SocketAddr::new(xor.ip, xor.port), mapped6);
    }

    #[test]
    fn truncations_never_panic() {
        let raw = request("srv:cli", "pw", true);
        for n in 0..raw.len() {
            assert!(BindingRequest::parse(&raw[..n]).is_err());
        }
    }
}
