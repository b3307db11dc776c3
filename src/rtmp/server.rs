//! The server side of an RTMP connection, for publishers (ffmpeg, OBS, encoders).
//!
//! Sequence handled: `connect` → `_result`; `releaseStream`/`FCPublish` → `_result`;
//! `createStream` → `_result(stream id)`; `publish` → [`ServerEvent::PublishRequest`], then,
//! once the application calls [`ServerSession::accept_publish`], `onStatus
//! NetStream.Publish.Start` and media as [`ServerEvent::Media`]; `FCUnpublish`/`deleteStream`
//! → [`ServerEvent::Unpublish`].
//!
//! Players (other edges, RTMP players) get `play` → [`ServerEvent::PlayRequest`]; after
//! [`ServerSession::accept_play`] the application sends tags with
//! [`ServerSession::send_media`].

use std::collections::VecDeque;

use super::amf0::Amf0Value;
use super::chunk::ChunkLimits;
use super::conn::Conn;
use super::error::RtmpError;
use super::handshake::Handshake;
use super::message::{Command, MediaTag, Message, UserControl, csid};

/// Tunables of a server session.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Chunk size we send with (larger = fewer headers).
    pub chunk_size: u32,
    /// Window Acknowledgement Size we ask of the peer, and Set Peer Bandwidth we grant.
    pub window_ack_size: u32,
    pub limits: ChunkLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            limits: ChunkLimits::default(),
        }
    }
}

/// What the application learns from a server session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// The peer wants to publish `app/stream`. Answer with `accept_publish` or
    /// `reject_publish`; no further input is processed until then.
    PublishRequest {
        app: String,
        /// The stream name without its query string.
        stream: String,
        /// The `key` (or `token`) query parameter of the stream name or, failing that, of the
        /// app (tcUrl) query.
        key: Option<String>,
    },
    /// The peer wants to play `app/stream`. Answer with `accept_play` (then send tags with
    /// `send_media`) or `reject_play`; no further input is processed until then.
    PlayRequest {
        app: String,
        stream: String,
        key: Option<String>,
    },
    /// An audio/video/script message of the accepted publish.
    Media(MediaTag),
    /// The publisher stopped (`FCUnpublish`, `deleteStream` or `closeStream`).
    Unpublish,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AwaitConnect,
    Connected,
    PublishPending { stream_id: u32 },
    Publishing { stream_id: u32 },
    PlayPending { stream_id: u32 },
    Playing { stream_id: u32 },
    Unpublished,
}

/// A sans-IO RTMP server session: feed it received bytes, send what [`Self::take_output`]
/// returns, act on [`Self::poll_event`].
#[derive(Debug)]
pub struct ServerSession {
    conn: Conn,
    config: ServerConfig,
    state: State,
    app: String,
    app_query: String,
    next_stream_id: u32,
    events: VecDeque<ServerEvent>,
}

impl ServerSession {
    /// `epoch` and `seed` fill the handshake's S1 (any values work).
    pub fn new(config: ServerConfig, epoch: u32, seed: u64) -> ServerSession {
        ServerSession {
            conn: Conn::new(Handshake::server(epoch, seed), Vec::new(), config.limits),
            config,
            state: State::AwaitConnect,
            app: String::new(),
            app_query: String::new(),
            next_stream_id: 1,
            events: VecDeque::new(),
        }
    }

