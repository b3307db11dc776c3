//! Elementary-stream media: FLV demuxing and muxing and the codec parsing that packetization
//! and SDP need.
//!
//! Everything here is sans-IO: bytes in (in whatever chunks the socket delivered), values out.

pub mod aac;
pub mod amf0;
pub mod bits;
pub mod flv;
pub mod flv_mux;
pub mod frame;
pub mod h264;
pub mod h265;

pub use flv::{DemuxEvent, FlvDemuxer, FlvError, TagDemuxer};
pub use frame::{AudioConfig, Codec, Frame, FrameData, FrameKind, TrackKind, VideoConfig};
