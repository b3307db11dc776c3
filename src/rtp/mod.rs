//! RTP: packetizers (once per stream), the RTM private header extensions, and depacketizers
//! (used by the player and by round-trip tests).

pub mod packet;

pub use packet::MediaPacket;
