//! A deterministic two-way network for whole-system tests in virtual time.
//!
//! [`SimLink`] joins a client and a server by two seeded [`Impairment`]s (one per direction,
//! each with its own one-way delay and loss) and records every datagram offered to it in a
//! [`TraceEntry`] log, classified by protocol (RFC 7983 demultiplexing plus the miniSDP
//! marker), so a test can assert on, and a document can quote, the exact message sequence of
//! a session start.
//!
//! Time is whatever `Instant` the caller passes: the simulation only ever uses
//! `base + offset`, never the real clock, so runs are exact and reproducible.

use std::fmt;
use std::time::{Duration, Instant};

use crate::impair::{ImpairStats, Impairment, LinkSpec};

/// Which way a datagram travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// What a datagram is, as far as the start-up sequence cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MiniSdp,
    StunRequest,
    StunResponse,
    /// A DTLS datagram; `handshake` is the type of its first handshake message (1 ClientHello,
    /// 2 ServerHello, 3 HelloVerifyRequest, 11 Certificate, ...), `None` for a first record
    /// that is not a plaintext handshake (ChangeCipherSpec, encrypted Finished, alert).
    Dtls {
        handshake: Option<u8>,
    },
    Srtp,
    Srtcp,
    Other,
}

impl Kind {
    /// Classifies a datagram by its first bytes (RFC 7983; `0xFF` = miniSDP).
    pub fn of(data: &[u8]) -> Self {
        match data.first() {
            Some(0xFF) => Kind::MiniSdp,
            Some(0 | 1) => match data.get(1) {
                Some(0x01) if data[0] == 0 => Kind::StunRequest,
                _ => Kind::StunResponse,
            },
            Some(20..=63) => Kind::Dtls {
                // Content type 22 (handshake), epoch 0: the message type follows the 13-byte
                // record header.
                handshake: (data[0] == 22 && data.get(3..5) == Some(&[0, 0]))
                    .then(|| data.get(13).copied())
                    .flatten(),
            },
            Some(128..=191) => match data.get(1) {
                Some(192..=223) => Kind::Srtcp,
                _ => Kind::Srtp,
            },
            _ => Kind::Other,
        }
    }

    /// The DTLS ClientHello (with or without cookie).
    pub fn is_client_hello(self) -> bool {
        self == Kind::Dtls { handshake: Some(1) }
    }

    /// The HelloVerifyRequest.
    pub fn is_hello_verify(self) -> bool {
        self == Kind::Dtls { handshake: Some(3) }
    }

    /// The server's ServerHello flight.
    pub fn is_server_hello(self) -> bool {
        self == Kind::Dtls { handshake: Some(2) }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::MiniSdp => f.write_str("miniSDP"),
            Kind::StunRequest => f.write_str("STUN binding request"),
            Kind::StunResponse => f.write_str("STUN binding response"),
            Kind::Dtls { handshake: Some(1) } => f.write_str("DTLS ClientHello"),
            Kind::Dtls { handshake: Some(2) } => f.write_str("DTLS ServerHello flight"),
            Kind::Dtls { handshake: Some(3) } => f.write_str("DTLS HelloVerifyRequest"),
            Kind::Dtls {
                handshake: Some(11),
            } => f.write_str("DTLS Certificate"),
            Kind::Dtls { handshake: Some(t) } => write!(f, "DTLS handshake type {t}"),
            Kind::Dtls { handshake: None } => f.write_str("DTLS (CCS/Finished)"),
            Kind::Srtp => f.write_str("SRTP"),
            Kind::Srtcp => f.write_str("SRTCP"),
            Kind::Other => f.write_str("other"),
        }
    }
}

/// One datagram offered to the link.
#[derive(Debug, Clone, Copy)]
pub struct TraceEntry {
    /// When it was sent, from the link's base.
    pub sent: Duration,
    pub direction: Direction,
    pub kind: Kind,
    pub len: usize,
    /// False when the link lost it.
    pub delivered: bool,
}

