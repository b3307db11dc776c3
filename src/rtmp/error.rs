//! The errors an RTMP session can end with.

use super::chunk::ChunkError;
use super::handshake::HandshakeError;
use super::message::MessageError;

/// Why an RTMP session cannot continue. Every variant closes the connection.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RtmpError {
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    #[error("message: {0}")]
    Message(#[from] MessageError),
    /// The peer did something out of order (media before publish, publish before connect...).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer answered a command with `_error` or an error-level `onStatus`.
    #[error("peer refused: {code}: {description}")]
    Refused { code: String, description: String },
}
