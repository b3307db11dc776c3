//! Bounds-checked big-endian reader and writer used by both versions.
//!
//! Every read checks the remaining length first and every length field is compared with
//! what is left before anything is allocated, so hostile input can neither panic nor make
//! us allocate more than the datagram it came in.

use super::{DecodeError, EncodeError, STP_MAGIC, Status, StopPacket, WireVersion};

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
) -> Result<(), EncodeError> {
    let n = u16::try_from(v.len()).map_err(|_| EncodeError::TooLong {
        field,
        max: u16::MAX as usize,
    })?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(v);
    Ok(())
}

/// Hands back the finished packet, or refuses it when it is larger than the version's `limit`:
/// miniSDP is one datagram and must not be IP-fragmented.
pub(super) fn within_limit(out: Vec<u8>, limit: usize) -> Result<Vec<u8>, EncodeError> {
    if out.len() > limit {
        return Err(EncodeError::PacketTooLarge {
            size: out.len(),
            limit,
        });
    }
    Ok(out)
}

/// Writes a stop packet. Both versions lay it out as magic, version byte, status, seq and a
/// `str16` svrsig; only the auth token that follows differs, so `put_auth` writes that.
pub(super) fn encode_stop(
    s: &StopPacket,
    version: u8,
    limit: usize,
    put_auth: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(32 + s.svrsig.len() + s.auth.len());
    out.extend_from_slice(&STP_MAGIC);
    out.push(version);
    out.extend_from_slice(&s.status.0.to_be_bytes());
    out.extend_from_slice(&s.seq.to_be_bytes());
    put_str16(&mut out, s.svrsig.as_bytes(), "svrsig")?;
    put_auth(&mut out)?;
    within_limit(out, limit)
}

/// Parses a stop packet laid out as [`encode_stop`] writes it (magic and version already
/// checked by the caller); `read_auth` reads the version's auth token.
pub(super) fn decode_stop(
    buf: &[u8],
    version: WireVersion,
    read_auth: impl FnOnce(&mut Reader<'_>) -> Result<Vec<u8>, DecodeError>,
) -> Result<StopPacket, DecodeError> {
    let mut r = Reader::new(buf);
    r.bytes(5, "header")?;
    let status = Status(r.u16("status")?);
    let seq = r.u16("seq")?;
    let svrsig = utf8(r.str16("svrsig")?, "svrsig")?;
    let auth = read_auth(&mut r)?;
    Ok(StopPacket {
        version,
        status,
        seq,
        svrsig,
        auth,
    })
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
