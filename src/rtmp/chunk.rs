//! The RTMP chunk stream: messages split into chunks of at most the negotiated chunk size,
//! interleaved across chunk stream ids, with compressed headers (formats 0-3).
//!
//! [`ChunkDecoder`] reassembles messages from arbitrary byte slices; [`ChunkEncoder`] splits
//! messages into chunks. Both are sans-IO. The decoder bounds its memory: a message longer
//! than [`ChunkLimits::max_message_len`] or more than [`ChunkLimits::max_chunk_streams`]
//! concurrent chunk streams are errors, and a message buffer grows only as its bytes arrive.

use std::collections::HashMap;

use bytes::{Buf, Bytes, BytesMut};

/// Chunk size every connection starts with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// The timestamp field value that says "a 32-bit extended timestamp follows".
const EXTENDED: u32 = 0x00ff_ffff;

/// Bounds a decoder enforces on what its peer may make it hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest message accepted (video keyframes of 4K streams reach a few MiB).
    pub max_message_len: u32,
    /// Largest chunk size a peer may set.
    pub max_chunk_size: u32,
    /// Most chunk stream ids tracked at once (real peers use fewer than ten).
    pub max_chunk_streams: usize,
    /// Most bytes of incomplete messages held across all chunk streams (without it, a peer
    /// could start `max_chunk_streams` messages of `max_message_len` each).
    pub max_pending_bytes: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_message_len: 16 * 1024 * 1024,
            max_chunk_size: 16 * 1024 * 1024,
            max_chunk_streams: 64,
            max_pending_bytes: 32 * 1024 * 1024,
        }
    }
}

/// A protocol violation in the chunk stream; the connection cannot continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("message of {len} bytes exceeds the limit of {max}")]
    MessageTooLong { len: u32, max: u32 },
    #[error("chunk size {0} is out of range")]
    InvalidChunkSize(u32),
    #[error("more than {0} chunk streams in use")]
    TooManyChunkStreams(usize),
    #[error("chunk of format {fmt} on chunk stream {csid} without a preceding full header")]
    MissingHeader { csid: u32, fmt: u8 },
    #[error("new message header on chunk stream {0} while a message is incomplete")]
    HeaderMidMessage(u32),
    #[error("more than {0} bytes of incomplete messages")]
    TooMuchPending(usize),
}

/// A complete message reassembled from chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub csid: u32,
    /// Absolute timestamp in milliseconds (32-bit, wrapping as RTMP timestamps do).
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

#[derive(Debug, Default)]
struct InStream {
    timestamp: u32,
    /// The last timestamp field (absolute for format 0, delta otherwise): format 3 chunks that
    /// start a message reuse it as their delta.
    ts_field: u32,
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The message being assembled; `None` between messages.
    partial: Option<BytesMut>,
}

/// Reassembles RTMP messages from a byte stream.
#[derive(Debug)]
pub struct ChunkDecoder {
    buf: BytesMut,
    chunk_size: u32,
    streams: HashMap<u32, InStream>,
    limits: ChunkLimits,
    /// Bytes held in incomplete messages.
    pending: usize,
}

