//! ICE-lite responder (RFC 8445 §2.5, RFC 7675 consent freshness), sans-IO.
//!
//! An edge has one public address, so it is ICE-lite: it never sends checks, it answers the
//! client's. A Binding request that names this session in USERNAME, verifies with our password
//! (MESSAGE-INTEGRITY) and carries a valid FINGERPRINT proves that whoever sent it from that
//! address took part in signaling: that address becomes *verified* (DTLS from it is accepted,
//! and the anti-amplification limit no longer applies). USE-CANDIDATE from the controlling agent
//! *nominates* the address: media goes there. Every further valid request refreshes consent;
//! without one for `consent_timeout` the session is dead (RFC 7675 §5.1 uses 30 s).
//!
//! Invalid requests are dropped silently: answering them (RFC 5389 error responses) would let
//! anyone make us send bytes to any address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ring::hmac;

use super::stun::{self, BindingRequest, StunError};

/// How many distinct verified addresses one session remembers (the client may check from a
/// couple of interfaces; more is not useful and must stay bounded).
const MAX_VERIFIED: usize = 4;

/// ICE credentials and timers for one session.
#[derive(Debug, Clone)]
pub struct IceConfig {
    /// Our ufrag (the first half of the USERNAME the client sends).
    pub local_ufrag: String,
    /// Our password: the MESSAGE-INTEGRITY key of requests and of our responses.
    pub local_pwd: String,
    /// The client's ufrag (second half of USERNAME).
    pub remote_ufrag: String,
    /// Time allowed from session creation to the first valid request.
    pub connect_timeout: Duration,
    /// Consent freshness: the session dies this long after the last valid request.
    pub consent_timeout: Duration,
}

impl IceConfig {
    /// Credentials with the default timers: 10 s to connect, 30 s consent (RFC 7675).
    pub fn new(local_ufrag: String, local_pwd: String, remote_ufrag: String) -> Self {
        Self {
            local_ufrag,
            local_pwd,
            remote_ufrag,
            connect_timeout: Duration::from_secs(10),
            consent_timeout: Duration::from_secs(30),
        }
    }
}

/// What one valid Binding request changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingOutcome {
    /// The sender's address was not verified before this request.
    pub newly_verified: bool,
    /// The request nominated an address different from the previous nominated one (or the first).
    pub nominated: Option<SocketAddr>,
}

/// Why ICE ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IceTimeout {
    #[error("no valid connectivity check before the connect timeout")]
    NeverConnected,
    #[error("consent expired: no valid connectivity check within the consent timeout")]
    ConsentExpired,
}

/// The ICE-lite state of one session.
pub struct IceLite {
    username: Box<[u8]>,
    key: hmac::Key,
    local_ufrag_len: usize,
    connect_timeout: Duration,
    consent_timeout: Duration,
    created: Instant,
    last_valid: Option<Instant>,
    verified: [Option<SocketAddr>; MAX_VERIFIED],
    verified_next: usize,
    nominated: Option<SocketAddr>,
}

impl IceLite {
    pub fn new(now: Instant, config: &IceConfig) -> Self {
        let username = format!("{}:{}", config.local_ufrag, config.remote_ufrag);
        Self {
            username: username.into_bytes().into_boxed_slice(),
            key: stun::integrity_key(&config.local_pwd),
            local_ufrag_len: config.local_ufrag.len(),
            connect_timeout: config.connect_timeout,
            consent_timeout: config.consent_timeout,
            created: now,
            last_valid: None,
            verified: [None; MAX_VERIFIED],
            verified_next: 0,
            nominated: None,
        }
    }

    /// Our ufrag, as the shard indexes pending sessions by it.
    pub fn local_ufrag(&self) -> &[u8] {
        self.username.get(..self.local_ufrag_len).unwrap_or(&[])
    }

    /// Handles a STUN datagram from `from`. On a valid Binding request writes the response into
    /// `response` (to be sent back to `from`) and returns what changed.
    pub fn handle_stun(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
        response: &mut Vec<u8>,
    ) -> Result<BindingOutcome, StunError> {
        let req = BindingRequest::parse(data)?;
        req.verify(&self.username, &self.key)?;
        self.last_valid = Some(now);
        let newly_verified = !self.is_verified(from);
        if newly_verified {
            self.verified[self.verified_next % MAX_VERIFIED] = Some(from);
            self.verified_next = self.verified_next.wrapping_add(1);
        }
        let nominated = if req.use_candidate && self.nominated != Some(from) {
            self.nominated = Some(from);
            Some(from)
        } else {
            None
        };
        stun::write_binding_success(response, &req.transaction_id, from, &self.key);
        Ok(BindingOutcome {
            newly_verified,
            nominated,
        })
    }

