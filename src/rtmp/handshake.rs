//! The RTMP handshake (simple form): C0/C1/C2 and S0/S1/S2.
//!
//! Clients such as ffmpeg and OBS may send the "complex" (digest) variant of C1. A server that
//! answers with a zero version field in S1 and echoes C1 as S2 is accepted by them, so the
//! digest is never computed: the simple handshake interoperates with both forms.

use bytes::{Buf, BytesMut};

/// Size of C1/C2/S1/S2.
pub const PACKET_SIZE: usize = 1536;
/// The only RTMP version spoken (plain, unencrypted RTMP).
pub const VERSION: u8 = 3;

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("unsupported RTMP version {0} (only 3, unencrypted, is spoken)")]
    UnsupportedVersion(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Server: waiting for C0 + C1.
    AwaitC0C1,
    /// Server: S0-S2 sent, waiting for C2.
    AwaitC2,
    /// Client: C0 + C1 sent, waiting for S0 + S1 + S2.
    AwaitS0S1S2,
    Done,
}

/// One side of a handshake: feed it the bytes received; it writes what to send.
#[derive(Debug)]
pub struct Handshake {
    state: State,
    epoch: u32,
    seed: u64,
}

impl Handshake {
    /// A server handshake. `epoch` is the time field of S1; `seed` fills its random part (the
    /// handshake random is not a security feature, so any value will do).
    pub fn server(epoch: u32, seed: u64) -> Handshake {
        Handshake {
            state: State::AwaitC0C1,
            epoch,
            seed,
        }
    }

    /// A client handshake; appends C0 + C1 to `out`.
    pub fn client(epoch: u32, seed: u64, out: &mut Vec<u8>) -> Handshake {
        let mut hs = Handshake {
            state: State::AwaitS0S1S2,
            epoch,
            seed,
        };
        out.push(VERSION);
        hs.write_own_packet(out);
        hs
    }

    /// Whether the handshake is complete (chunk streams follow).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes handshake bytes from `input` (leaving any chunk-stream bytes that follow), and
    /// appends the response to `out`. Returns whether the handshake is now done.
    pub fn process(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<bool, HandshakeError> {
        loop {
            match self.state {
                State::AwaitC0C1 => {
                    if input.len() < 1 + PACKET_SIZE {
                        return Ok(false);
                    }
                    let version = input[0];
                    if version != VERSION {
                        return Err(HandshakeError::UnsupportedVersion(version));
                    }
                    let c1 = input.split_to(1 + PACKET_SIZE).split_off(1);
                    out.push(VERSION);
                    self.write_own_packet(out);
                    // S2 echoes C1: its time, then our time, then its random bytes.
                    out.extend_from_slice(&c1[..4]);
                    out.extend_from_slice(&self.epoch.to_be_bytes());
                    out.extend_from_slice(&c1[8..]);
                    self.state = State::AwaitC2;
                }
                State::AwaitC2 => {
                    if input.len() < PACKET_SIZE {
                        return Ok(false);
                    }
                    // C2 should echo S1; real clients vary, and nothing depends on it.
                    input.advance(PACKET_SIZE);
                    self.state = State::Done;
                }
                State::AwaitS0S1S2 => {
                    if input.len() < 1 + 2 * PACKET_SIZE {
                        return Ok(false);
                    }
                    let version = input[0];
                    if version != VERSION {
                        return Err(HandshakeError::UnsupportedVersion(version));
                    }
                    let s1 = input.split_to(1 + 2 * PACKET_SIZE).split_off(1);
                    // C2 echoes S1 exactly (ffmpeg's server compares the random part).
                    out.extend_from_slice(&s1[..PACKET_SIZE]);
                    self.state = State::Done;
                }
                State::Done => return Ok(true),
            }
        }
    }

    /// C1 or S1: time, four zero bytes (the "simple" form), 1528 filler bytes.
    fn write_own_packet(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        let mut x = self.seed | 1;
        for _ in 0..(PACKET_SIZE - 8) / 8 {
            // xorshift64: cheap filler that is not all zeros.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_complete_against_each_other() {
        let mut c2s = Vec::new();
        let mut client = Handshake::client(0, 7, &mut c2s);
        let mut server = Handshake::server(100, 9);
        let mut s2c = Vec::new();
        let mut sin = BytesMut::from(&c2s[..]);
        assert!(!server.process(&mut sin, &mut s2c).unwrap());
        assert_eq!(s2c.len(), 1 + 2 * PACKET_SIZE);
        // S2 echoes C1's random part.
        assert_eq!(&s2c[1 + PACKET_SIZE + 8..], &c2s[1 + 8..]);
        let mut cin = BytesMut::from(&s2c[..]);
        // Chunk bytes right behind S2 must be left in place.
        cin.extend_from_slice(b"tail");
        let mut c2 = Vec::new();
        assert!(client.process(&mut cin, &mut c2).unwrap());
        assert_eq!(&cin[..], b"tail");
        assert_eq!(&c2[..], &s2c[1..1 + PACKET_SIZE]);
        let mut sin = BytesMut::from(&c2[..]);
        assert!(server.process(&mut sin, &mut Vec::new()).unwrap());
    }

    #[test]
    fn byte_at_a_time_and_bad_version() {
        let mut c = Vec::new();
        Handshake::client(0, 1, &mut c);
        let mut server = Handshake::server(0, 2);
        let mut input = BytesMut::new();
        let mut out = Vec::new();
        for b in &c {
            input.extend_from_slice(&[*b]);
            server.process(&mut input, &mut out).unwrap();
        }
        assert_eq!(out.len(), 1 + 2 * PACKET_SIZE);
        let mut bad = BytesMut::from(&[6u8; 1537][..]);
        assert_eq!(
            Handshake::server(0, 0).process(&mut bad, &mut Vec::new()),
            Err(HandshakeError::UnsupportedVersion(6))
        );
    }
}
