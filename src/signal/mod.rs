//! Signaling: miniSDP over UDP on the media port, WHEP and WHIP over HTTP, and stream tokens.
pub mod auth;
