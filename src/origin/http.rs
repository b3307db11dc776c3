//! A sans-IO HTTP/1.1 response reader: the response head, then a body framed by
//! `Transfer-Encoding: chunked`, `Content-Length`, or the end of the connection.
//!
//! Only what an HTTP-FLV pull needs. Limits: the head may not exceed [`MAX_HEAD`] bytes or
//! [`MAX_HEADERS`] headers; chunk-size lines are bounded; body bytes are handed out as slices of
//! the receive buffer, never accumulated.

use bytes::{Buf, Bytes, BytesMut};

/// Largest response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines accepted.
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (size, extensions) accepted.
const MAX_CHUNK_LINE: usize = 1024;

/// Malformed HTTP from the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("bad status line {0:?}")]
    BadStatusLine(String),
    #[error("bad header line {0:?}")]
    BadHeader(String),
    #[error("bad Content-Length {0:?}")]
    BadContentLength(String),
    #[error("unsupported Transfer-Encoding {0:?}")]
    UnsupportedTransferEncoding(String),
    #[error("bad chunk size line")]
    BadChunkSize,
    #[error("missing CRLF after chunk data")]
    BadChunkTerminator,
}

/// Status and headers of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    /// Header names as received; look them up with [`ResponseHead::header`].
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this status is a redirect this client follows.
    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }

    /// How the body is framed (RFC 9112 §6.3).
    pub fn body_framing(&self) -> Result<BodyFraming, HttpError> {
        if let Some(te) = self.header("transfer-encoding") {
            let last = te.rsplit(',').next().unwrap_or("").trim();
            return if last.eq_ignore_ascii_case("chunked") {
                Ok(BodyFraming::Chunked)
            } else if last.eq_ignore_ascii_case("identity") {
                Ok(BodyFraming::UntilClose)
            } else {
                Err(HttpError::UnsupportedTransferEncoding(te.to_owned()))
            };
        }
        if let Some(cl) = self.header("content-length") {
            return cl
                .trim()
                .parse::<u64>()
                .map(BodyFraming::Length)
                .map_err(|_| HttpError::BadContentLength(cl.to_owned()));
        }
        if matches!(self.status, 204 | 304) || (100..200).contains(&self.status) {
            return Ok(BodyFraming::Length(0));
        }
        Ok(BodyFraming::UntilClose)
    }
}

/// Parses a response head from the front of `buf`. `Ok(None)`: need more bytes. On success the
/// head is removed from `buf`, leaving any body bytes.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<ResponseHead>, HttpError> {
    let Some(end) = find_head_end(buf) else {
        if buf.len() > MAX_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
        return Ok(None);
    };
    if end > MAX_HEAD {
        return Err(HttpError::HeadTooLarge);
    }
    let head = buf.split_to(end);
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    let reason = parts.next().unwrap_or("").to_owned();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(HttpError::BadStatusLine(status_line.to_owned()));
    }
    let status = code
        .parse::<u16>()
        .ok()
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| HttpError::BadStatusLine(status_line.to_owned()))?;
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() == MAX_HEADERS {
            return Err(HttpError::TooManyHeaders);
        }
        let (k, v) = line
            .split_once(':')
            .filter(|(k, _)| !k.is_empty() && !k.contains(' '))
            .ok_or_else(|| HttpError::BadHeader(line.to_owned()))?;
        headers.push((k.to_owned(), v.trim().to_owned()));
    }
    Ok(Some(ResponseHead {
        status,
        reason,
        headers,
    }))
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// How a body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    Chunked,
    Length(u64),
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// Extracts body bytes according to the framing.
#[derive(Debug)]
pub struct BodyDecoder {
    framing: BodyFraming,
    remaining: u64,
    chunked: Chunked,
}

impl BodyDecoder {
    pub fn new(framing: BodyFraming) -> BodyDecoder {
        BodyDecoder {
            framing,
            remaining: match framing {
                BodyFraming::Length(n) => n,
                _ => 0,
            },
            chunked: Chunked::Size,
        }
    }

    /// Whether the body is complete (never true for [`BodyFraming::UntilClose`]).
    pub fn is_done(&self) -> bool {
        match self.framing {
            BodyFraming::Length(_) => self.remaining == 0,
            BodyFraming::Chunked => self.chunked == Chunked::Done,
            BodyFraming::UntilClose => false,
        }
    }

    /// Takes body bytes out of `buf` into `out` (slices, no copy), leaving what cannot be
    /// decoded yet.
    pub fn decode(&mut self, buf: &mut BytesMut, out: &mut Vec<Bytes>) -> Result<(), HttpError> {
        match self.framing {
            BodyFraming::UntilClose => {
                if !buf.is_empty() {
                    out.push(buf.split().freeze());
                }
                Ok(())
            }
            BodyFraming::Length(_) => {
                let n = (buf.len() as u64).min(self.remaining) as usize;
                if n > 0 {
                    out.push(buf.split_to(n).freeze());
                    self.remaining -= n as u64;
                }
                Ok(())
            }
            BodyFraming::Chunked => self.decode_chunked(buf, out),
        }
    }

