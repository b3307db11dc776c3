//! The player-facing transport: one UDP port, demultiplexed per RFC 7983 into ICE-lite (STUN),
//! DTLS, SRTP/SRTCP; viewer sessions sharded over a few workers; batched sends.
//!
//! Protocol cores ([`ice_lite`], [`dtls`], [`srtp`], [`rtcp`], [`session`]) are sans-IO; the
//! [`shard`] owns many sessions and routes datagrams to them; [`socket`] is the thin I/O driver.
//! See `docs/transport.md`.

pub mod amplification;
pub mod demux;
pub mod dtls;
pub mod ext_policy;
pub mod ice_lite;
pub mod receiver;
pub mod rtcp;
pub mod session;
pub mod shard;
pub mod socket;
pub mod srtp;
pub mod stun;
pub mod timers;

pub use demux::{DatagramKind, classify};
pub use dtls::{DtlsIdentity, Fingerprint};
pub use ext_policy::ExtensionPolicy;
pub use session::{
    CloseReason, ReceiveParams, ReceiveTrack, Received, SessionError, SessionEvent, SessionParams,
    SessionStats, TrackParams, Transmit, ViewerSession,
};
pub use shard::{
    Lobby, MediaIngest, MediaSource, Registrar, SessionId, SessionMedia, Shard, ShardConfig,
    SignalingHandler,
};
