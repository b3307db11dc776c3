//! The player-facing transport: one UDP port, demultiplexed per RFC 7983 into ICE-lite (STUN),
//! DTLS, SRTP/SRTCP; viewer sessions sharded over a few workers; batched sends.
