//! miniSDP: a WebRTC offer/answer in one UDP datagram, sent to the media port.
//!
//! Two wire versions share one decoded form ([`MiniSdp`], [`StopPacket`]):
//! [`v0`] (the deployed reference layout, version byte 0) and [`ext`] (rtmlive's TLV
//! layout, version byte [`EXT_VERSION`]). [`decode`] dispatches on the header; [`encode`]
//! writes the version recorded in the value, so a server that answers with the decoded
//! offer's `version` answers in the client's version.
//!
//! [`MiniSdp::to_sdp`] expands to full SDP for a standard WebRTC stack and
//! [`MiniSdp::from_sdp`] compresses; `docs/minisdp.md` lists what a round trip loses.

mod answer;
mod compress;
mod error;
mod expand;
pub mod ext;
mod model;
mod offer;
pub mod v0;
mod wire;

pub use answer::{MiniAnswerError, ReplyAttrs, answer_offer};
pub use compress::{CodecSet, CompressOptions};
pub use error::{CompressError, DecodeError, EncodeError};
pub use model::*;
pub use offer::{AudioCodecs, PullOffer};

/// Version byte of rtmlive's extended format: ASCII `R`. Version 1 is left to the
/// published v1 design, which nobody implements.
pub const EXT_VERSION: u8 = 0x52;
/// The URL scheme both versions strip on the wire.
pub const URL_PREFIX: &str = "webrtc://";
/// Decoders refuse datagrams larger than this (no valid packet of either version is).
pub const MAX_DATAGRAM: usize = 1500;

const SDP_MAGIC: [u8; 4] = [0xFF, b'S', b'D', b'P'];
const STP_MAGIC: [u8; 4] = [0xFF, b'S', b'T', b'P'];

/// True if the datagram starts like a miniSDP packet (`0xFF` never starts STUN, DTLS or
/// RTP/RTCP, RFC 7983), so the media-port demultiplexer can route it here.
pub fn is_minisdp(buf: &[u8]) -> bool {
    buf.len() >= 4 && (buf[..4] == SDP_MAGIC || buf[..4] == STP_MAGIC)
}

/// Decodes any miniSDP packet: offer/answer/error ("SDP") or stop ("STP"), v0 or extended.
pub fn decode(buf: &[u8]) -> Result<Packet, DecodeError> {
    if buf.len() < 5 {
        return Err(DecodeError::NotMiniSdp);
    }
    let version = buf[4];
    if buf[..4] == SDP_MAGIC {
        match version {
            0 => v0::decode(buf).map(Packet::Sdp),
            EXT_VERSION => ext::decode(buf).map(Packet::Sdp),
            v => Err(DecodeError::UnsupportedVersion(v)),
        }
    } else if buf[..4] == STP_MAGIC {
        match version {
            0 => v0::decode_stop(buf).map(Packet::Stop),
            EXT_VERSION => ext::decode_stop(buf).map(Packet::Stop),
            v => Err(DecodeError::UnsupportedVersion(v)),
        }
    } else {
        Err(DecodeError::NotMiniSdp)
    }
}

/// Encodes a packet in the version it records.
pub fn encode(p: &Packet) -> Result<Vec<u8>, EncodeError> {
    match p {
        Packet::Sdp(m) => m.encode(),
        Packet::Stop(s) => s.encode(),
    }
}

impl MiniSdp {
    /// Encodes in [`Self::version`].
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        match self.version {
            WireVersion::V0 => v0::encode(self),
            WireVersion::Ext => ext::encode(self),
        }
    }

    /// Decodes an "SDP" packet of either version (a stop packet is an error here).
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        match decode(buf)? {
            Packet::Sdp(m) => Ok(m),
            Packet::Stop(_) => Err(DecodeError::NotMiniSdp),
        }
    }
}

impl StopPacket {
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        match self.version {
            WireVersion::V0 => v0::encode_stop(self),
            WireVersion::Ext => ext::encode_stop(self),
        }
    }
}