    /// Processes received bytes. An error means the connection must be closed.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        self.conn.receive(data)?;
        self.process()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Bytes to send to the peer (empties the buffer).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.conn.out)
    }

    /// Whether the handshake has completed.
    pub fn is_connected(&self) -> bool {
        self.conn.handshake_done() && self.state != State::AwaitConnect
    }

    /// The application name from `connect` (without query).
    pub fn app(&self) -> &str {
        &self.app
    }

    /// Accepts the pending publish and resumes processing buffered input.
    pub fn accept_publish(&mut self) -> Result<(), RtmpError> {
        let State::PublishPending { stream_id } = self.state else {
            return Err(RtmpError::Protocol("no publish pending".into()));
        };
        self.state = State::Publishing { stream_id };
        let mut w = self.conn.writer();
        w.user_control(UserControl::StreamBegin(stream_id));
        w.on_status(stream_id, "status", "NetStream.Publish.Start", "publishing");
        self.process()
    }

    /// Accepts the pending play: Stream Begin and `onStatus NetStream.Play.Start`; the
    /// application then sends the stream with [`Self::send_media`], starting with metadata and
    /// sequence headers.
    pub fn accept_play(&mut self) -> Result<(), RtmpError> {
        let State::PlayPending { stream_id } = self.state else {
            return Err(RtmpError::Protocol("no play pending".into()));
        };
        self.state = State::Playing { stream_id };
        let mut w = self.conn.writer();
        w.user_control(UserControl::StreamBegin(stream_id));
        w.on_status(stream_id, "status", "NetStream.Play.Reset", "reset");
        w.on_status(stream_id, "status", "NetStream.Play.Start", "playing");
        self.process()
    }

    /// Refuses the pending play (`NetStream.Play.StreamNotFound`); the caller then closes.
    pub fn reject_play(&mut self, description: &str) {
        if let State::PlayPending { stream_id } = self.state {
            self.conn.writer().on_status(
                stream_id,
                "error",
                "NetStream.Play.StreamNotFound",
                description,
            );
            self.state = State::Unpublished;
        }
    }

    /// Queues one tag for a playing peer.
    pub fn send_media(&mut self, tag: &MediaTag) -> Result<(), RtmpError> {
        let State::Playing { stream_id } = self.state else {
            return Err(RtmpError::Protocol("not playing".into()));
        };
        self.conn.writer().media(stream_id, tag);
        Ok(())
    }

    /// Whether a play was accepted (and not stopped).
    pub fn is_playing(&self) -> bool {
        matches!(self.state, State::Playing { .. })
    }

    /// Refuses the pending publish with an error `onStatus`; the caller then closes.
    pub fn reject_publish(&mut self, description: &str) {
        if let State::PublishPending { stream_id } = self.state {
            self.conn.writer().on_status(
                stream_id,
                "error",
                "NetStream.Publish.BadName",
                description,
            );
            self.state = State::Unpublished;
        }
    }

    fn process(&mut self) -> Result<(), RtmpError> {
        while !matches!(
            self.state,
            State::PublishPending { .. } | State::PlayPending { .. }
        ) {
            let Some((_, msg)) = self.conn.next_message()? else {
                return Ok(());
            };
            match msg {
                Message::Command { stream_id, command } => self.on_command(stream_id, command)?,
                Message::Media(tags) => match self.state {
                    State::Publishing { .. } => {
                        self.events.extend(tags.into_iter().map(ServerEvent::Media));
                    }
                    // Late packets after unpublish are harmless.
                    State::Unpublished => {}
                    State::Playing { .. } => {
                        return Err(RtmpError::Protocol("media from a playing client".into()));
                    }
                    _ => return Err(RtmpError::Protocol("media before publish".into())),
                },
                // Bandwidth hints and other user control events need no action on a server.
                _ => {}
            }
        }
        Ok(())
    }

    fn on_command(&mut self, stream_id: u32, cmd: Command) -> Result<(), RtmpError> {
        let tx = cmd.transaction_id;
        match (cmd.name.as_str(), &self.state) {
            ("connect", State::AwaitConnect) => {
                let app = cmd
                    .object
                    .get("app")
                    .and_then(Amf0Value::as_str)
                    .unwrap_or("");
                let (app, query) = split_query(app.trim_end_matches('/'));
                self.app = app.to_owned();
                self.app_query = query.to_owned();
                if self.app_query.is_empty()
                    && let Some(tc) = cmd.object.get("tcUrl").and_then(Amf0Value::as_str)
                {
                    self.app_query = split_query(tc).1.to_owned();
                }
                let window = self.config.window_ack_size;
                let chunk = self.config.chunk_size;
                {
                    let mut w = self.conn.writer();
                    w.window_ack_size(window);
                    w.set_peer_bandwidth(window, 2);
                }
                self.conn.set_chunk_size(chunk);
                // Echo the Enhanced RTMP codec list so E-RTMP clients know HEVC is understood.
                let mut props = vec![
                    ("fmsVer".to_owned(), Amf0Value::string("FMS/3,5,7,7009")),
                    ("capabilities".to_owned(), Amf0Value::Number(31.0)),
                    ("mode".to_owned(), Amf0Value::Number(1.0)),
                ];
                if let Some(list) = cmd.object.get("fourCcList") {
                    props.push(("fourCcList".to_owned(), list.clone()));
                }
                let info = Amf0Value::object([
                    ("level", Amf0Value::string("status")),
                    ("code", Amf0Value::string("NetConnection.Connect.Success")),
                    ("description", Amf0Value::string("Connection succeeded.")),
                    ("objectEncoding", Amf0Value::Number(0.0)),
                ]);
                self.conn.writer().command(
                    csid::COMMAND,
                    0,
                    "_result",
                    tx,
                    &[Amf0Value::Object(props), info],
                );
                self.state = State::Connected;
            }
            ("connect", _) => return Err(RtmpError::Protocol("second connect".into())),
            (_, State::AwaitConnect) => {
                return Err(RtmpError::Protocol(format!("{} before connect", cmd.name)));
            }
            ("createStream", _) => {
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.saturating_add(1);
                self.conn.writer().command(
                    csid::COMMAND,
                    0,
                    "_result",
                    tx,
                    &[Amf0Value::Null, Amf0Value::Number(f64::from(id))],
                );
            }
            ("releaseStream" | "FCPublish" | "getStreamLength" | "_checkbw", _) if tx != 0.0 => {
                self.conn.writer().command(
                    csid::COMMAND,
                    0,
                    "_result",
                    tx,
                    &[Amf0Value::Null, Amf0Value::Undefined],
                );
            }
            ("publish", State::Connected) => {
                let name = cmd.args.first().and_then(Amf0Value::as_str).unwrap_or("");
                let (stream, query) = split_query(name);
                if stream.is_empty() {
                    return Err(RtmpError::Protocol("publish without a stream name".into()));
                }
                let key = query_param(query).or_else(|| query_param(&self.app_query));
                self.events.push_back(ServerEvent::PublishRequest {
                    app: self.app.clone(),
                    stream: stream.to_owned(),
                    key,
                });
                self.state = State::PublishPending { stream_id };
            }
            ("publish", _) => return Err(RtmpError::Protocol("publish while publishing".into())),
            ("FCUnpublish" | "deleteStream" | "closeStream", State::Publishing { .. }) => {
                self.state = State::Unpublished;
                self.events.push_back(ServerEvent::Unpublish);
            }
            ("play", State::Connected) => {
                let name = cmd.args.first().and_then(Amf0Value::as_str).unwrap_or("");
                let (stream, query) = split_query(name);
                if stream.is_empty() {
                    return Err(RtmpError::Protocol("play without a stream name".into()));
                }
                let key = query_param(query).or_else(|| query_param(&self.app_query));
                self.events.push_back(ServerEvent::PlayRequest {
                    app: self.app.clone(),
                    stream: stream.to_owned(),
                    key,
                });
                self.state = State::PlayPending { stream_id };
            }
            ("play", _) => return Err(RtmpError::Protocol("play in the wrong state".into())),
            ("closeStream" | "deleteStream", State::Playing { .. }) => {
                self.state = State::Unpublished;
            }
            // Anything else (onBWDone, FCSubscribe...) needs no answer.
            _ => {}
        }
        Ok(())
    }
}