/// Two seeded impaired directions and a trace of everything offered to them.
pub struct SimLink {
    base: Instant,
    up: Impairment<Vec<u8>>,
    down: Impairment<Vec<u8>>,
    trace: Vec<TraceEntry>,
    /// Stop tracing after this many entries (long runs keep counting but not logging).
    trace_limit: usize,
}

impl SimLink {
    /// A link whose directions use `up`/`down`, seeded from `seed` (different per direction).
    pub fn new(base: Instant, up: LinkSpec, down: LinkSpec, seed: u64) -> Self {
        Self {
            base,
            up: Impairment::new(up, seed),
            down: Impairment::new(down, seed ^ 0x9E37_79B9_7F4A_7C15),
            trace: Vec::new(),
            trace_limit: 100_000,
        }
    }

    /// A symmetric link: `rtt / 2` each way, independent `loss` per direction.
    pub fn symmetric(base: Instant, rtt: Duration, loss: f64, seed: u64) -> Self {
        let spec = LinkSpec {
            delay: rtt / 2,
            loss,
            ..LinkSpec::default()
        };
        Self::new(base, spec, spec, seed)
    }

    pub fn base(&self) -> Instant {
        self.base
    }

    /// Offers a datagram sent at `now` in `direction`.
    pub fn send(&mut self, now: Instant, direction: Direction, data: Vec<u8>) {
        let kind = Kind::of(&data);
        let len = data.len();
        let delivered = match direction {
            Direction::Up => self.up.push(now, data),
            Direction::Down => self.down.push(now, data),
        };
        if self.trace.len() < self.trace_limit {
            self.trace.push(TraceEntry {
                sent: now.saturating_duration_since(self.base),
                direction,
                kind,
                len,
                delivered,
            });
        }
    }

    /// The next datagram due at the server by `now`.
    pub fn recv_server(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.up.pop(now)
    }

    /// The next datagram due at the client by `now`.
    pub fn recv_client(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.down.pop(now)
    }

    /// Everything offered so far, in send order.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// The first traced datagram matching `f`.
    pub fn first(&self, f: impl Fn(&TraceEntry) -> bool) -> Option<TraceEntry> {
        self.trace.iter().copied().find(|e| f(e))
    }

    pub fn stats(&self, direction: Direction) -> ImpairStats {
        match direction {
            Direction::Up => self.up.stats(),
            Direction::Down => self.down.stats(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_start_up_datagrams() {
        assert_eq!(Kind::of(&[0xFF, 0, 0]), Kind::MiniSdp);
        assert_eq!(Kind::of(&[0x00, 0x01, 0, 0]), Kind::StunRequest);
        assert_eq!(Kind::of(&[0x01, 0x01, 0, 0]), Kind::StunResponse);
        let mut hello = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60, 1];
        assert!(Kind::of(&hello).is_client_hello());
        hello[13] = 3;
        assert!(Kind::of(&hello).is_hello_verify());
        hello[4] = 1; // epoch 1: encrypted
        assert_eq!(Kind::of(&hello), Kind::Dtls { handshake: None });
        assert_eq!(Kind::of(&[0x80, 96, 0, 1]), Kind::Srtp);
        assert_eq!(Kind::of(&[0x81, 200, 0, 1]), Kind::Srtcp);
        assert_eq!(Kind::of(&[]), Kind::Other);
    }

    #[test]
    fn symmetric_link_delays_each_way_by_half_the_rtt() {
        let t0 = Instant::now();
        let mut l = SimLink::symmetric(t0, Duration::from_millis(50), 0.0, 1);
        l.send(t0, Direction::Up, vec![0xFF, 1]);
        assert!(l.recv_server(t0 + Duration::from_millis(24)).is_none());
        assert_eq!(
            l.recv_server(t0 + Duration::from_millis(25)),
            Some(vec![0xFF, 1])
        );
        assert!(l.recv_client(t0 + Duration::from_secs(1)).is_none());
        assert_eq!(l.trace().len(), 1);
        assert!(l.trace()[0].delivered);
    }
}
