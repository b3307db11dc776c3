//! Stream tokens: the opaque, signed credential a player presents to pull a stream.
//!
//! A CDN edge cannot call back to a business server for every offer (that would put a round
//! trip in front of the first frame), so the credential is self-verifying: the business server
//! and the edge share a secret and the edge checks an HMAC. The token binds
//!
//! * the stream (`app/stream`) — a token for one stream opens no other;
//! * an expiry (Unix seconds) — leaked tokens die;
//! * optionally the client (an address, a device id, or an ICE ufrag) — a token copied to
//!   another client is refused. An empty binding means "any client".
//!
//! Wire form (the miniSDP extended format carries these bytes as-is; HTTP carries them as
//! unpadded base64url after `Bearer `):
//!
//! ```text
//! u8   version = 1
//! u8   kind    (0 = pull, 1 = publish, 2 = resumption ticket)
//! u64  expiry, Unix seconds, big-endian
//! u8   stream length S, then S bytes of "app/stream" (UTF-8)
//! u8   binding length B, then B bytes of client binding
//! 16 B truncated HMAC-SHA256(secret, all bytes above)
//! ```
//!
//! Sizes: 28 + S + B bytes; a typical pull token for `live/demo` is 37 bytes.

use base64::Engine as _;
use ring::hmac;
use thiserror::Error;

/// Length of the truncated MAC. 128 bits is the usual floor for HMAC truncation (RFC 2104 §5).
const MAC_LEN: usize = 16;
const VERSION: u8 = 1;
const FIXED_LEN: usize = 1 + 1 + 8 + 1 + 1 + MAC_LEN;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Play a stream (miniSDP offer, WHEP).
    Pull,
    /// Publish a stream (RTMP key, WHIP bearer).
    Publish,
    /// A server-issued resumption ticket for 0-RTT start (bound to the client).
    Ticket,
}

impl TokenKind {
    fn to_byte(self) -> u8 {
        match self {
            TokenKind::Pull => 0,
            TokenKind::Publish => 1,
            TokenKind::Ticket => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(TokenKind::Pull),
            1 => Some(TokenKind::Publish),
            2 => Some(TokenKind::Ticket),
            _ => None,
        }
    }
}

/// The claims of a token, before signing or after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub kind: TokenKind,
    /// `app/stream`.
    pub stream: String,
    /// Unix seconds after which the token is refused.
    pub expiry: u64,
    /// Client binding; empty = any client.
    pub binding: Vec<u8>,
}

/// Why a token was refused. Every variant maps to miniSDP status 103 / HTTP 401, but the
/// variants are kept apart for logs and metrics.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token version {0} is not supported")]
    Version(u8),
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token expired at {expiry} (now {now})")]
    Expired { expiry: u64, now: u64 },
    #[error("token is for stream {token:?}, not {wanted:?}")]
    WrongStream { token: String, wanted: String },
    #[error("token is a {token:?} token, {wanted:?} needed")]
    WrongKind { token: TokenKind, wanted: TokenKind },
    #[error("token is bound to another client")]
    WrongClient,
    #[error("field too long for a token: {0}")]
    TooLong(&'static str),
}

/// Signs and verifies tokens with one shared secret.
#[derive(Clone)]
pub struct TokenAuthority {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenAuthority { key: <secret> }")
    }
}

