//! The RTMP ingest server: a tokio listener driving one [`ServerSession`] per connection.
//!
//! A connection's failure (malformed input, refused key, sink error) closes only that
//! connection, with the reason logged; other connections and streams are unaffected.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::media::TagDemuxer;
use crate::origin::MediaSink;
use crate::origin::source::is_tag_local;
use crate::rtmp::{MediaTag, RtmpError, ServerConfig, ServerEvent, ServerSession};

/// Decides whether a publisher may publish: `(app, stream, key)`, where `key` is the `key` or
/// `token` query parameter of the stream name (or tcUrl). Configured keys or a signed-token
/// verifier are injected here by the server.
pub type KeyCheck = Arc<dyn Fn(&str, &str, Option<&str>) -> bool + Send + Sync>;

/// Receives the tags of one accepted publish. Dropping it ends the publish.
pub trait TagSink: Send {
    /// One audio/video/script tag. An error closes the publisher's connection.
    fn on_tag(&mut self, tag: MediaTag) -> Result<(), String>;
}

/// Tags for an RTMP player (another edge, an RTMP player app).
pub trait PlaySource: Send {
    /// The next tags to send (sequence headers first); `None` when the stream has ended. Must
    /// be cancel-safe: the driver races it against socket reads.
    fn next_tags(&mut self) -> Pin<Box<dyn Future<Output = Option<Vec<MediaTag>>> + Send + '_>>;
}

/// Where accepted publishes go (the hub, through an FLV tag demuxer), and where plays read.
pub trait PublishTarget: Send + Sync + 'static {
    /// Starts a publish of `app/stream`; an error (stream already published...) refuses it.
    fn start_publish(&self, app: &str, stream: &str) -> Result<Box<dyn TagSink>, String>;

    /// Starts a play of `app/stream`; an error (no such stream) refuses it.
    fn start_play(&self, _app: &str, _stream: &str) -> Result<Box<dyn PlaySource>, String> {
        Err("play is not supported here".to_owned())
    }
}

/// The usual [`TagSink`]: demuxes tags with the FLV [`TagDemuxer`] and feeds a
/// [`MediaSink`] (the hub). Malformed tags end the publish; tags of codecs the edge does not
/// carry are skipped. Dropping it calls [`MediaSink::on_end`].
pub struct DemuxingTagSink {
    demux: TagDemuxer,
    sink: Arc<dyn MediaSink>,
}

impl DemuxingTagSink {
    pub fn new(sink: Arc<dyn MediaSink>) -> DemuxingTagSink {
        DemuxingTagSink {
            demux: TagDemuxer::new(),
            sink,
        }
    }
}

impl TagSink for DemuxingTagSink {
    fn on_tag(&mut self, tag: MediaTag) -> Result<(), String> {
        match self
            .demux
            .push_tag(tag.kind.type_id(), tag.timestamp, tag.body)
        {
            Ok(()) => {}
            Err(e) if is_tag_local(&e) => tracing::debug!(error = %e, "skipping published tag"),
            Err(e) => return Err(format!("malformed FLV tag: {e}")),
        }
        while let Some(ev) = self.demux.poll() {
            self.sink.on_event(ev);
        }
        Ok(())
    }
}

impl Drop for DemuxingTagSink {
    fn drop(&mut self) {
        self.sink.on_end();
    }
}

/// Listener settings.
#[derive(Debug, Clone, Copy)]
pub struct RtmpServerConfig {
    pub bind: SocketAddr,
    pub session: ServerConfig,
    /// A connection that sends nothing for this long is closed (covers a stuck handshake).
    pub idle_timeout: Duration,
}

impl Default for RtmpServerConfig {
    fn default() -> Self {
        RtmpServerConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 1935)),
            session: ServerConfig::default(),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a publisher connection was closed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Rtmp(#[from] RtmpError),
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error("publish of {stream} refused: {reason}")]
    Refused { stream: String, reason: String },
    #[error("sink: {0}")]
    Sink(String),
}

/// A bound RTMP listener.
pub struct RtmpServer {
    listener: TcpListener,
    config: RtmpServerConfig,
    keys: KeyCheck,
    target: Arc<dyn PublishTarget>,
}

