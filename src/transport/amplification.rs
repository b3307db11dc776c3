//! Anti-amplification: before an address is verified, send it at most 3× what it sent us.
//!
//! Signaling arrives over UDP from an address nobody has verified yet: a forged source address
//! could make the edge bombard a victim with answers (and, with 0-RTT-style starts, media). Like
//! QUIC (RFC 9000 §8.1) the session counts bytes received from each unverified address and
//! refuses to send more than [`FACTOR`] times that to it until ICE verifies the address.

use std::net::SocketAddr;

/// Bytes we may send per byte received from an unverified address.
pub const FACTOR: u64 = 3;
/// Unverified addresses tracked per session; the oldest is forgotten first.
const SLOTS: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Slot {
    addr: SocketAddr,
    received: u64,
    sent: u64,
}

/// Per-address send credit of one session.
#[derive(Debug, Clone, Default)]
pub struct AmplificationBudget {
    slots: [Option<Slot>; SLOTS],
    next: usize,
}

impl AmplificationBudget {
    fn slot_mut(&mut self, addr: SocketAddr) -> Option<&mut Slot> {
        self.slots.iter_mut().flatten().find(|s| s.addr == addr)
    }

    /// Records `bytes` received from `addr`.
    pub fn on_received(&mut self, addr: SocketAddr, bytes: usize) {
        let bytes = bytes as u64;
        if let Some(s) = self.slot_mut(addr) {
            s.received = s.received.saturating_add(bytes);
            return;
        }
        self.slots[self.next % SLOTS] = Some(Slot {
            addr,
            received: bytes,
            sent: 0,
        });
        self.next = self.next.wrapping_add(1);
    }

    /// Bytes that may still be sent to `addr` before it is verified.
    pub fn allowance(&self, addr: SocketAddr) -> u64 {
        self.slots
            .iter()
            .flatten()
            .find(|s| s.addr == addr)
            .map_or(0, |s| {
                s.received.saturating_mul(FACTOR).saturating_sub(s.sent)
            })
    }

    /// Spends `bytes` of `addr`'s allowance; false (and nothing spent) when it does not fit.
    pub fn try_spend(&mut self, addr: SocketAddr, bytes: usize) -> bool {
        let bytes = bytes as u64;
        if self.allowance(addr) < bytes {
            return false;
        }
        if let Some(s) = self.slot_mut(addr) {
            s.sent = s.sent.saturating_add(bytes);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_times_received() {
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1".parse().unwrap();
        let mut bud = AmplificationBudget::default();
        assert!(!bud.try_spend(a, 1));
        bud.on_received(a, 100);
        assert_eq!(bud.allowance(a), 300);
        assert!(bud.try_spend(a, 250));
        assert!(!bud.try_spend(a, 51));
        assert!(bud.try_spend(a, 50));
        assert_eq!(bud.allowance(b), 0);
        bud.on_received(a, 10);
        assert_eq!(bud.allowance(a), 30);
    }

    #[test]
    fn bounded_slots() {
        let mut bud = AmplificationBudget::default();
        for p in 0..100u16 {
            bud.on_received(SocketAddr::from(([10, 0, 0, 1], p)), 10);
        }
        assert_eq!(bud.allowance(SocketAddr::from(([10, 0, 0, 1], 0))), 0);
        assert_eq!(bud.allowance(SocketAddr::from(([10, 0, 0, 1], 99))), 30);
    }
}