impl TokenAuthority {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// Serializes and signs `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<Vec<u8>, TokenError> {
        let stream = claims.stream.as_bytes();
        let s_len = u8::try_from(stream.len()).map_err(|_| TokenError::TooLong("stream"))?;
        let b_len =
            u8::try_from(claims.binding.len()).map_err(|_| TokenError::TooLong("binding"))?;
        let mut out = Vec::with_capacity(FIXED_LEN + stream.len() + claims.binding.len());
        out.push(VERSION);
        out.push(claims.kind.to_byte());
        out.extend_from_slice(&claims.expiry.to_be_bytes());
        out.push(s_len);
        out.extend_from_slice(stream);
        out.push(b_len);
        out.extend_from_slice(&claims.binding);
        let tag = hmac::sign(&self.key, &out);
        out.extend_from_slice(&tag.as_ref()[..MAC_LEN]);
        Ok(out)
    }

    /// Signs and returns the HTTP form (unpadded base64url).
    pub fn sign_base64(&self, claims: &Claims) -> Result<String, TokenError> {
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.sign(claims)?))
    }

    /// Parses `token` and checks its signature, without looking at the claims.
    pub fn decode(&self, token: &[u8]) -> Result<Claims, TokenError> {
        if token.len() < FIXED_LEN {
            return Err(TokenError::Malformed("too short"));
        }
        let (body, mac) = token.split_at(token.len() - MAC_LEN);
        // Check the signature before interpreting anything an attacker controls.
        let full = hmac::sign(&self.key, body);
        if !constant_time_eq(&full.as_ref()[..MAC_LEN], mac) {
            return Err(TokenError::BadSignature);
        }
        let mut r = Reader(body);
        let version = r.u8()?;
        if version != VERSION {
            return Err(TokenError::Version(version));
        }
        let kind = TokenKind::from_byte(r.u8()?).ok_or(TokenError::Malformed("kind"))?;
        let expiry = u64::from_be_bytes(
            r.take(8)?
                .try_into()
                .map_err(|_| TokenError::Malformed("expiry"))?,
        );
        let s_len = usize::from(r.u8()?);
        let stream = std::str::from_utf8(r.take(s_len)?)
            .map_err(|_| TokenError::Malformed("stream is not UTF-8"))?
            .to_owned();
        let b_len = usize::from(r.u8()?);
        let binding = r.take(b_len)?.to_vec();
        if !r.0.is_empty() {
            return Err(TokenError::Malformed("trailing bytes"));
        }
        Ok(Claims {
            kind,
            stream,
            expiry,
            binding,
        })
    }

    /// Decodes the HTTP form (base64url, padded or not).
    pub fn decode_base64(&self, token: &str) -> Result<Claims, TokenError> {
        let trimmed = token.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(trimmed)
            .map_err(|_| TokenError::Malformed("not base64url"))?;
        self.decode(&bytes)
    }

    /// Full check: signature, kind, stream, expiry and client binding.
    ///
    /// `client` lists every identity the client is known by (e.g. its IP address as text and
    /// its ICE ufrag); a bound token must match one of them.
    pub fn verify(
        &self,
        token: &[u8],
        kind: TokenKind,
        stream: &str,
        now_unix: u64,
        client: &[&[u8]],
    ) -> Result<Claims, TokenError> {
        let claims = self.decode(token)?;
        if claims.kind != kind {
            return Err(TokenError::WrongKind {
                token: claims.kind,
                wanted: kind,
            });
        }
        if claims.stream != stream {
            return Err(TokenError::WrongStream {
                token: claims.stream,
                wanted: stream.to_owned(),
            });
        }
        if now_unix > claims.expiry {
            return Err(TokenError::Expired {
                expiry: claims.expiry,
                now: now_unix,
            });
        }
        if !claims.binding.is_empty() && !client.contains(&claims.binding.as_slice()) {
            return Err(TokenError::WrongClient);
        }
        Ok(claims)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TokenError> {
        if self.0.len() < n {
            return Err(TokenError::Malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, TokenError> {
        Ok(self.take(1)?[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            kind: TokenKind::Pull,
            stream: "live/demo".into(),
            expiry: 2_000_000_000,
            binding: Vec::new(),
        }
    }

    #[test]
    fn sign_then_verify() {
        let auth = TokenAuthority::new(b"secret");
        let token = auth.sign(&claims()).unwrap();
        assert_eq!(token.len(), 37);
        let got = auth
            .verify(&token, TokenKind::Pull, "live/demo", 1_000, &[])
            .unwrap();
        assert_eq!(got, claims());
        let b64 = auth.sign_base64(&claims()).unwrap();
        assert_eq!(auth.decode_base64(&b64).unwrap(), claims());
    }

    #[test]
    fn refuses_tampering_other_secret_stream_kind_expiry_and_client() {
        let auth = TokenAuthority::new(b"secret");
        let mut token = auth.sign(&claims()).unwrap();
        let other = TokenAuthority::new(b"other");
        assert_eq!(other.decode(&token), Err(TokenError::BadSignature));
        assert!(matches!(
            auth.verify(&token, TokenKind::Pull, "live/other", 0, &[]),
            Err(TokenError::WrongStream { .. })
        ));
        assert!(matches!(
            auth.verify(&token, TokenKind::Publish, "live/demo", 0, &[]),
            Err(TokenError::WrongKind { .. })
        ));
        assert!(matches!(
            auth.verify(&token, TokenKind::Pull, "live/demo", 2_000_000_001, &[]),
            Err(TokenError::Expired { .. })
        ));
        token[5] ^= 1;
        assert_eq!(auth.decode(&token), Err(TokenError::BadSignature));

        let bound = Claims {
            binding: b"10.0.0.7".to_vec(),
            ..claims()
        };
        let token = auth.sign(&bound).unwrap();
        assert_eq!(
            auth.verify(&token, TokenKind::Pull, "live/demo", 0, &[b"10.0.0.8"]),
            Err(TokenError::WrongClient)
        );
        assert!(
            auth.verify(
                &token,
                TokenKind::Pull,
                "live/demo",
                0,
                &[b"ufrag", b"10.0.0.7"]
            )
            .is_ok()
        );
    }

    #[test]
    fn garbage_never_panics() {
        let auth = TokenAuthority::new(b"secret");
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert!(auth.decode(&junk).is_err());
        }
        assert!(auth.decode_base64("!!!").is_err());
    }
}
