//! The client side of an RTMP connection, for playing a stream from an origin.
//!
//! Sequence: handshake → `connect` (advertising Enhanced RTMP `fourCcList`) → `_result` →
//! `createStream` → `_result(stream id)` → `play` + Set Buffer Length → `onStatus
//! NetStream.Play.Start` → media. Enhanced RTMP video (ExVideoTagHeader) needs nothing here:
//! message bodies are FLV tag bodies and go to the FLV tag parser unchanged.

use std::collections::VecDeque;

use super::amf0::Amf0Value;
use super::chunk::ChunkLimits;
use super::conn::Conn;
use super::error::RtmpError;
use super::handshake::Handshake;
use super::message::{Command, MediaTag, Message, UserControl, csid};

const TX_CONNECT: f64 = 1.0;
const TX_CREATE_STREAM: f64 = 2.0;
const TX_PLAY: f64 = 3.0;

/// What to play and how.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Application, e.g. `live`.
    pub app: String,
    /// The `tcUrl`, e.g. `rtmp://origin.example:1935/live`.
    pub tc_url: String,
    /// Stream name to play, with any query string (`name?token=...`).
    pub stream: String,
    pub chunk_size: u32,
    /// Set Buffer Length sent after `play`, milliseconds.
    pub buffer_ms: u32,
    pub limits: ChunkLimits,
}

impl ClientConfig {
    pub fn new(
        app: impl Into<String>,
        tc_url: impl Into<String>,
        stream: impl Into<String>,
    ) -> Self {
        ClientConfig {
            app: app.into(),
            tc_url: tc_url.into(),
            stream: stream.into(),
            chunk_size: 4096,
            buffer_ms: 1000,
            limits: ChunkLimits::default(),
        }
    }
}

/// What the application learns from a client session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `NetStream.Play.Start` (or the first media, for servers that skip it).
    Playing,
    /// An audio/video/script message.
    Media(MediaTag),
    /// The server ended the stream (`NetStream.Play.Stop`, `UnpublishNotify`, Stream EOF).
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Connecting,
    CreatingStream,
    StartingPlay { stream_id: u32 },
    Playing { stream_id: u32 },
    Ended,
}

/// A sans-IO RTMP play client.
#[derive(Debug)]
pub struct ClientSession {
    conn: Conn,
    config: ClientConfig,
    state: State,
    events: VecDeque<ClientEvent>,
}