impl RtmpServer {
    pub async fn bind(
        config: RtmpServerConfig,
        keys: KeyCheck,
        target: Arc<dyn PublishTarget>,
    ) -> std::io::Result<RtmpServer> {
        let listener = TcpListener::bind(config.bind).await?;
        Ok(RtmpServer {
            listener,
            config,
            keys,
            target,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections forever, one task each.
    pub async fn run(self) {
        let mut n: u64 = 0;
        loop {
            let (socket, peer) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "rtmp accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            n += 1;
            let config = self.config;
            let keys = self.keys.clone();
            let target = self.target.clone();
            tokio::spawn(async move {
                match serve(socket, config, &keys, &*target, n).await {
                    Ok(()) => tracing::info!(%peer, "rtmp connection closed"),
                    Err(e) => tracing::warn!(%peer, reason = %e, "rtmp connection closed"),
                }
            });
        }
    }
}

/// Runs one connection to completion.
pub async fn serve(
    mut socket: TcpStream,
    config: RtmpServerConfig,
    keys: &KeyCheck,
    target: &dyn PublishTarget,
    seed: u64,
) -> Result<(), ConnectionError> {
    socket.set_nodelay(true)?;
    let mut session =
        ServerSession::new(config.session, 0, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut sink: Option<Box<dyn TagSink>> = None;
    let mut play: Option<Box<dyn PlaySource>> = None;
    loop {
        buf.clear();
        let n = timeout(config.idle_timeout, socket.read_buf(&mut buf))
            .await
            .map_err(|_| ConnectionError::Idle(config.idle_timeout))??;
        if n == 0 {
            return Ok(());
        }
        let mut result = session.receive(&buf);
        while result.is_ok() {
            let Some(ev) = session.poll_event() else {
                break;
            };
            match ev {
                ServerEvent::PublishRequest { app, stream, key } => {
                    let key_ok = keys(&app, &stream, key.as_deref());
                    let started = if key_ok {
                        target.start_publish(&app, &stream)
                    } else {
                        Err("bad stream key".to_owned())
                    };
                    match started {
                        Ok(s) => {
                            tracing::info!(app, stream, "rtmp publish started");
                            sink = Some(s);
                            result = session.accept_publish();
                        }
                        Err(reason) => {
                            session.reject_publish(&reason);
                            let out = session.take_output();
                            socket.write_all(&out).await?;
                            return Err(ConnectionError::Refused {
                                stream: format!("{app}/{stream}"),
                                reason,
                            });
                        }
                    }
                }
                ServerEvent::PlayRequest { app, stream, key } => {
                    let started = if keys(&app, &stream, key.as_deref()) {
                        target.start_play(&app, &stream)
                    } else {
                        Err("bad stream key".to_owned())
                    };
                    match started {
                        Ok(source) => {
                            tracing::info!(app, stream, "rtmp play started");
                            play = Some(source);
                            result = session.accept_play();
                        }
                        Err(reason) => {
                            session.reject_play(&reason);
                            let out = session.take_output();
                            socket.write_all(&out).await?;
                            return Err(ConnectionError::Refused {
                                stream: format!("{app}/{stream}"),
                                reason,
                            });
                        }
                    }
                }
                ServerEvent::Media(tag) => {
                    if let Some(s) = sink.as_mut() {
                        s.on_tag(tag).map_err(ConnectionError::Sink)?;
                    }
                }
                ServerEvent::Unpublish => {
                    tracing::info!(app = session.app(), "rtmp publish ended");
                    sink = None;
                }
            }
        }
        let out = session.take_output();
        if !out.is_empty() {
            socket.write_all(&out).await?;
        }
        result?;
        if let Some(source) = play.take() {
            return play_loop(socket, session, source, buf).await;
        }
    }
}

/// Sends a play source to the peer while still reading (acks, pings, closeStream).
async fn play_loop(
    mut socket: TcpStream,
    mut session: ServerSession,
    mut source: Box<dyn PlaySource>,
    mut buf: BytesMut,
) -> Result<(), ConnectionError> {
    loop {
        let out = session.take_output();
        if !out.is_empty() {
            socket.write_all(&out).await?;
        }
        buf.clear();
        tokio::select! {
            r = socket.read_buf(&mut buf) => {
                if r? == 0 {
                    return Ok(());
                }
                session.receive(&buf)?;
                while session.poll_event().is_some() {}
                if !session.is_playing() {
                    return Ok(());
                }
            }
            tags = source.next_tags() => {
                let Some(tags) = tags else { return Ok(()) };
                for t in &tags {
                    session.send_media(t)?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;
    use crate::media::DemuxEvent;
    use crate::rtmp::TagKind;

    #[derive(Default)]
    struct Record(Mutex<Vec<DemuxEvent>>, Mutex<bool>);

    impl MediaSink for Record {
        fn on_event(&self, ev: DemuxEvent) {
            self.0.lock().unwrap().push(ev);
        }
        fn on_end(&self) {
            *self.1.lock().unwrap() = true;
        }
    }

    fn tag(kind: TagKind, body: &'static [u8]) -> MediaTag {
        MediaTag {
            kind,
            timestamp: 0,
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn malformed_tags_end_the_publish_unsupported_ones_are_skipped() {
        let rec = Arc::new(Record::default());
        let mut sink = DemuxingTagSink::new(rec.clone());
        // MP3 audio: not carried, skipped.
        assert!(
            sink.on_tag(tag(TagKind::Audio, &[0x2f, 0xff, 0xfb]))
                .is_ok()
        );
        // AVC NALU claiming 9 bytes with 1 present.
        let err = sink
            .on_tag(tag(
                TagKind::Video,
                &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 9, 0x65],
            ))
            .unwrap_err();
        assert!(err.starts_with("malformed FLV tag"), "{err}");
        drop(sink);
        assert!(*rec.1.lock().unwrap(), "dropping the sink ends the stream");
    }
}