impl ChunkDecoder {
    pub fn new(limits: ChunkLimits) -> ChunkDecoder {
        ChunkDecoder {
            buf: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            limits,
            pending: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Applies the peer's Set Chunk Size (takes effect from the next chunk).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > self.limits.max_chunk_size || size > 0x7fff_ffff {
            return Err(ChunkError::InvalidChunkSize(size));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Applies the peer's Abort Message: drops the partial message on `csid`.
    pub fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.get_mut(&csid)
            && let Some(p) = s.partial.take()
        {
            self.pending -= p.len();
        }
    }

    /// Parses buffered chunks until a message completes (`Some`) or more bytes are needed.
    pub fn poll(&mut self) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            match self.next_chunk()? {
                Step::NeedMore => return Ok(None),
                Step::Message(m) => return Ok(Some(m)),
                Step::Progress => continue,
            }
        }
    }

    fn next_chunk(&mut self) -> Result<Step, ChunkError> {
        let b = &self.buf[..];
        let Some(&first) = b.first() else {
            return Ok(Step::NeedMore);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (u32::from(x) + 64, 2),
                None => return Ok(Step::NeedMore),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&lo), Some(&hi)) => (u32::from(lo) + u32::from(hi) * 256 + 64, 3),
                _ => return Ok(Step::NeedMore),
            },
            n => (u32::from(n), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(h) = b.get(pos..pos + header_len) else {
            return Ok(Step::NeedMore);
        };
        pos += header_len;
        let u24 = |s: &[u8]| u32::from(s[0]) << 16 | u32::from(s[1]) << 8 | u32::from(s[2]);

        if !self.streams.contains_key(&csid) {
            if fmt != 0 {
                return Err(ChunkError::MissingHeader { csid, fmt });
            }
            if self.streams.len() >= self.limits.max_chunk_streams {
                return Err(ChunkError::TooManyChunkStreams(
                    self.limits.max_chunk_streams,
                ));
            }
        }
        let prev = self.streams.get(&csid);
        let mid_message = prev.is_some_and(|s| s.partial.is_some());
        if fmt != 3 && mid_message {
            return Err(ChunkError::HeaderMidMessage(csid));
        }

        // Decode the header fields without committing anything yet.
        let ts_raw = if fmt < 3 { u24(&h[0..3]) } else { 0 };
        let extended = if fmt < 3 {
            ts_raw == EXTENDED
        } else {
            prev.is_some_and(|s| s.extended)
        };
        let ext_value = if extended {
            let Some(e) = b.get(pos..pos + 4) else {
                return Ok(Step::NeedMore);
            };
            pos += 4;
            Some(u32::from_be_bytes([e[0], e[1], e[2], e[3]]))
        } else {
            None
        };
        let (length, type_id, stream_id) = match (fmt, prev) {
            (0, _) => (
                u24(&h[3..6]),
                h[6],
                u32::from_le_bytes([h[7], h[8], h[9], h[10]]),
            ),
            (1, Some(p)) => (u24(&h[3..6]), h[6], p.stream_id),
            (_, Some(p)) => (p.length, p.type_id, p.stream_id),
            (_, None) => return Err(ChunkError::MissingHeader { csid, fmt }),
        };
        if length > self.limits.max_message_len {
            return Err(ChunkError::MessageTooLong {
                len: length,
                max: self.limits.max_message_len,
            });
        }
        let have = prev
            .and_then(|p| p.partial.as_ref())
            .map_or(0, |p| p.len() as u32);
        let piece = (length - have).min(self.chunk_size) as usize;
        if b.len() < pos + piece {
            return Ok(Step::NeedMore);
        }

        // Commit: the whole chunk is buffered.
        let s = self.streams.entry(csid).or_default();
        if !mid_message {
            let field = ext_value.unwrap_or(ts_raw);
            match fmt {
                0 => {
                    s.timestamp = field;
                    s.ts_field = field;
                }
                1 | 2 => {
                    s.timestamp = s.timestamp.wrapping_add(field);
                    s.ts_field = field;
                }
                _ => {
                    let delta = ext_value.unwrap_or(s.ts_field);
                    s.timestamp = s.timestamp.wrapping_add(delta);
                }
            }
            if fmt < 3 {
                s.extended = extended;
            }
            s.length = length;
            s.type_id = type_id;
            s.stream_id = stream_id;
            s.partial = Some(BytesMut::new());
        }
        self.buf.advance(pos);
        let chunk = self.buf.split_to(piece);
        let partial = s.partial.get_or_insert_with(BytesMut::new);
        if partial.is_empty() && piece as u32 == length {
            // Whole message in one chunk: hand out the slice without copying.
            s.partial = None;
            return Ok(Step::Message(RawMessage {
                csid,
                timestamp: s.timestamp,
                type_id: s.type_id,
                stream_id: s.stream_id,
                payload: chunk.freeze(),
            }));
        }
        if self.pending + chunk.len() > self.limits.max_pending_bytes {
            return Err(ChunkError::TooMuchPending(self.limits.max_pending_bytes));
        }
        partial.extend_from_slice(&chunk);
        self.pending += chunk.len();
        if partial.len() as u32 == s.length {
            let payload = s.partial.take().unwrap_or_default().freeze();
            self.pending -= payload.len();
            return Ok(Step::Message(RawMessage {
                csid,
                timestamp: s.timestamp,
                type_id: s.type_id,
                stream_id: s.stream_id,
                payload,
            }));
        }
        Ok(Step::Progress)
    }
}

