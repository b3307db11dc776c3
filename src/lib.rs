//! rtmlive: an ultra-low-latency live-streaming edge.
//!
//! Data flows one way (see `docs/architecture.md`):
//!
//! ```text
//! origin/ingest ─▶ media (demux, codec parse) ─▶ rtp (packetize once) ─▶ hub (GOP + retransmit cache)
//!                                                        │ shared `Bytes`
//!                 signal (miniSDP/WHEP) ─▶ transport (ICE-lite, DTLS, SRTP, RTCP) ─▶ batched UDP send
//! ```
//!
//! Protocol cores are sans-IO: plain structs fed bytes and time, returning bytes and events.
//! The I/O drivers (sockets, tasks) are thin wrappers around them.

pub mod config;
pub mod hub;
pub mod ingest;
pub mod media;
pub mod ops;
pub mod origin;
pub mod rtmp;
pub mod rtp;
pub mod server;
pub mod signal;
pub mod transport;
