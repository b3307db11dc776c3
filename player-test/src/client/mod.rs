//! The client transport, sans-IO: ICE (STUN), DTLS, SRTP and RTCP for one playback session.

pub mod dtls;
pub mod rtcp;
pub mod stun;
