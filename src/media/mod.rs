//! Elementary-stream media: FLV demuxing and the codec parsing that packetization and SDP need.
//!
//! Everything here is sans-IO: bytes in (in whatever chunks the socket delivered), values out.

pub mod frame;

pub use frame::{AudioConfig, Codec, Frame, FrameData, FrameKind, TrackKind, VideoConfig};
