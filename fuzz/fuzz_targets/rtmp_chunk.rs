//! Chunk stream reassembly and message parsing on arbitrary bytes, split at arbitrary points,
//! with a peer-chosen chunk size: must never panic or allocate beyond the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmlive::rtmp::chunk::{ChunkDecoder, ChunkLimits};
use rtmlive::rtmp::message::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let mut d = ChunkDecoder::new(ChunkLimits {
        max_message_len: 1 << 20,
        ..ChunkLimits::default()
    });
    let _ = d.set_chunk_size(u32::from(split).max(1) * 7);
    let (a, b) = rest.split_at(usize::from(split).min(rest.len()));
    for part in [a, b] {
        d.push(part);
        while let Ok(Some(raw)) = d.poll() {
            if let Ok(Message::SetChunkSize(n)) = Message::parse(&raw) {
                let _ = d.set_chunk_size(n);
            }
        }
    }
});