    /// Whether a valid, authenticated check has come from `addr`.
    pub fn is_verified(&self, addr: SocketAddr) -> bool {
        self.verified.contains(&Some(addr))
    }

    /// The nominated address (USE-CANDIDATE), where media goes.
    pub fn nominated(&self) -> Option<SocketAddr> {
        self.nominated
    }

    /// The address to send to: the nominated one, else the most recently verified one.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.nominated.or_else(|| {
            let last = self.verified_next.checked_sub(1)?;
            self.verified[last % MAX_VERIFIED]
        })
    }

    /// Whether any valid check has arrived.
    pub fn is_connected(&self) -> bool {
        self.last_valid.is_some()
    }

    /// When [`Self::check_timeout`] next has something to decide.
    pub fn poll_timeout(&self) -> Instant {
        match self.last_valid {
            Some(t) => t + self.consent_timeout,
            None => self.created + self.connect_timeout,
        }
    }

    /// Returns why the session must end, if its deadline has passed.
    pub fn check_timeout(&self, now: Instant) -> Option<IceTimeout> {
        if now < self.poll_timeout() {
            return None;
        }
        Some(match self.last_valid {
            Some(_) => IceTimeout::ConsentExpired,
            None => IceTimeout::NeverConnected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built request (USERNAME, optional USE-CANDIDATE, MI, FINGERPRINT), independent
    /// of the parser under test.
    pub(crate) fn request(username: &str, pwd: &str, use_candidate: bool) -> Vec<u8> {
        let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        m.extend_from_slice(&[9u8; 12]);
        let u = username.as_bytes();
        m.extend_from_slice(&0x0006u16.to_be_bytes());
        m.extend_from_slice(&(u.len() as u16).to_be_bytes());
        m.extend_from_slice(u);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        if use_candidate {
            m.extend_from_slice(&[0x00, 0x25, 0, 0]);
        }
        let l = (m.len() - 20 + 24) as u16;
        m[2..4].copy_from_slice(&l.to_be_bytes());
        let tag = hmac::sign(&stun::integrity_key(pwd), &m);
        m.extend_from_slice(&[0x00, 0x08, 0, 20]);
        m.extend_from_slice(tag.as_ref());
        let l = (m.len() - 20 + 8) as u16;
        m[2..4].copy_from_slice(&l.to_be_bytes());
        let fp = rtc_stun::fingerprint::fingerprint_value(&m);
        m.extend_from_slice(&[0x80, 0x28, 0, 4]);
        m.extend_from_slice(&fp.to_be_bytes());
        m
    }

    fn ice(now: Instant) -> IceLite {
        IceLite::new(
            now,
            &IceConfig::new("srv".into(), "serverpass".into(), "cli".into()),
        )
    }

    #[test]
    fn verifies_then_nominates() {
        let t0 = Instant::now();
        let mut ice = ice(t0);
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let mut out = Vec::new();
        let o = ice
            .handle_stun(t0, a, &request("srv:cli", "serverpass", false), &mut out)
            .unwrap();
        assert!(o.newly_verified && o.nominated.is_none());
        assert!(ice.is_verified(a) && ice.nominated().is_none());
        assert_eq!(ice.remote(), Some(a));
        let o = ice
            .handle_stun(t0, a, &request("srv:cli", "serverpass", true), &mut out)
            .unwrap();
        assert!(!o.newly_verified);
        assert_eq!(o.nominated, Some(a));
        assert!(!out.is_empty());
    }

    #[test]
    fn wrong_credentials_change_nothing() {
        let t0 = Instant::now();
        let mut ice = ice(t0);
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let mut out = Vec::new();
        assert!(
            ice.handle_stun(t0, a, &request("srv:cli", "nope", true), &mut out)
                .is_err()
        );
        assert!(
            ice.handle_stun(t0, a, &request("srv:xxx", "serverpass", true), &mut out)
                .is_err()
        );
        assert!(!ice.is_verified(a) && !ice.is_connected());
    }

    #[test]
    fn timeouts() {
        let t0 = Instant::now();
        let mut ice = ice(t0);
        assert_eq!(ice.check_timeout(t0 + Duration::from_secs(9)), None);
        assert_eq!(
            ice.check_timeout(t0 + Duration::from_secs(10)),
            Some(IceTimeout::NeverConnected)
        );
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let mut out = Vec::new();
        let t1 = t0 + Duration::from_secs(5);
        ice.handle_stun(t1, a, &request("srv:cli", "serverpass", true), &mut out)
            .unwrap();
        assert_eq!(ice.check_timeout(t1 + Duration::from_secs(29)), None);
        assert_eq!(
            ice.check_timeout(t1 + Duration::from_secs(30)),
            Some(IceTimeout::ConsentExpired)
        );
    }
}
