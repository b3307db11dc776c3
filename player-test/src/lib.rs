//! player-test: the QA player and load generator for rtmlive.
//!
//! It behaves like a real RTM player (miniSDP/WHEP signaling, ICE, DTLS-SRTP, RTCP feedback,
//! no-drop jitter buffer, B-frame-aware playout) and measures what viewers feel: staged
//! first-frame time, stalls, latency, loss before and after recovery.
//!
//! Entry points: [`play`] (one session, blocking) / [`play_async`], [`load::run`] (many
//! sessions), [`relay::run`] (impairing relay). Protocol cores are sans-IO
//! ([`session::Session`], [`jitter::TrackBuffer`], [`client`]); the drivers are thin.

pub mod client;
#[cfg(feature = "decode")]
pub mod decode;
pub mod http;
pub mod impair;
pub mod jitter;
pub mod load;
pub mod measure;
pub mod nack;
pub mod packet;
pub mod picture;
pub mod play;
pub mod playout;
pub mod relay;
pub mod report;
pub mod rng;
pub mod rtp_in;
pub mod seq;
pub mod session;
pub mod signal;
pub mod sim;
pub mod url;

pub use play::{PlayOptions, play, play_async};
pub use report::{Report, SessionReport};