enum Step {
    NeedMore,
    Progress,
    Message(RawMessage),
}

/// Splits outgoing messages into chunks. Every message starts with a format-0 header (simple and
/// always valid); continuation chunks use format 3.
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: u32,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

impl ChunkEncoder {
    /// Changes the outgoing chunk size. The caller must send the Set Chunk Size message (at the
    /// old size) before any message written at the new one.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, 0x7fff_ffff);
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Appends `payload` as one message, chunked, to `out`.
    pub fn write(
        &self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let extended = timestamp >= EXTENDED;
        let ts_field = if extended { EXTENDED } else { timestamp };
        // Payloads come from our own code; lengths above 24 bits cannot be framed and are cut.
        let len = payload.len().min(0x00ff_ffff);
        let payload = &payload[..len];
        write_basic_header(0, csid, out);
        out.extend_from_slice(&ts_field.to_be_bytes()[1..]);
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.push(type_id);
        out.extend_from_slice(&stream_id.to_le_bytes());
        if extended {
            out.extend_from_slice(&timestamp.to_be_bytes());
        }
        let mut chunks = payload.chunks(self.chunk_size as usize);
        if let Some(first) = chunks.next() {
            out.extend_from_slice(first);
        }
        for c in chunks {
            write_basic_header(3, csid, out);
            if extended {
                out.extend_from_slice(&timestamp.to_be_bytes());
            }
            out.extend_from_slice(c);
        }
    }
}

