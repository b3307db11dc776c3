//! 32-bit FLV/RTMP millisecond timestamps → monotonic 64-bit DTS.

/// Extends wrapping 32-bit millisecond timestamps (FLV's 24 bits + TimestampExtended, or the
/// RTMP extended timestamp) into an `i64` timeline. Each step is taken as the signed 32-bit
/// difference from the previous timestamp, so a wrap after 2^32 ms (~49.7 days) continues
/// forward and small backward steps stay small instead of becoming a 49-day jump.
#[derive(Debug, Clone, Default)]
pub struct TimestampUnwrapper {
    last: Option<(u32, i64)>,
}

impl TimestampUnwrapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// The extended value of `ts`. The first timestamp maps to itself.
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => i64::from(ts),
            Some((prev, prev_ext)) => prev_ext + i64::from(ts.wrapping_sub(prev) as i32),
        };
        self.last = Some((ts, ext));
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_forward() {
        let mut u = TimestampUnwrapper::new();
        assert_eq!(u.unwrap(u32::MAX - 10), i64::from(u32::MAX) - 10);
        assert_eq!(u.unwrap(5), i64::from(u32::MAX) + 6);
        assert_eq!(u.unwrap(3), i64::from(u32::MAX) + 4);
    }

    #[test]
    fn first_is_identity() {
        let mut u = TimestampUnwrapper::new();
        assert_eq!(u.unwrap(1000), 1000);
        assert_eq!(u.unwrap(1040), 1040);
    }
}
