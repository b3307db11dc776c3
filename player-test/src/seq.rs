//! RTP sequence-number unwrapping.
//!
//! RTP carries the low 16 bits of a sequence number. A player that waits for every packet
//! (no-drop) keeps its buffers keyed by an *extended* 64-bit number so that ordering and gap
//! arithmetic never have to think about wrap-around.

/// Maps 16-bit RTP sequence numbers onto a monotonic 64-bit space, choosing for each input the
/// extended value closest to the highest one seen so far (RFC 3550 A.1 style).
#[derive(Debug, Clone, Default)]
pub struct SeqUnwrapper {
    highest: Option<u64>,
}

/// Extended numbers start here so that a late packet from just before the first one (a NACKed
/// head of the first frame) still has a non-negative extended value.
const BASE: u64 = 1 << 32;

impl SeqUnwrapper {
    /// A fresh unwrapper that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest extended sequence number seen, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Extends `seq` without updating the state (for values carried in extensions, such as a
    /// frame-seq-range, which must not move the "highest seen" mark).
    pub fn peek(&self, seq: u16) -> u64 {
        match self.highest {
            None => BASE + u64::from(seq),
            Some(h) => {
                let delta = seq.wrapping_sub(h as u16) as i16;
                h.wrapping_add_signed(i64::from(delta))
            }
        }
    }

    /// Extends `seq` and records it as seen.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let ext = self.peek(seq);
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_forward_and_back() {
        let mut u = SeqUnwrapper::new();
        let a = u.unwrap(65534);
        let b = u.unwrap(65535);
        let c = u.unwrap(0);
        let d = u.unwrap(1);
        assert_eq!([b - a, c - b, d - c], [1, 1, 1]);
        // A late packet from before the wrap maps below, not 65535 ahead.
        assert_eq!(u.unwrap(65535), b);
        assert_eq!(u.highest(), Some(d));
    }

    proptest! {
        #[test]
        fn monotonic_for_small_reordering(start in any::<u16>(), steps in prop::collection::vec(-100i32..300, 1..500)) {
            let mut u = SeqUnwrapper::new();
            let mut truth: i64 = i64::from(start);
            let first = u.unwrap(start) as i64;
            for s in steps {
                truth += i64::from(s);
                let ext = u.unwrap(truth.rem_euclid(65536) as u16) as i64;
                prop_assert_eq!(ext - first, truth - i64::from(start));
            }
        }
    }
}
