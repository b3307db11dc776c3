//! MSB-first bit reading for codec headers (SPS, PPS, slice headers, AudioSpecificConfig).
//!
//! Everything here reads network data, so every read is bounds-checked and returns
//! [`BitsError`] instead of panicking. Exp-Golomb codes are limited to 32 significant bits,
//! which is what the H.264/H.265 syntax needs; longer prefixes are malformed input.

/// Why a bit-level read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BitsError {
    /// The input ended before the syntax element did.
    #[error("bitstream ended early")]
    Eof,
    /// An Exp-Golomb code had more than 31 leading zero bits.
    #[error("exp-golomb code too long")]
    GolombOverflow,
}

/// Reads bits MSB-first from a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Bits left to read.
    pub fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Bits consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// One bit as a bool.
    pub fn read_flag(&mut self) -> Result<bool, BitsError> {
        let byte = *self.data.get(self.pos / 8).ok_or(BitsError::Eof)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Up to 32 bits as an unsigned integer.
    pub fn read_bits(&mut self, n: u32) -> Result<u32, BitsError> {
        debug_assert!(n <= 32);
        if n as usize > self.remaining() {
            return Err(BitsError::Eof);
        }
        let mut v: u64 = 0;
        for _ in 0..n.min(32) {
            v = (v << 1) | u64::from(self.read_flag()?);
        }
        Ok(v as u32)
    }

    /// Eight bits.
    pub fn read_u8(&mut self) -> Result<u8, BitsError> {
        Ok(self.read_bits(8)? as u8)
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: usize) -> Result<(), BitsError> {
        if n > self.remaining() {
            return Err(BitsError::Eof);
        }
        self.pos += n;
        Ok(())
    }

    /// Unsigned Exp-Golomb, `ue(v)`.
    pub fn read_ue(&mut self) -> Result<u32, BitsError> {
        let mut zeros = 0u32;
        while !self.read_flag()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitsError::GolombOverflow);
            }
        }
        if zeros == 0 {
            return Ok(0);
        }
        let rest = self.read_bits(zeros)?;
        // (1 << zeros) - 1 + rest fits in u64; clamp into u32 space as an overflow error.
        let v = (1u64 << zeros) - 1 + u64::from(rest);
        u32::try_from(v).map_err(|_| BitsError::GolombOverflow)
    }

    /// Signed Exp-Golomb, `se(v)`.
    pub fn read_se(&mut self) -> Result<i32, BitsError> {
        let k = i64::from(self.read_ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).map_err(|_| BitsError::GolombOverflow)
    }
}

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`) from at most the first `max_len`
/// bytes of a NAL unit, giving its RBSP. Header parsers need only a prefix, so slice headers
/// are unescaped from a bounded window rather than copying whole pictures.
pub fn unescape_rbsp(nal: &[u8], max_len: usize) -> Vec<u8> {
    let src = nal.get(..max_len.min(nal.len())).unwrap_or(nal);
    let mut out = Vec::with_capacity(src.len());
    let mut zeros = 0usize;
    for &b in src {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// The inverse of [`unescape_rbsp`]: inserts `03` wherever `00 00` is followed by a byte ≤ 3.
pub fn escape_rbsp(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    let mut zeros = 0usize;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bits_and_golomb() {
        // 1 | 010 | 011 | 00100 | 0... : ue = 0, 1, 2, 3
        let data = [0b1010_0110, 0b0100_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.read_ue(), Ok(0));
        assert_eq!(r.read_ue(), Ok(1));
        assert_eq!(r.read_ue(), Ok(2));
        assert_eq!(r.read_ue(), Ok(3));
        assert_eq!(r.remaining(), 4);
        assert_eq!(r.read_bits(5), Err(BitsError::Eof));
    }

    #[test]
    fn signed_golomb() {
        // ue 1 -> +1, ue 2 -> -1
        let data = [0b0100_1100];
        let mut r = BitReader::new(&data);
        assert_eq!(r.read_se(), Ok(1));
        assert_eq!(r.read_se(), Ok(-1));
    }

    #[test]
    fn golomb_overflow_is_an_error() {
        let data = [0u8; 8];
        assert_eq!(
            BitReader::new(&data).read_ue(),
            Err(BitsError::GolombOverflow)
        );
        assert_eq!(BitReader::new(&[0, 0]).read_ue(), Err(BitsError::Eof));
    }

    #[test]
    fn emulation_prevention_round_trip() {
        let rbsp = [0u8, 0, 1, 0, 0, 0, 0, 0, 3, 7];
        let ebsp = escape_rbsp(&rbsp);
        assert_eq!(ebsp, [0, 0, 3, 1, 0, 0, 3, 0, 0, 3, 0, 3, 7]);
        assert_eq!(unescape_rbsp(&ebsp, usize::MAX), rbsp);
    }
}
