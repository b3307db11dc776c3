//! HTTP-FLV pull: a small HTTP/1.1 client over a tokio `TcpStream` that follows redirects and
//! streams the response body. The protocol logic is the sans-IO [`super::http`]; this file only
//! moves bytes and applies timeouts.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::error::PullError;
use super::http::{BodyDecoder, parse_head};
use super::url::{Scheme, Url, UrlError};

/// Timeouts and limits of one HTTP-FLV request.
#[derive(Debug, Clone, Copy)]
pub struct HttpFlvOptions {
    pub connect_timeout: Duration,
    /// From the request being sent to the response head and first body bytes.
    pub first_byte_timeout: Duration,
    pub max_redirects: u8,
}

impl Default for HttpFlvOptions {
    fn default() -> Self {
        HttpFlvOptions {
            connect_timeout: Duration::from_secs(3),
            first_byte_timeout: Duration::from_secs(5),
            max_redirects: 5,
        }
    }
}

/// An open HTTP-FLV response: read it with [`HttpFlvBody::next_chunk`].
#[derive(Debug)]
pub struct HttpFlvBody {
    stream: TcpStream,
    buf: BytesMut,
    decoder: BodyDecoder,
    pending: Vec<Bytes>,
    /// The URL that finally answered (after redirects).
    pub url: Url,
    /// When the TCP connection (of the final hop) was established.
    pub connected_at: Instant,
    /// When its first response byte arrived.
    pub first_byte_at: Instant,
}

/// Requests `url`, following up to `max_redirects` redirects, and returns the body reader once a
/// 2xx head has arrived.
pub async fn open(url: &str, opts: &HttpFlvOptions) -> Result<HttpFlvBody, PullError> {
    let mut url = Url::parse(url)?;
    let mut redirects = 0u8;
    loop {
        if url.scheme != Scheme::Http {
            return Err(PullError::Url(UrlError::Scheme(url.path.clone())));
        }
        let addr = url.socket_addr();
        let mut stream = timeout(opts.connect_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| PullError::ConnectTimeout(opts.connect_timeout))??;
        stream.set_nodelay(true)?;
        let connected_at = Instant::now();
        let mut first_byte_at = None;
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rtmlive\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            url.path,
            url.host_header()
        );
        stream.write_all(req.as_bytes()).await?;
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let head = timeout(opts.first_byte_timeout, async {
            loop {
                if let Some(h) = parse_head(&mut buf)? {
                    return Ok::<_, PullError>(h);
                }
                if stream.read_buf(&mut buf).await? == 0 {
                    return Err(PullError::Ended);
                }
                first_byte_at.get_or_insert_with(Instant::now);
            }
        })
        .await
        .map_err(|_| PullError::FirstByteTimeout(opts.first_byte_timeout))??;
        if head.is_redirect() {
            redirects += 1;
            if redirects > opts.max_redirects {
                return Err(PullError::TooManyRedirects(opts.max_redirects));
            }
            let loc = head
                .header("location")
                .ok_or(PullError::HttpStatus(head.status))?;
            url = url.join(loc)?;
            continue;
        }
        if !(200..300).contains(&head.status) {
            return Err(PullError::HttpStatus(head.status));
        }
        let decoder = BodyDecoder::new(head.body_framing()?);
        return Ok(HttpFlvBody {
            stream,
            buf,
            decoder,
            pending: Vec::new(),
            url,
            connected_at,
            first_byte_at: first_byte_at.unwrap_or_else(Instant::now),
        });
    }
}

impl HttpFlvBody {
    /// The next piece of the body, `None` at its end. Not cancel-safe across a partially
    /// decoded chunk header only in the sense that bytes stay buffered: it may be raced
    /// against a timer and called again.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, PullError> {
        loop {
            if !self.pending.is_empty() {
                return Ok(Some(self.pending.remove(0)));
            }
            self.decoder.decode(&mut self.buf, &mut self.pending)?;
            if !self.pending.is_empty() {
                continue;
            }
            if self.decoder.is_done() {
                return Ok(None);
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(64 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}
