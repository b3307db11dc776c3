//! RTMP messages: parsing a reassembled [`RawMessage`] into what it means, and building the
//! control and command messages a session sends.

use bytes::Bytes;

use super::amf0::{self, Amf0Error, Amf0Value};
use super::chunk::{ChunkEncoder, RawMessage};

/// Message type ids (RTMP 1.0 §5.4, §7.1).
pub mod type_id {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACK: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// Chunk stream ids this implementation sends on (any id is accepted when receiving).
pub mod csid {
    pub const CONTROL: u32 = 2;
    pub const COMMAND: u32 = 3;
    pub const STREAM_COMMAND: u32 = 5;
    pub const AUDIO: u32 = 6;
    pub const VIDEO: u32 = 7;
    pub const DATA: u32 = 8;
}

/// The kind of a media message, numbered as FLV tag types (RTMP and FLV share them), so a tag
/// body from RTMP is fed to the FLV tag parser unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagKind {
    Audio = 8,
    Video = 9,
    /// Script data (`onMetaData`), without the `@setDataFrame` wrapper.
    Script = 18,
}

impl TagKind {
    /// The FLV tag type / RTMP message type id.
    pub fn type_id(self) -> u8 {
        self as u8
    }
}

/// One audio, video or script message: exactly an FLV tag's type, timestamp and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaTag {
    pub kind: TagKind,
    /// Milliseconds (RTMP's 32-bit timestamp).
    pub timestamp: u32,
    pub body: Bytes,
}

/// User control events (RTMP 1.0 §7.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserControl {
    StreamBegin(u32),
    StreamEof(u32),
    StreamDry(u32),
    SetBufferLength {
        stream_id: u32,
        millis: u32,
    },
    StreamIsRecorded(u32),
    PingRequest(u32),
    PingResponse(u32),
    /// An event type this implementation does not act on.
    Other(u16),
}

/// A parsed AMF0 command (`connect`, `publish`, `_result`, `onStatus`...).
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub name: String,
    pub transaction_id: f64,
    /// The command object (often `Null`).
    pub object: Amf0Value,
    pub args: Vec<Amf0Value>,
}

/// What a received message means.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    SetChunkSize(u32),
    Abort(u32),
    Ack(u32),
    UserControl(UserControl),
    WindowAckSize(u32),
    SetPeerBandwidth {
        size: u32,
        limit_type: u8,
    },
    /// Audio, video or script data (aggregates arrive as several of these).
    Media(Vec<MediaTag>),
    Command {
        stream_id: u32,
        command: Command,
    },
    /// A message type this implementation ignores (shared objects, AMF3 data it cannot read).
    Ignored(u8),
}

/// A message whose body is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message type {type_id} body too short ({len} bytes)")]
    TooShort { type_id: u8, len: usize },
    #[error("bad AMF0 in message type {type_id}: {source}")]
    Amf0 { type_id: u8, source: Amf0Error },
    #[error("command without a name")]
    CommandWithoutName,
    #[error("malformed aggregate message")]
    BadAggregate,
}

fn be32(b: &[u8], type_id: u8) -> Result<u32, MessageError> {
    match b.get(0..4) {
        Some(s) => Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
        None => Err(MessageError::TooShort {
            type_id,
            len: b.len(),
        }),
    }
}

impl Message {
    /// Interprets a reassembled message.
    pub fn parse(raw: &RawMessage) -> Result<Message, MessageError> {
        let p = &raw.payload[..];
        let t = raw.type_id;
        Ok(match t {
            type_id::SET_CHUNK_SIZE => Message::SetChunkSize(be32(p, t)? & 0x7fff_ffff),
            type_id::ABORT => Message::Abort(be32(p, t)?),
            type_id::ACK => Message::Ack(be32(p, t)?),
            type_id::WINDOW_ACK_SIZE => Message::WindowAckSize(be32(p, t)?),
            type_id::SET_PEER_BANDWIDTH => Message::SetPeerBandwidth {
                size: be32(p, t)?,
                limit_type: p.get(4).copied().unwrap_or(2),
            },
            type_id::USER_CONTROL => Message::UserControl(parse_user_control(p)?),
            type_id::AUDIO | type_id::VIDEO => Message::Media(vec![MediaTag {
                kind: if t == type_id::AUDIO {
                    TagKind::Audio
                } else {
                    TagKind::Video
                },
                timestamp: raw.timestamp,
                body: raw.payload.clone(),
            }]),
            type_id::DATA_AMF0 => {
                Message::Media(vec![script_tag(raw.timestamp, raw.payload.clone())?])
            }
            type_id::DATA_AMF3 => match p.first() {
                // An AMF3 data message whose first byte is 0 is AMF0 inside (what encoders send).
                Some(0) => Message::Media(vec![script_tag(raw.timestamp, raw.payload.slice(1..))?]),
                _ => Message::Ignored(t),
            },
            type_id::COMMAND_AMF0 => Message::Command {
                stream_id: raw.stream_id,
                command: parse_command(p, t)?,
            },
            type_id::COMMAND_AMF3 => Message::Command {
                stream_id: raw.stream_id,
                command: parse_command(p.get(1..).unwrap_or_default(), t)?,
            },
            type_id::AGGREGATE => Message::Media(parse_aggregate(raw)?),
            other => Message::Ignored(other),
        })
    }
}

