//! A minimal HTTP/1.1 client for WHEP (POST/DELETE) and HTTP-FLV (a streaming GET), enough for
//! talking to our own edge over plain TCP. The response head is parsed with hard limits; the
//! body is either read whole (bounded) or handed over as a stream.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest body read whole (an SDP answer is ~2 KB).
pub const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("HTTP I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP request timed out")]
    Timeout,
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    #[error("HTTP body over {MAX_BODY} bytes")]
    TooLarge,
}

/// Status and headers of a response.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Option<usize> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// A response whose body is still on the wire.
pub struct Response {
    pub head: ResponseHead,
    stream: TcpStream,
    /// Body bytes read together with the head.
    pending: Vec<u8>,
    body: BodyReader,
}

#[derive(Debug, Clone, Copy)]
enum BodyReader {
    Length(usize),
    Chunked { left_in_chunk: usize, done: bool },
    UntilClose,
}

/// Parses a response head (status line and headers, without the blank line).
pub fn parse_head(raw: &[u8]) -> Result<ResponseHead, HttpError> {
    let text = std::str::from_utf8(raw).map_err(|_| HttpError::Malformed("non-UTF-8 head"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or(HttpError::Malformed("empty"))?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("not HTTP/1.x"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::Malformed("bad status"))?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(ResponseHead { status, headers })
}

/// Sends a request and reads the response head.
pub async fn request(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, HttpError> {
    let mut stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out).await?;
    let mut buf = Vec::with_capacity(4096);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(HttpError::Malformed("head too large"));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Malformed("connection closed in head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = parse_head(&buf[..end])?;
    let pending = buf[end + 4..].to_vec();
    let body = if head.chunked() {
        BodyReader::Chunked {
            left_in_chunk: 0,
            done: false,
        }
    } else if let Some(n) = head.content_length() {
        BodyReader::Length(n)
    } else {
        BodyReader::UntilClose
    };
    Ok(Response {
        head,
        stream,
        pending,
        body,
    })
}

impl Response {
    async fn fill(&mut self) -> Result<bool, HttpError> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next piece of body; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        loop {
            match self.body {
                BodyReader::Length(0) | BodyReader::Chunked { done: true, .. } => return Ok(None),
                BodyReader::Length(left) => {
                    if self.pending.is_empty() && !self.fill().await? {
                        return Err(HttpError::Malformed("body shorter than Content-Length"));
                    }
                    let take = self.pending.len().min(left);
                    self.body = BodyReader::Length(left - take);
                    return Ok(Some(self.pending.drain(..take).collect()));
                }
                BodyReader::UntilClose => {
                    if self.pending.is_empty() && !self.fill().await? {
                        return Ok(None);
                    }
                    return Ok(Some(std::mem::take(&mut self.pending)));
                }
                BodyReader::Chunked { left_in_chunk, .. } if left_in_chunk > 0 => {
                    if self.pending.is_empty() && !self.fill().await? {
                        return Err(HttpError::Malformed("truncated chunk"));
                    }
                    let take = self.pending.len().min(left_in_chunk);
                    self.body = BodyReader::Chunked {
                        left_in_chunk: left_in_chunk - take,
                        done: false,
                    };
                    return Ok(Some(self.pending.drain(..take).collect()));
                }
                BodyReader::Chunked { .. } => {
                    // A size line: [CRLF ending the previous chunk] HEX [;ext] CRLF.
                    let start = if self.pending.starts_with(b"\r\n") {
                        2
                    } else {
                        0
                    };
                    let Some(pos) = self.pending[start..].windows(2).position(|w| w == b"\r\n")
                    else {
                        if self.pending.len() > 1024 {
                            return Err(HttpError::Malformed("chunk size line too long"));
                        }
                        if !self.fill().await? {
                            return Err(HttpError::Malformed("truncated chunk size"));
                        }
                        continue;
                    };
                    let line = std::str::from_utf8(&self.pending[start..start + pos])
                        .map_err(|_| HttpError::Malformed("chunk size"))?;
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(hex, 16)
                        .map_err(|_| HttpError::Malformed("chunk size"))?;
                    self.pending.drain(..start + pos + 2);
                    self.body = BodyReader::Chunked {
                        left_in_chunk: size,
                        done: size == 0,
                    };
                }
            }
        }
    }

    /// Reads the whole body (bounded by [`MAX_BODY`]).
    pub async fn body(mut self, timeout: Duration) -> Result<(ResponseHead, Vec<u8>), HttpError> {
        let mut out = Vec::new();
        let read = async {
            while let Some(c) = self.chunk().await? {
                out.extend_from_slice(&c);
                if out.len() > MAX_BODY {
                    return Err(HttpError::TooLarge);
                }
            }
            Ok(())
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| HttpError::Timeout)??;
        Ok((self.head, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn serve_once(reply: &'static [u8]) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 4096];
            let _ = s.read(&mut b).await;
            s.write_all(reply).await.unwrap();
        });
        addr
    }

    #[tokio::test(flavor = "current_thread")]
    async fn content_length_and_chunked_bodies() {
        let a =
            serve_once(b"HTTP/1.1 201 Created\r\nLocation: /s/1\r\nContent-Length: 5\r\n\r\nhello")
                .await;
        let r = request(
            &a,
            "POST",
            "/whep/a/b",
            &[("Content-Type", "application/sdp")],
            b"x",
        )
        .await
        .unwrap();
        assert_eq!(r.head.status, 201);
        assert_eq!(r.head.header("location"), Some("/s/1"));
        let (_, body) = r.body(Duration::from_secs(1)).await.unwrap();
        assert_eq!(body, b"hello");

        let a = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").await;
        let r = request(&a, "GET", "/a/b.flv", &[], b"").await.unwrap();
        let (_, body) = r.body(Duration::from_secs(1)).await.unwrap();
        assert_eq!(body, b"abcde");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn garbage_head_is_an_error() {
        let a = serve_once(b"SIP/2.0 200 OK\r\n\r\n").await;
        assert!(matches!(
            request(&a, "GET", "/", &[], b"").await,
            Err(HttpError::Malformed(_))
        ));
    }
}