    fn decode_chunked(
        &mut self,
        buf: &mut BytesMut,
        out: &mut Vec<Bytes>,
    ) -> Result<(), HttpError> {
        loop {
            match self.chunked {
                Chunked::Size => {
                    let Some(line) = take_line(buf, MAX_CHUNK_LINE, HttpError::BadChunkSize)?
                    else {
                        return Ok(());
                    };
                    let hex = line.split(|&b| b == b';').next().unwrap_or_default();
                    let hex = std::str::from_utf8(hex)
                        .map_err(|_| HttpError::BadChunkSize)?
                        .trim();
                    if hex.is_empty() || hex.len() > 15 {
                        return Err(HttpError::BadChunkSize);
                    }
                    let size = u64::from_str_radix(hex, 16).map_err(|_| HttpError::BadChunkSize)?;
                    self.chunked = if size == 0 {
                        Chunked::Trailer
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(());
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    out.push(buf.split_to(n).freeze());
                    let left = left - n as u64;
                    self.chunked = if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    };
                }
                Chunked::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(());
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(HttpError::BadChunkTerminator);
                    }
                    buf.advance(2);
                    self.chunked = Chunked::Size;
                }
                Chunked::Trailer => {
                    let Some(line) = take_line(buf, MAX_HEAD, HttpError::HeadTooLarge)? else {
                        return Ok(());
                    };
                    if line.is_empty() {
                        self.chunked = Chunked::Done;
                    }
                }
                Chunked::Done => return Ok(()),
            }
        }
    }
}

/// Removes one CRLF-terminated line (without the CRLF) from `buf`.
fn take_line(
    buf: &mut BytesMut,
    max: usize,
    too_long: HttpError,
) -> Result<Option<Bytes>, HttpError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(p) if p <= max => {
            let line = buf.split_to(p).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        Some(_) => Err(too_long),
        None if buf.len() > max => Err(too_long),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn head_then_chunked_body_byte_by_byte() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
        let mut buf = BytesMut::new();
        let mut head = None;
        let mut dec: Option<BodyDecoder> = None;
        let mut body = Vec::new();
        for b in wire {
            buf.extend_from_slice(&[*b]);
            if head.is_none() {
                head = parse_head(&mut buf).unwrap();
                if let Some(h) = &head {
                    dec = Some(BodyDecoder::new(h.body_framing().unwrap()));
                }
            }
            if let Some(d) = dec.as_mut() {
                let mut out = Vec::new();
                d.decode(&mut buf, &mut out).unwrap();
                body.extend(out.iter().flat_map(|b| b.to_vec()));
            }
        }
        let h = head.unwrap();
        assert_eq!(
            (h.status, h.header("content-type")),
            (200, Some("video/x-flv"))
        );
        assert_eq!(body, b"hello world");
        assert!(dec.unwrap().is_done());
    }

    #[test]
    fn framing_rules() {
        let mut b = BytesMut::from(
            &b"HTTP/1.0 302 Found\r\nLocation: /x\r\nContent-Length: 3\r\n\r\nabcdef"[..],
        );
        let h = parse_head(&mut b).unwrap().unwrap();
        assert!(h.is_redirect());
        assert_eq!(h.body_framing(), Ok(BodyFraming::Length(3)));
        let mut d = BodyDecoder::new(BodyFraming::Length(3));
        let mut out = Vec::new();
        d.decode(&mut b, &mut out).unwrap();
        assert_eq!(
            (&out[0][..], d.is_done(), &b[..]),
            (&b"abc"[..], true, &b"def"[..])
        );
        let mut b = BytesMut::from(&b"HTTP/1.1 200 OK\r\n\r\n"[..]);
        assert_eq!(
            parse_head(&mut b).unwrap().unwrap().body_framing(),
            Ok(BodyFraming::UntilClose)
        );
    }

    #[test]
    fn malformed_is_typed() {
        let mut b = BytesMut::from(&b"SIP/2.0 200 OK\r\n\r\n"[..]);
        assert!(matches!(
            parse_head(&mut b),
            Err(HttpError::BadStatusLine(_))
        ));
        let mut b = BytesMut::from(&b"HTTP/1.1 200 OK\r\nnocolon\r\n\r\n"[..]);
        assert!(matches!(parse_head(&mut b), Err(HttpError::BadHeader(_))));
        let mut b = BytesMut::from(vec![b'a'; MAX_HEAD + 1].as_slice());
        assert_eq!(parse_head(&mut b), Err(HttpError::HeadTooLarge));
        let mut d = BodyDecoder::new(BodyFraming::Chunked);
        let mut b = BytesMut::from(&b"zz\r\n"[..]);
        assert_eq!(
            d.decode(&mut b, &mut Vec::new()),
            Err(HttpError::BadChunkSize)
        );
        let mut d = BodyDecoder::new(BodyFraming::Chunked);
        let mut b = BytesMut::from(&b"1\r\naXX"[..]);
        assert_eq!(
            d.decode(&mut b, &mut Vec::new()),
            Err(HttpError::BadChunkTerminator)
        );
        let mut b = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"[..]);
        let h = parse_head(&mut b).unwrap().unwrap();
        assert!(h.body_framing().is_err());
    }

    proptest! {
        #[test]
        fn never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut b = BytesMut::from(&data[..]);
            let _ = parse_head(&mut b);
            let mut d = BodyDecoder::new(BodyFraming::Chunked);
            let mut b = BytesMut::from(&data[..]);
            let _ = d.decode(&mut b, &mut Vec::new());
        }
    }
}
