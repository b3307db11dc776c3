//! Bounds-checked big-endian reader and writer used by both versions.
//!
//! Every read checks the remaining length first and every length field is compared with
//! what is left before anything is allocated, so hostile input can neither panic nor make
//! us allocate more than the datagram it came in.

use super::DecodeError;

pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                field,
                offset: self.pos,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.bytes(1, field)?[0])
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.bytes(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.bytes(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `str16`: u16 BE length + bytes.
    pub fn str16(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.u16(field)? as usize;
        self.bytes(n, field)
    }

    /// `str32`: u32 BE length + bytes.
    pub fn str32(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.u32(field)?;
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated {
            field,
            offset: self.pos,
        })?;
        self.bytes(n, field)
    }
}

/// Decodes a text field: UTF-8 without CR, LF or NUL.
///
/// Every text field (ICE credentials, URL, fingerprint, svrsig) is expanded into one SDP line, so
/// a line break inside one would smuggle extra SDP lines past the binary format's structure.
pub(super) fn utf8(b: &[u8], field: &'static str) -> Result<String, DecodeError> {
    if b.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0)) {
        return Err(DecodeError::LineBreak { field });
    }
    std::str::from_utf8(b)
        .map(str::to_string)
        .map_err(|_| DecodeError::InvalidUtf8 { field })
}

/// Appends a `str16`, failing when the value does not fit a u16 length.
pub(super) fn put_str16(
    out: &mut Vec<u8>,
    v: &[u8],
    field: &'static str,
) -> Result<(), super::EncodeError> {
    let n = u16::try_from(v.len()).map_err(|_| super::EncodeError::TooLong {
        field,
        max: u16::MAX as usize,
    })?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_reject_line_breaks_and_nul() {
        assert_eq!(utf8(b"abc", "url").unwrap(), "abc");
        for bad in [&b"a\r\na=x"[..], b"a\nb", b"a\0b", b"\r"] {
            assert_eq!(
                utf8(bad, "url"),
                Err(DecodeError::LineBreak { field: "url" })
            );
        }
        assert_eq!(
            utf8(&[0xff, 0xfe], "url"),
            Err(DecodeError::InvalidUtf8 { field: "url" })
        );
    }
}