impl ClientSession {
    /// Starts a session; [`Self::take_output`] then returns C0 + C1.
    pub fn new(config: ClientConfig, epoch: u32, seed: u64) -> ClientSession {
        let mut out = Vec::new();
        let hs = Handshake::client(epoch, seed, &mut out);
        ClientSession {
            conn: Conn::new(hs, out, config.limits),
            config,
            state: State::Handshaking,
            events: VecDeque::new(),
        }
    }

    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.conn.out)
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Whether the server has started playing.
    pub fn is_playing(&self) -> bool {
        matches!(self.state, State::Playing { .. })
    }

    /// Processes received bytes. An error means the connection must be closed.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        let done = self.conn.receive(data)?;
        if done && self.state == State::Handshaking {
            self.send_connect();
        }
        while let Some((_, msg)) = self.conn.next_message()? {
            match msg {
                Message::Command { command, .. } => self.on_command(command)?,
                Message::Media(tags) => {
                    if let State::StartingPlay { stream_id } = self.state {
                        self.state = State::Playing { stream_id };
                        self.events.push_back(ClientEvent::Playing);
                    }
                    if matches!(self.state, State::Playing { .. }) {
                        self.events.extend(tags.into_iter().map(ClientEvent::Media));
                    }
                }
                Message::UserControl(UserControl::StreamEof(id))
                    if self.state == (State::Playing { stream_id: id }) =>
                {
                    self.end();
                }
                Message::SetPeerBandwidth { size, .. } => {
                    self.conn.writer().window_ack_size(size);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn end(&mut self) {
        if self.state != State::Ended {
            self.state = State::Ended;
            self.events.push_back(ClientEvent::Ended);
        }
    }

    fn send_connect(&mut self) {
        self.conn.set_chunk_size(self.config.chunk_size);
        let four_cc = ["hvc1", "avc1", "mp4a"]
            .into_iter()
            .map(Amf0Value::string)
            .collect();
        let obj = Amf0Value::object([
            ("app", Amf0Value::string(self.config.app.clone())),
            ("type", Amf0Value::string("nonprivate")),
            ("flashVer", Amf0Value::string("LNX 9,0,124,2")),
            ("tcUrl", Amf0Value::string(self.config.tc_url.clone())),
            ("fpad", Amf0Value::Boolean(false)),
            ("capabilities", Amf0Value::Number(15.0)),
            ("audioCodecs", Amf0Value::Number(4071.0)),
            ("videoCodecs", Amf0Value::Number(252.0)),
            ("videoFunction", Amf0Value::Number(1.0)),
            ("objectEncoding", Amf0Value::Number(0.0)),
            ("fourCcList", Amf0Value::StrictArray(four_cc)),
        ]);
        self.conn
            .writer()
            .command(csid::COMMAND, 0, "connect", TX_CONNECT, &[obj]);
        self.state = State::Connecting;
    }

    fn on_command(&mut self, cmd: Command) -> Result<(), RtmpError> {
        let tx = cmd.transaction_id;
        match cmd.name.as_str() {
            "_result" if tx == TX_CONNECT && self.state == State::Connecting => {
                self.conn.writer().command(
                    csid::COMMAND,
                    0,
                    "createStream",
                    TX_CREATE_STREAM,
                    &[Amf0Value::Null],
                );
                self.state = State::CreatingStream;
            }
            "_result" if tx == TX_CREATE_STREAM && self.state == State::CreatingStream => {
                let id = cmd
                    .args
                    .first()
                    .and_then(Amf0Value::as_number)
                    .unwrap_or(1.0);
                if !(0.0..=f64::from(u32::MAX)).contains(&id) {
                    return Err(RtmpError::Protocol(format!("stream id {id} out of range")));
                }
                let stream_id = id as u32;
                let mut w = self.conn.writer();
                w.command(
                    csid::STREAM_COMMAND,
                    stream_id,
                    "play",
                    TX_PLAY,
                    &[
                        Amf0Value::Null,
                        Amf0Value::string(self.config.stream.clone()),
                        Amf0Value::Number(-2000.0),
                    ],
                );
                w.user_control(UserControl::SetBufferLength {
                    stream_id,
                    millis: self.config.buffer_ms,
                });
                self.state = State::StartingPlay { stream_id };
            }
            "_error" => {
                let (code, description) = status_of(&cmd);
                return Err(RtmpError::Refused { code, description });
            }
            "onStatus" => {
                let level = status_field(&cmd, "level");
                let (code, description) = status_of(&cmd);
                if level == "error" || code.ends_with("Failed") || code.ends_with("StreamNotFound")
                {
                    return Err(RtmpError::Refused { code, description });
                }
                match code.as_str() {
                    "NetStream.Play.Start" | "NetStream.Play.Reset" => {
                        if let State::StartingPlay { stream_id } = self.state {
                            self.state = State::Playing { stream_id };
                            self.events.push_back(ClientEvent::Playing);
                        }
                    }
                    "NetStream.Play.Stop" | "NetStream.Play.UnpublishNotify" => self.end(),
                    _ => {}
                }
            }
            // onBWDone, |RtmpSampleAccess, onFCSubscribe, _result of other calls: nothing to do.
            _ => {}
        }
        Ok(())
    }
}

fn status_field(cmd: &Command, key: &str) -> String {
    cmd.args
        .first()
        .or(Some(&cmd.object))
        .and_then(|o| o.get(key))
        .and_then(Amf0Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn status_of(cmd: &Command) -> (String, String) {
    (status_field(cmd, "code"), status_field(cmd, "description"))
}