fn parse_user_control(p: &[u8]) -> Result<UserControl, MessageError> {
    let t = type_id::USER_CONTROL;
    let Some(ev) = p.get(0..2) else {
        return Err(MessageError::TooShort {
            type_id: t,
            len: p.len(),
        });
    };
    let ev = u16::from_be_bytes([ev[0], ev[1]]);
    let rest = &p[2..];
    Ok(match ev {
        0 => UserControl::StreamBegin(be32(rest, t)?),
        1 => UserControl::StreamEof(be32(rest, t)?),
        2 => UserControl::StreamDry(be32(rest, t)?),
        3 => UserControl::SetBufferLength {
            stream_id: be32(rest, t)?,
            millis: be32(rest.get(4..).unwrap_or_default(), t)?,
        },
        4 => UserControl::StreamIsRecorded(be32(rest, t)?),
        6 => UserControl::PingRequest(be32(rest, t)?),
        7 => UserControl::PingResponse(be32(rest, t)?),
        other => UserControl::Other(other),
    })
}

fn parse_command(p: &[u8], type_id: u8) -> Result<Command, MessageError> {
    let mut values = amf0::decode_all(p)
        .map_err(|source| MessageError::Amf0 { type_id, source })?
        .into_iter();
    let name = match values.next() {
        Some(Amf0Value::String(s)) => s,
        _ => return Err(MessageError::CommandWithoutName),
    };
    let transaction_id = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
    let object = values.next().unwrap_or(Amf0Value::Null);
    Ok(Command {
        name,
        transaction_id,
        object,
        args: values.collect(),
    })
}

/// A data message as an FLV script tag: `@setDataFrame` (what publishers wrap metadata in) is
/// removed so the body starts with `onMetaData` as in a file. The body is sliced, not copied.
fn script_tag(timestamp: u32, body: Bytes) -> Result<MediaTag, MessageError> {
    let mut rest = &body[..];
    let first = Amf0Value::decode(&mut rest).map_err(|source| MessageError::Amf0 {
        type_id: type_id::DATA_AMF0,
        source,
    })?;
    let body = if first.as_str() == Some("@setDataFrame") {
        body.slice(body.len() - rest.len()..)
    } else {
        body
    };
    Ok(MediaTag {
        kind: TagKind::Script,
        timestamp,
        body,
    })
}

/// An aggregate message is a run of FLV tags (11-byte header, body, 4-byte back pointer); their
/// timestamps are relative to the first one and rebased onto the message timestamp.
fn parse_aggregate(raw: &RawMessage) -> Result<Vec<MediaTag>, MessageError> {
    let p = &raw.payload;
    let mut tags = Vec::new();
    let mut pos = 0usize;
    let mut base: Option<u32> = None;
    while pos < p.len() {
        let h = p.get(pos..pos + 11).ok_or(MessageError::BadAggregate)?;
        let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let ts = (u32::from(h[7]) << 24)
            | (u32::from(h[4]) << 16)
            | (u32::from(h[5]) << 8)
            | u32::from(h[6]);
        let start = pos + 11;
        let end = start.checked_add(len).ok_or(MessageError::BadAggregate)?;
        if end > p.len() {
            return Err(MessageError::BadAggregate);
        }
        let first = *base.get_or_insert(ts);
        let timestamp = raw.timestamp.wrapping_add(ts.wrapping_sub(first));
        let body = p.slice(start..end);
        match h[0] & 0x1f {
            type_id::AUDIO => tags.push(MediaTag {
                kind: TagKind::Audio,
                timestamp,
                body,
            }),
            type_id::VIDEO => tags.push(MediaTag {
                kind: TagKind::Video,
                timestamp,
                body,
            }),
            type_id::DATA_AMF0 => tags.push(script_tag(timestamp, body)?),
            _ => {}
        }
        pos = end + 4;
    }
    Ok(tags)
}