fn write_basic_header(fmt: u8, csid: u32, out: &mut Vec<u8>) {
    match csid {
        2..=63 => out.push(fmt << 6 | csid as u8),
        64..=319 => out.extend_from_slice(&[fmt << 6, (csid - 64) as u8]),
        _ => {
            let v = csid.clamp(64, 65599) - 64;
            out.extend_from_slice(&[fmt << 6 | 1, (v & 0xff) as u8, (v >> 8) as u8]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(d: &mut ChunkDecoder) -> Vec<RawMessage> {
        let mut v = Vec::new();
        while let Some(m) = d.poll().unwrap() {
            v.push(m);
        }
        v
    }

    #[test]
    fn encoder_output_decodes_across_chunk_sizes_and_csids() {
        for (size, csid) in [(128u32, 3u32), (4096, 70), (1, 400), (60000, 6)] {
            let mut enc = ChunkEncoder::default();
            enc.set_chunk_size(size);
            let mut dec = ChunkDecoder::new(ChunkLimits::default());
            dec.set_chunk_size(size).unwrap();
            let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
            let mut out = Vec::new();
            enc.write(csid, 0x0100_0000, 9, 1, &payload, &mut out);
            enc.write(csid, 5, 8, 1, &payload[..10], &mut out);
            enc.write(csid, 6, 8, 1, &[], &mut out);
            // Feed one byte at a time.
            let mut got = Vec::new();
            for b in &out {
                dec.push(&[*b]);
                got.extend(decode_all(&mut dec));
            }
            assert_eq!(got.len(), 3, "size {size}");
            assert_eq!(got[0].timestamp, 0x0100_0000);
            assert_eq!(&got[0].payload[..], &payload[..]);
            assert_eq!((got[1].timestamp, got[1].type_id), (5, 8));
            assert!(got[2].payload.is_empty());
            assert_eq!(got[0].csid, csid);
        }
    }

    #[test]
    fn compressed_headers_accumulate_deltas() {
        // fmt0 ts=1000 len=2 type 8 sid 1; fmt2 delta 20; fmt3 (reuses delta 20); fmt1 delta 5 len 1.
        let mut b = vec![0x04, 0, 0x03, 0xe8, 0, 0, 2, 8, 1, 0, 0, 0, 0xaa, 0xbb];
        b.extend_from_slice(&[0x84, 0, 0, 20, 0xcc, 0xdd]);
        b.extend_from_slice(&[0xc4, 0xee, 0xff]);
        b.extend_from_slice(&[0x44, 0, 0, 5, 0, 0, 1, 9, 0x11]);
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.push(&b);
        let m = decode_all(&mut d);
        let ts: Vec<u32> = m.iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, vec![1000, 1020, 1040, 1045]);
        assert_eq!(m[3].type_id, 9);
        assert_eq!(m[3].stream_id, 1);
    }

    #[test]
    fn interleaved_chunk_streams_and_abort() {
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.set_chunk_size(2).unwrap();
        // csid 4: 4-byte message, first chunk; csid 5: 2-byte message; csid 4 continues.
        d.push(&[0x04, 0, 0, 1, 0, 0, 4, 9, 1, 0, 0, 0, 1, 2]);
        d.push(&[0x05, 0, 0, 2, 0, 0, 2, 8, 1, 0, 0, 0, 7, 8]);
        let m = decode_all(&mut d);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].csid, 5);
        d.push(&[0xc4, 3, 4]);
        let m = decode_all(&mut d);
        assert_eq!(&m[0].payload[..], &[1, 2, 3, 4]);
        // Abort drops a partial message; the next fmt0 then starts cleanly.
        d.push(&[0x04, 0, 0, 1, 0, 0, 4, 9, 1, 0, 0, 0, 1, 2]);
        assert!(decode_all(&mut d).is_empty());
        d.abort(4);
        d.push(&[0x04, 0, 0, 1, 0, 0, 2, 9, 1, 0, 0, 0, 5, 6]);
        assert_eq!(&decode_all(&mut d)[0].payload[..], &[5, 6]);
    }

    #[test]
    fn violations_are_typed_errors() {
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.push(&[0x43, 0, 0, 0, 0, 0, 1, 8]);
        assert_eq!(d.poll(), Err(ChunkError::MissingHeader { csid: 3, fmt: 1 }));
        let mut d = ChunkDecoder::new(ChunkLimits {
            max_message_len: 100,
            ..ChunkLimits::default()
        });
        d.push(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 8, 0, 0, 0, 0]);
        assert_eq!(
            d.poll(),
            Err(ChunkError::MessageTooLong {
                len: 0xff_ffff,
                max: 100
            })
        );
        assert!(d.set_chunk_size(0).is_err());
        let mut d = ChunkDecoder::new(ChunkLimits {
            max_chunk_streams: 2,
            ..ChunkLimits::default()
        });
        for csid in 3..6u8 {
            d.push(&[csid, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0]);
        }
        assert!(d.poll().unwrap().is_some());
        assert!(d.poll().unwrap().is_some());
        assert_eq!(d.poll(), Err(ChunkError::TooManyChunkStreams(2)));
        // Many half-sent messages add up to the pending bound.
        let mut d = ChunkDecoder::new(ChunkLimits {
            max_pending_bytes: 300,
            ..ChunkLimits::default()
        });
        let mut err = None;
        for csid in 3..10u8 {
            d.push(&[csid, 0, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0]);
            d.push(&[0u8; 128]);
            if let Err(e) = d.poll() {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ChunkError::TooMuchPending(300)));
    }

    proptest! {
        #[test]
        fn decoder_never_panics(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16), size in 1u32..300) {
            let mut d = ChunkDecoder::new(ChunkLimits { max_message_len: 4096, ..ChunkLimits::default() });
            let _ = d.set_chunk_size(size);
            for c in chunks {
                d.push(&c);
                while let Ok(Some(_)) = d.poll() {}
            }
        }

        #[test]
        fn round_trip(msgs in prop::collection::vec((2u32..400, any::<u32>(), 1u8..30, any::<u32>(), prop::collection::vec(any::<u8>(), 0..600)), 1..8), size in 1u32..1000) {
            let mut enc = ChunkEncoder::default();
            enc.set_chunk_size(size);
            let mut out = Vec::new();
            for (csid, ts, ty, sid, p) in &msgs {
                enc.write(*csid, *ts, *ty, *sid, p, &mut out);
            }
            let mut d = ChunkDecoder::new(ChunkLimits::default());
            d.set_chunk_size(size).unwrap();
            d.push(&out);
            let got = decode_all(&mut d);
            prop_assert_eq!(got.len(), msgs.len());
            for (g, (csid, ts, ty, sid, p)) in got.iter().zip(&msgs) {
                prop_assert_eq!((g.csid, g.timestamp, g.type_id, g.stream_id, &g.payload[..]), (*csid, *ts, *ty, *sid, &p[..]));
            }
        }
    }
}
