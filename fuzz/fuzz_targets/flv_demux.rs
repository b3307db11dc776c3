//! Fuzzes the FLV demuxer: the first byte picks a chunk size, the rest is the stream. The
//! demuxer must never panic, and must produce the same events and errors whole or chunked.
//! Tag bodies also go straight into the tag-level (RTMP) demuxer.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rtmlive::media::flv::{DemuxEvent, FlvDemuxer, FlvError, TagDemuxer};

fn run(data: &[u8], chunk: usize) -> Vec<Result<DemuxEvent, FlvError>> {
    let mut d = FlvDemuxer::new();
    let mut out = Vec::new();
    'feed: for c in data.chunks(chunk) {
        d.push(c);
        loop {
            match d.poll() {
                Ok(Some(ev)) => out.push(Ok(ev)),
                Ok(None) => break,
                Err(e) => {
                    let fatal = matches!(e, FlvError::BadSignature | FlvError::BadDataOffset(_));
                    out.push(Err(e));
                    if fatal {
                        break 'feed;
                    }
                }
            }
        }
    }
    let _ = d.finish();
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, rest)) = input.split_first() else {
        return;
    };
    let chunk = usize::from(first) + 1;
    // Prefix a valid header half of the time so the fuzzer reaches tag parsing quickly.
    let mut data = Vec::with_capacity(rest.len() + 13);
    if first & 1 == 1 {
        data.extend_from_slice(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
    }
    data.extend_from_slice(rest);
    let whole = run(&data, data.len().max(1));
    let chunked = run(&data, chunk);
    assert_eq!(whole, chunked, "chunking changed the result");

    if let [tag_type, a, b, body @ ..] = rest {
        let mut t = TagDemuxer::new();
        let _ = t.push_tag(
            8 + tag_type % 11,
            u32::from_be_bytes([0, 0, *a, *b]),
            Bytes::copy_from_slice(body),
        );
        while t.poll().is_some() {}
    }
});