/// Builders for the messages a session sends. Each appends chunked bytes to `out`.
pub struct Writer<'a> {
    pub enc: &'a ChunkEncoder,
    pub out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn control(&mut self, type_id: u8, body: &[u8]) {
        self.enc.write(csid::CONTROL, 0, type_id, 0, body, self.out);
    }

    pub fn set_chunk_size(&mut self, size: u32) {
        self.control(type_id::SET_CHUNK_SIZE, &size.to_be_bytes());
    }

    pub fn ack(&mut self, sequence: u32) {
        self.control(type_id::ACK, &sequence.to_be_bytes());
    }

    pub fn window_ack_size(&mut self, size: u32) {
        self.control(type_id::WINDOW_ACK_SIZE, &size.to_be_bytes());
    }

    pub fn set_peer_bandwidth(&mut self, size: u32, limit_type: u8) {
        let mut b = size.to_be_bytes().to_vec();
        b.push(limit_type);
        self.control(type_id::SET_PEER_BANDWIDTH, &b);
    }

    pub fn user_control(&mut self, ev: UserControl) {
        let mut b = Vec::with_capacity(10);
        let (code, a, extra): (u16, u32, Option<u32>) = match ev {
            UserControl::StreamBegin(s) => (0, s, None),
            UserControl::StreamEof(s) => (1, s, None),
            UserControl::StreamDry(s) => (2, s, None),
            UserControl::SetBufferLength { stream_id, millis } => (3, stream_id, Some(millis)),
            UserControl::StreamIsRecorded(s) => (4, s, None),
            UserControl::PingRequest(t) => (6, t, None),
            UserControl::PingResponse(t) => (7, t, None),
            UserControl::Other(code) => (code, 0, None),
        };
        b.extend_from_slice(&code.to_be_bytes());
        b.extend_from_slice(&a.to_be_bytes());
        if let Some(x) = extra {
            b.extend_from_slice(&x.to_be_bytes());
        }
        self.control(type_id::USER_CONTROL, &b);
    }

    /// An AMF0 command: name, transaction id, then `values` (command object and arguments).
    pub fn command(
        &mut self,
        csid: u32,
        stream_id: u32,
        name: &str,
        transaction_id: f64,
        values: &[Amf0Value],
    ) {
        let mut b = Vec::new();
        Amf0Value::string(name).encode(&mut b);
        Amf0Value::Number(transaction_id).encode(&mut b);
        for v in values {
            v.encode(&mut b);
        }
        self.enc
            .write(csid, 0, type_id::COMMAND_AMF0, stream_id, &b, self.out);
    }

    /// An `onStatus` on a message stream.
    pub fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let info = Amf0Value::object([
            ("level", Amf0Value::string(level)),
            ("code", Amf0Value::string(code)),
            ("description", Amf0Value::string(description)),
        ]);
        self.command(
            csid::STREAM_COMMAND,
            stream_id,
            "onStatus",
            0.0,
            &[Amf0Value::Null, info],
        );
    }

    /// A media message (FLV tag body) on a message stream.
    pub fn media(&mut self, stream_id: u32, tag: &MediaTag) {
        let cs = match tag.kind {
            TagKind::Audio => csid::AUDIO,
            TagKind::Video => csid::VIDEO,
            TagKind::Script => csid::DATA,
        };
        self.enc.write(
            cs,
            tag.timestamp,
            tag.kind.type_id(),
            stream_id,
            &tag.body,
            self.out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(type_id: u8, payload: &[u8]) -> RawMessage {
        RawMessage {
            csid: 3,
            timestamp: 100,
            type_id,
            stream_id: 1,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn set_data_frame_is_unwrapped() {
        let body = amf0::encode_all(&[
            Amf0Value::string("@setDataFrame"),
            Amf0Value::string("onMetaData"),
            Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(640.0))]),
        ]);
        let Message::Media(tags) = Message::parse(&raw(type_id::DATA_AMF0, &body)).unwrap() else {
            panic!("not media");
        };
        let v = amf0::decode_all(&tags[0].body).unwrap();
        assert_eq!(v[0].as_str(), Some("onMetaData"));
        assert_eq!(tags[0].kind, TagKind::Script);
    }

    #[test]
    fn aggregate_is_split_and_rebased() {
        let mut p = Vec::new();
        for (ty, ts, body) in [(9u8, 1000u32, &b"vv"[..]), (8, 1023, &b"a"[..])] {
            p.push(ty);
            p.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            p.extend_from_slice(&ts.to_be_bytes()[1..]);
            p.push((ts >> 24) as u8);
            p.extend_from_slice(&[0, 0, 0]);
            p.extend_from_slice(body);
            p.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
        }
        let Message::Media(tags) = Message::parse(&raw(type_id::AGGREGATE, &p)).unwrap() else {
            panic!("not media");
        };
        assert_eq!(tags.len(), 2);
        assert_eq!((tags[0].timestamp, tags[1].timestamp), (100, 123));
        assert_eq!(&tags[1].body[..], b"a");
        assert_eq!(
            Message::parse(&raw(type_id::AGGREGATE, &p[..12])),
            Err(MessageError::BadAggregate)
        );
    }

    #[test]
    fn short_control_messages_are_errors() {
        assert!(matches!(
            Message::parse(&raw(type_id::SET_CHUNK_SIZE, &[0, 1])),
            Err(MessageError::TooShort { .. })
        ));
        assert_eq!(
            Message::parse(&raw(type_id::USER_CONTROL, &[0, 6, 0, 0, 0, 9])).unwrap(),
            Message::UserControl(UserControl::PingRequest(9))
        );
        assert_eq!(
            Message::parse(&raw(type_id::COMMAND_AMF0, &[0x05])),
            Err(MessageError::CommandWithoutName)
        );
    }
}
