//! The player's side of ICE: STUN binding requests to an ICE-lite server.
//!
//! The server is ICE-lite and never checks us, so the player is the controlling agent with a
//! single candidate pair: it nominates at once (USE-CANDIDATE, aggressive nomination) and the
//! first authenticated success response means "connected". After that it keeps sending binding
//! requests as consent refreshes (RFC 7675), which the server needs to keep the session alive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc_stun::attributes::{
    ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_USERNAME,
};
use rtc_stun::crypto::RTCCryptoProvider;
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter, TransactionId};
use rtc_stun::textattrs::TextAttribute;

/// First retransmission interval; doubled per retry up to [`MAX_INTERVAL`].
pub const INITIAL_INTERVAL: Duration = Duration::from_millis(50);
pub const MAX_INTERVAL: Duration = Duration::from_millis(800);
/// Requests before the check is declared failed (≈ 8 s with the schedule above).
pub const MAX_TRIES: u32 = 14;
/// Consent refresh period after the check succeeded (RFC 7675 suggests 5 s ± 20 %; shorter is
/// harmless and keeps a server with a short consent timeout happy).
pub const CONSENT_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StunError {
    #[error("building a STUN request failed: {0}")]
    Build(String),
    #[error("malformed STUN message: {0}")]
    Parse(String),
    #[error("STUN response failed authentication: {0}")]
    Integrity(String),
    #[error("ICE check timed out after {0} requests")]
    Timeout(u32),
}

/// What a datagram did to the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunEvent {
    /// The first authenticated success response: the pair is usable; `rtt` of that request.
    Connected { rtt: Duration },
    /// A later success (consent refreshed).
    Refreshed { rtt: Duration },
    /// Not a response to an outstanding request of ours (stale or foreign): ignored.
    Ignored,
}

/// A sans-IO connectivity check against one server candidate.
pub struct StunClient {
    username: String,
    remote_pwd: String,
    provider: Arc<dyn RTCCryptoProvider>,
    tie_breaker: u64,
    tid: TransactionId,
    sent_at: Option<Instant>,
    last_sent: Option<Instant>,
    next_send: Instant,
    tries: u32,
    connected: bool,
}

impl StunClient {
    /// `local_ufrag`/`remote_ufrag`/`remote_pwd` from the offer and answer. The first request is
    /// due at `now`.
    pub fn new(
        local_ufrag: &str,
        remote_ufrag: &str,
        remote_pwd: &str,
        provider: Arc<dyn RTCCryptoProvider>,
        tie_breaker: u64,
        now: Instant,
    ) -> Self {
        Self {
            username: format!("{remote_ufrag}:{local_ufrag}"),
            remote_pwd: remote_pwd.to_owned(),
            provider,
            tie_breaker,
            tid: TransactionId::new(),
            sent_at: None,
            last_sent: None,
            next_send: now,
            tries: 0,
            connected: false,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    fn build(&self) -> Result<Vec<u8>, StunError> {
        let err = |e: &dyn std::fmt::Display| StunError::Build(e.to_string());
        let mut m = Message::new();
        m.build(&[
            Box::new(self.tid),
            Box::new(BINDING_REQUEST),
            Box::new(TextAttribute::new(ATTR_USERNAME, self.username.clone())),
        ])
        .map_err(|e| err(&e))?;
        // Peer-reflexive priority of a host candidate (RFC 8445 5.1.2.1, type preference 110).
        let priority: u32 = (110 << 24) | (65535 << 8) | 255;
        m.add(ATTR_PRIORITY, &priority.to_be_bytes());
        m.add(ATTR_ICE_CONTROLLING, &self.tie_breaker.to_be_bytes());
        m.add(ATTR_USE_CANDIDATE, &[]);
        MessageIntegrity::new_short_term_integrity_with_provider(
            self.remote_pwd.clone(),
            self.provider.crypto(),
        )
        .add_to(&mut m)
        .map_err(|e| err(&e))?;
        FINGERPRINT.add_to(&mut m).map_err(|e| err(&e))?;
        Ok(m.raw)
    }

    /// The next request to send, if one is due at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Result<Option<Vec<u8>>, StunError> {
        if now < self.next_send {
            return Ok(None);
        }
        if !self.connected && self.tries >= MAX_TRIES {
            return Err(StunError::Timeout(self.tries));
        }
        let pkt = self.build()?;
        if self.sent_at.is_none() {
            self.sent_at = Some(now);
        }
        self.last_sent = Some(now);
        self.tries += 1;
        self.next_send = if self.connected {
            now + CONSENT_INTERVAL
        } else {
            now + (INITIAL_INTERVAL * 2u32.saturating_pow(self.tries - 1)).min(MAX_INTERVAL)
        };
        Ok(Some(pkt))
    }

    /// When the next request is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_send
    }

