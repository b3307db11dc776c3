//! A sans-IO RTMP implementation: handshake, chunk streams, AMF0, and the NetConnection /
//! NetStream command flows of a publishing server and a playing client.
//!
//! Nothing here touches a socket or a clock: sessions are fed received bytes and return bytes to
//! send plus events. The tokio drivers live in `ingest::rtmp_server` and `origin::rtmp_play`.
//! Audio, video and script messages come out as [`MediaTag`]s, which are FLV tag bodies: the
//! FLV tag parser handles codecs, including Enhanced RTMP's ExVideoTagHeader.

pub mod amf0;
pub mod chunk;
pub mod client;
mod conn;
pub mod error;
pub mod handshake;
pub mod message;
pub mod server;

pub use client::{ClientConfig, ClientEvent, ClientSession};
pub use error::RtmpError;
pub use message::{MediaTag, TagKind};
pub use server::{ServerConfig, ServerEvent, ServerSession};
