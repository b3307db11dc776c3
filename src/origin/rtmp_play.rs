//! RTMP play: the tokio driver of [`crate::rtmp::ClientSession`] for origins that only speak
//! RTMP.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::error::PullError;
use super::url::{Scheme, Url, UrlError};
use crate::rtmp::{ClientConfig, ClientEvent, ClientSession, MediaTag};

/// Timeouts of an RTMP play.
#[derive(Debug, Clone, Copy)]
pub struct RtmpPlayOptions {
    pub connect_timeout: Duration,
    /// From TCP connect to `NetStream.Play.Start`.
    pub first_byte_timeout: Duration,
}

impl Default for RtmpPlayOptions {
    fn default() -> Self {
        RtmpPlayOptions {
            connect_timeout: Duration::from_secs(3),
            first_byte_timeout: Duration::from_secs(5),
        }
    }
}

/// A playing RTMP connection: read it with [`RtmpPlay::next_tag`].
#[derive(Debug)]
pub struct RtmpPlay {
    stream: TcpStream,
    session: ClientSession,
    buf: BytesMut,
    ended: bool,
    /// When the TCP connection was established.
    pub connected_at: Instant,
    /// When the first byte from the server arrived.
    pub first_byte_at: Option<Instant>,
}

/// Splits `rtmp://host[:port]/app[/more]/stream[?query]` into the client configuration: the
/// last path segment (with the query) is the stream name, everything before it the app.
pub fn client_config(url: &Url) -> Result<ClientConfig, UrlError> {
    let path = url.path.trim_start_matches('/');
    let (before_query, query) = path
        .split_once('?')
        .map_or((path, None), |(a, b)| (a, Some(b)));
    let Some((app, stream)) = before_query.rsplit_once('/') else {
        return Err(UrlError::Authority(format!(
            "no app/stream in {}",
            url.path
        )));
    };
    if app.is_empty() || stream.is_empty() {
        return Err(UrlError::Authority(format!(
            "no app/stream in {}",
            url.path
        )));
    }
    let stream = match query {
        Some(q) => format!("{stream}?{q}"),
        None => stream.to_owned(),
    };
    let tc_url = format!("rtmp://{}/{app}", url.host_header());
    Ok(ClientConfig::new(app, tc_url, stream))
}

/// Connects and plays `url`; returns once the server has started playing.
pub async fn open(url: &str, opts: &RtmpPlayOptions) -> Result<RtmpPlay, PullError> {
    let url = Url::parse(url)?;
    if url.scheme != Scheme::Rtmp {
        return Err(PullError::Url(UrlError::Scheme(url.path.clone())));
    }
    let config = client_config(&url)?;
    let stream = timeout(opts.connect_timeout, TcpStream::connect(url.socket_addr()))
        .await
        .map_err(|_| PullError::ConnectTimeout(opts.connect_timeout))??;
    stream.set_nodelay(true)?;
    let seed = u64::from(std::process::id()) ^ (stream.local_addr()?.port() as u64) << 32;
    let mut play = RtmpPlay {
        stream,
        session: ClientSession::new(config, 0, seed),
        buf: BytesMut::with_capacity(64 * 1024),
        ended: false,
        connected_at: Instant::now(),
        first_byte_at: None,
    };
    timeout(opts.first_byte_timeout, async {
        while !play.session.is_playing() {
            play.pump().await?;
        }
        Ok::<_, PullError>(())
    })
    .await
    .map_err(|_| PullError::FirstByteTimeout(opts.first_byte_timeout))??;
    Ok(play)
}

impl RtmpPlay {
    /// Writes pending output, reads once, feeds the session.
    async fn pump(&mut self) -> Result<(), PullError> {
        let out = self.session.take_output();
        if !out.is_empty() {
            self.stream.write_all(&out).await?;
        }
        self.buf.clear();
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(PullError::Ended);
        }
        self.first_byte_at.get_or_insert_with(Instant::now);
        self.session.receive(&self.buf)?;
        let out = self.session.take_output();
        if !out.is_empty() {
            self.stream.write_all(&out).await?;
        }
        Ok(())
    }

    /// The next audio/video/script tag; `None` when the server ends the stream.
    pub async fn next_tag(&mut self) -> Result<Option<MediaTag>, PullError> {
        loop {
            match self.session.poll_event() {
                Some(ClientEvent::Media(tag)) => return Ok(Some(tag)),
                Some(ClientEvent::Ended) => self.ended = true,
                Some(ClientEvent::Playing) => {}
                None if self.ended => return Ok(None),
                None => match self.pump().await {
                    Err(PullError::Ended) => return Ok(None),
                    other => other?,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_app_and_stream() {
        let c =
            client_config(&Url::parse("rtmp://127.0.0.1:1936/live/x?token=a/b").unwrap()).unwrap();
        assert_eq!((c.app.as_str(), c.stream.as_str()), ("live", "x?token=a/b"));
        assert_eq!(c.tc_url, "rtmp://127.0.0.1:1936/live");
        let c = client_config(&Url::parse("rtmp://h/app/inst/s").unwrap()).unwrap();
        assert_eq!((c.app.as_str(), c.stream.as_str()), ("app/inst", "s"));
        assert!(client_config(&Url::parse("rtmp://h/s").unwrap()).is_err());
    }
}
