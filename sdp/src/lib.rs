//! `rtm-sdp`: session descriptions for rtmlive in two forms.
//!
//! * [`sdp`]: a typed model of WebRTC SDP text with a lenient parser, a CRLF writer and
//!   the answer builder the edge uses ([`sdp::answer`]).
//! * [`minisdp`]: the one-datagram binary form players send to the media port, in the
//!   deployed v0 layout ([`minisdp::v0`], wire-compatible with the reference) and in
//!   rtmlive's extended TLV layout ([`minisdp::ext`]); see `docs/minisdp.md`.
//!
//! [`ExtensionUri`] names the RTP header extensions both forms (and the RTP layer) share.

pub mod extension;
pub mod minisdp;
pub mod sdp;

pub use extension::ExtensionUri;
pub use sdp::Sdp;
