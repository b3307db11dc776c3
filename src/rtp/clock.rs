//! Mapping between the millisecond timestamps of [`Frame`](crate::media::Frame)s and RTP clocks.
//!
//! The mapping is fixed so that a player can invert it exactly (the round trip
//! `frame → RTP → frame` is lossless) and so that all tracks of one stream share an origin:
//! clock value 0 is stream time 0 ms on every track, so `timestamp / clock_rate` is the same
//! wall position on audio and video without waiting for an RTCP sender report.
//!
//! * to the clock: `t = round_half_up(ms × rate / 1000)` ([`ms_to_clock`]);
//! * back: `ms = round_half_up(t × 1000 / rate)` ([`clock_to_ms`]).
//!
//! For every rate above 1000 Hz, `clock_to_ms(ms_to_clock(ms)) == ms`: rounding moves a value by
//! at most half a tick, which is less than half a millisecond. The decoding-timestamp extension
//! carries this exact mapping; audio RTP timestamps are additionally smoothed to whole frames
//! of samples (see `packetize::audio`).

/// Rounds `num / den` to the nearest integer, halves away towards +∞, for any sign of `num`.
fn div_round(num: i128, den: i128) -> i128 {
    (2 * num + den).div_euclid(2 * den)
}

/// Milliseconds to an (unwrapped) RTP clock value at `rate` Hz.
pub fn ms_to_clock(ms: i64, rate: u32) -> i64 {
    let v = div_round(i128::from(ms) * i128::from(rate), 1000);
    // Saturate rather than wrap: only absurd inputs (|ms| > 2^63 / rate) get here.
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// An (unwrapped) RTP clock value at `rate` Hz back to milliseconds. `rate` must be nonzero.
pub fn clock_to_ms(t: i64, rate: u32) -> i64 {
    let rate = i128::from(rate.max(1));
    let v = div_round(i128::from(t) * 1000, rate);
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// The 32-bit wire form of an unwrapped clock value (modulo 2^32).
pub fn wire(t: i64) -> u32 {
    t as u32
}

/// Extends 32-bit RTP-clock values (which wrap every 2^32 ticks: 13.2 h at 90 kHz) back to a
/// monotonic `i64` line.
///
/// The first value is taken as unsigned (`0..2^32`), which is exact for any stream whose
/// timestamps start below 2^32 ticks; every later value is placed nearest to the previous one
/// (a jump of less than 2^31 ticks either way), which follows wraps in both directions.
#[derive(Debug, Clone, Default)]
pub struct Unwrapper {
    last: Option<i64>,
}

impl Unwrapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends `v` and remembers it as the new reference.
    pub fn unwrap(&mut self, v: u32) -> i64 {
        let ext = self.peek(v);
        self.last = Some(ext);
        ext
    }

    /// Extends `v` without moving the reference.
    pub fn peek(&self, v: u32) -> i64 {
        match self.last {
            None => i64::from(v),
            Some(last) => {
                let delta = v.wrapping_sub(last as u32) as i32;
                last.wrapping_add(i64::from(delta))
            }
        }
    }
}

/// Extends 16-bit RTP sequence numbers to `u64` the same way.
#[derive(Debug, Clone, Default)]
pub struct SeqUnwrapper {
    last: Option<u64>,
}

impl SeqUnwrapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends `seq` (nearest to the previous value) and remembers it.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let ext = match self.last {
            None => u64::from(seq),
            Some(last) => {
                let delta = seq.wrapping_sub(last as u16) as i16;
                last.saturating_add_signed(i64::from(delta))
            }
        };
        self.last = Some(ext);
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_clock_is_exact() {
        assert_eq!(ms_to_clock(1000, 90_000), 90_000);
        assert_eq!(ms_to_clock(-40, 90_000), -3600);
        assert_eq!(clock_to_ms(3600, 90_000), 40);
    }

    #[test]
    fn round_trip_for_all_common_rates() {
        for rate in [
            8000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 88_200, 90_000, 96_000,
        ] {
            for ms in (-5000i64..5000).chain([i64::from(u32::MAX), 1 << 40]) {
                assert_eq!(
                    clock_to_ms(ms_to_clock(ms, rate), rate),
                    ms,
                    "rate {rate} ms {ms}"
                );
            }
        }
    }

    #[test]
    fn unwrapper_follows_wraps() {
        let mut u = Unwrapper::new();
        assert_eq!(u.unwrap(u32::MAX - 10), i64::from(u32::MAX) - 10);
        assert_eq!(u.unwrap(5), i64::from(u32::MAX) + 6);
        assert_eq!(u.unwrap(u32::MAX), i64::from(u32::MAX));
        let mut s = SeqUnwrapper::new();
        assert_eq!(s.unwrap(65535), 65535);
        assert_eq!(s.unwrap(0), 65536);
        assert_eq!(s.unwrap(65534), 65534);
    }
}
