//! RTP: packetizers (once per stream), the RTM private header extensions, and depacketizers
//! (used by the player and by round-trip tests).
//!
//! * [`ext`]: the six RTM extensions and the generic RFC 8285 block (wire format in
//!   `docs/rtp-extensions.md`);
//! * [`RtpView`]: a parsed RTP packet with its RTM extension values;
//! * [`packetize`]: frames → [`MediaPacket`]s (H.264, H.265, AAC LATM/ADTS, Opus);
//! * [`depacketize`]: packets → frames, and grouping a packet sequence into frames;
//! * [`clock`]: the exact millisecond ↔ RTP clock mapping both directions share.

pub mod clock;
pub mod depacketize;
pub mod ext;
pub mod packet;
pub mod packetize;
pub mod view;

pub use ext::{ExtensionIds, FrameSeqRange, FrameType, RtmExtensions};
pub use packet::MediaPacket;
pub use packetize::{
    AacMode, AudioPacketizer, AudioPacketizerConfig, PacketizeError, VideoPacketizer,
    VideoPacketizerConfig,
};
pub use view::{RtpError, RtpView, extension_value_range};