    /// A STUN datagram from the server.
    pub fn handle(&mut self, now: Instant, data: &[u8]) -> Result<StunEvent, StunError> {
        let mut m = Message::new();
        m.unmarshal_binary(data)
            .map_err(|e| StunError::Parse(e.to_string()))?;
        if m.typ != BINDING_SUCCESS || m.transaction_id != self.tid {
            return Ok(StunEvent::Ignored);
        }
        FINGERPRINT
            .check(&m)
            .map_err(|e| StunError::Integrity(e.to_string()))?;
        MessageIntegrity::check(&mut m, self.remote_pwd.as_bytes(), self.provider.crypto())
            .map_err(|e| StunError::Integrity(e.to_string()))?;
        // Karn: the RTT of a retransmitted request is ambiguous; take the time since the first
        // send, an upper bound, which is what a viewer waited.
        let rtt = self
            .sent_at
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        // A fresh transaction for the next (consent) request; this one is answered.
        self.tid = TransactionId::new();
        self.sent_at = None;
        self.tries = 0;
        if self.connected {
            Ok(StunEvent::Refreshed { rtt })
        } else {
            self.connected = true;
            self.next_send = now + CONSENT_INTERVAL;
            Ok(StunEvent::Connected { rtt })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_stun::crypto::default_provider;

    /// Answers a binding request as an ICE-lite server would (independently built with
    /// rtc-stun, checking what the server side must check).
    fn server_answer(req: &[u8], pwd: &str, provider: &Arc<dyn RTCCryptoProvider>) -> Vec<u8> {
        let mut m = Message::new();
        m.unmarshal_binary(req).unwrap();
        assert_eq!(m.typ, BINDING_REQUEST);
        FINGERPRINT.check(&m).unwrap();
        MessageIntegrity::check(&mut m, pwd.as_bytes(), provider.crypto()).unwrap();
        let user = TextAttribute::get_from_as(&m, ATTR_USERNAME).unwrap();
        assert_eq!(user.text, "srv:cli");
        assert!(m.contains(ATTR_USE_CANDIDATE));
        let mut r = Message::new();
        r.build(&[Box::new(m.transaction_id), Box::new(BINDING_SUCCESS)])
            .unwrap();
        MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), provider.crypto())
            .add_to(&mut r)
            .unwrap();
        FINGERPRINT.add_to(&mut r).unwrap();
        r.raw
    }

    #[test]
    fn check_succeeds_against_a_correct_server() {
        let p = default_provider().unwrap();
        let t0 = Instant::now();
        let mut c = StunClient::new("cli", "srv", "serverpassword1234567", p.clone(), 7, t0);
        let req = c.poll_transmit(t0).unwrap().unwrap();
        assert!(c.poll_transmit(t0).unwrap().is_none());
        let resp = server_answer(&req, "serverpassword1234567", &p);
        let ev = c.handle(t0 + Duration::from_millis(3), &resp).unwrap();
        assert_eq!(
            ev,
            StunEvent::Connected {
                rtt: Duration::from_millis(3)
            }
        );
        // Replays of the same response are ignored (transaction done).
        assert_eq!(c.handle(t0, &resp).unwrap(), StunEvent::Ignored);
        assert_eq!(
            c.poll_timeout(),
            t0 + Duration::from_millis(3) + CONSENT_INTERVAL
        );
    }

    #[test]
    fn wrong_password_is_rejected() {
        let p = default_provider().unwrap();
        let t0 = Instant::now();
        let mut c = StunClient::new("cli", "srv", "serverpassword1234567", p.clone(), 7, t0);
        let req = c.poll_transmit(t0).unwrap().unwrap();
        let mut m = Message::new();
        m.unmarshal_binary(&req).unwrap();
        let mut r = Message::new();
        r.build(&[Box::new(m.transaction_id), Box::new(BINDING_SUCCESS)])
            .unwrap();
        MessageIntegrity::new_short_term_integrity_with_provider("other".into(), p.crypto())
            .add_to(&mut r)
            .unwrap();
        FINGERPRINT.add_to(&mut r).unwrap();
        assert!(matches!(c.handle(t0, &r.raw), Err(StunError::Integrity(_))));
        assert!(!c.is_connected());
    }

    #[test]
    fn retransmits_with_backoff_then_times_out() {
        let p = default_provider().unwrap();
        let t0 = Instant::now();
        let mut c = StunClient::new("cli", "srv", "pw", p, 7, t0);
        let mut sends = Vec::new();
        let mut now = t0;
        loop {
            match c.poll_transmit(now) {
                Ok(Some(_)) => sends.push(now - t0),
                Ok(None) => {}
                Err(StunError::Timeout(n)) => {
                    assert_eq!(n, MAX_TRIES);
                    break;
                }
                Err(e) => panic!("{e}"),
            }
            now = c.poll_timeout();
        }
        assert_eq!(sends[1] - sends[0], INITIAL_INTERVAL);
        assert_eq!(sends[2] - sends[1], INITIAL_INTERVAL * 2);
        assert_eq!(sends.len(), MAX_TRIES as usize);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let p = default_provider().unwrap();
        let mut c = StunClient::new("a", "b", "c", p, 1, Instant::now());
        assert!(c.handle(Instant::now(), &[0, 1, 0, 0]).is_err());
    }
}