/// Splits `name?query` at the first `?`.
pub(crate) fn split_query(s: &str) -> (&str, &str) {
    s.split_once('?').unwrap_or((s, ""))
}

/// The value of `key` (preferred) or `token` in a URL query string.
fn query_param(query: &str) -> Option<String> {
    let find = |want: &str| {
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == want).then(|| v.to_owned())
        })
    };
    find("key").or_else(|| find("token"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::chunk::ChunkEncoder;
    use crate::rtmp::message::{TagKind, Writer};
    use proptest::prelude::*;

    fn handshaken() -> ServerSession {
        let mut s = ServerSession::new(ServerConfig::default(), 0, 1);
        let mut hs = vec![3u8];
        hs.extend_from_slice(&[0u8; 1536 * 2]);
        s.receive(&hs).unwrap();
        s.take_output();
        s
    }

    fn commands(build: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
        let enc = ChunkEncoder::default();
        let mut out = Vec::new();
        build(&mut Writer {
            enc: &enc,
            out: &mut out,
        });
        out
    }

    #[test]
    fn publish_flow_pauses_for_the_decision() {
        let mut s = handshaken();
        let bytes = commands(|w| {
            w.command(
                3,
                0,
                "connect",
                1.0,
                &[Amf0Value::object([(
                    "app",
                    Amf0Value::string("live?key=a"),
                )])],
            );
            w.command(3, 0, "createStream", 2.0, &[Amf0Value::Null]);
            w.command(
                5,
                1,
                "publish",
                0.0,
                &[
                    Amf0Value::Null,
                    Amf0Value::string("cam1"),
                    Amf0Value::string("live"),
                ],
            );
            w.media(
                1,
                &MediaTag {
                    kind: TagKind::Video,
                    timestamp: 7,
                    body: bytes::Bytes::from_static(&[0x17, 0]),
                },
            );
        });
        s.receive(&bytes).unwrap();
        assert_eq!(
            s.poll_event(),
            Some(ServerEvent::PublishRequest {
                app: "live".into(),
                stream: "cam1".into(),
                key: Some("a".into())
            })
        );
        // The video message is held back until the publish is accepted.
        assert_eq!(s.poll_event(), None);
        s.accept_publish().unwrap();
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::Media(MediaTag { timestamp: 7, .. }))
        ));
        let out = s.take_output();
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("NetConnection.Connect.Success"));
        assert!(text.contains("NetStream.Publish.Start"));
    }

    #[test]
    fn media_before_publish_and_commands_before_connect_are_errors() {
        let mut s = handshaken();
        let bytes = commands(|w| {
            w.command(
                3,
                0,
                "publish",
                0.0,
                &[Amf0Value::Null, Amf0Value::string("x")],
            )
        });
        assert!(matches!(s.receive(&bytes), Err(RtmpError::Protocol(_))));
        let mut s = handshaken();
        let bytes = commands(|w| {
            w.command(
                3,
                0,
                "connect",
                1.0,
                &[Amf0Value::object([("app", Amf0Value::string("live"))])],
            );
            w.media(
                1,
                &MediaTag {
                    kind: TagKind::Audio,
                    timestamp: 0,
                    body: bytes::Bytes::from_static(&[0xaf, 1]),
                },
            );
        });
        assert!(matches!(s.receive(&bytes), Err(RtmpError::Protocol(_))));
    }

    proptest! {
        #[test]
        fn session_never_panics(data in prop::collection::vec(any::<u8>(), 0..2048), step in 1usize..300) {
            let mut s = handshaken();
            for piece in data.chunks(step) {
                if s.receive(piece).is_err() {
                    break;
                }
                while let Some(ev) = s.poll_event() {
                    if matches!(ev, ServerEvent::PublishRequest { .. }) && s.accept_publish().is_err() {
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn query_parsing() {
        assert_eq!(split_query("x?key=1"), ("x", "key=1"));
        assert_eq!(query_param("a=1&key=s3cret"), Some("s3cret".into()));
        assert_eq!(query_param("token=t"), Some("t".into()));
        assert_eq!(query_param("a=1"), None);
    }
}
