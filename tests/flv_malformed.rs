//! Hostile input: mutated, truncated and random FLV never panics, yields typed errors, and
//! yields the same events and errors whatever the chunking.

use std::path::PathBuf;

use bytes::Bytes;
use proptest::prelude::*;
use rtmlive::media::flv::{DemuxEvent, FlvDemuxer, FlvError, TagDemuxer};
use rtmlive::media::{aac, amf0, h264, h265};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn is_fatal(e: &FlvError) -> bool {
    matches!(e, FlvError::BadSignature | FlvError::BadDataOffset(_))
}

/// Every event and error the demuxer produces for `data` fed in `chunk`-byte pieces, then the
/// end-of-stream verdict.
fn run(data: &[u8], chunk: usize) -> (Vec<Result<DemuxEvent, FlvError>>, Result<(), FlvError>) {
    let mut d = FlvDemuxer::new();
    let mut out = Vec::new();
    'feed: for c in data.chunks(chunk.max(1)) {
        d.push(c);
        loop {
            match d.poll() {
                Ok(Some(ev)) => out.push(Ok(ev)),
                Ok(None) => break,
                Err(e) => {
                    let fatal = is_fatal(&e);
                    out.push(Err(e));
                    if fatal {
                        break 'feed;
                    }
                }
            }
        }
    }
    (out, d.finish())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, xor: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    if data.is_empty() {
        return;
    }
    match m {
        Mutation::Flip { at, xor } => {
            let i = at % data.len();
            data[i] ^= xor;
        }
        Mutation::Truncate { at } => data.truncate(at % data.len()),
        Mutation::Insert { at, bytes } => {
            let i = at % data.len();
            data.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete { at, len } => {
            let i = at % data.len();
            let end = (i + len).min(data.len());
            data.drain(i..end);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_never_panic_and_chunking_does_not_matter(
        which in 0usize..3,
        mutations in proptest::collection::vec(mutation(), 1..6),
        chunk in 1usize..3000,
    ) {
        let name = ["h264_aac.flv", "h264_bframes_aac.flv", "hevc_enhanced_aac.flv"][which];
        // The first 24 KiB: headers, configs, a keyframe and some inter frames.
        let mut data = fixture(name);
        data.truncate(24 * 1024);
        for m in &mutations {
            apply(&mut data, m);
        }
        let whole = run(&data, data.len());
        let chunked = run(&data, chunk);
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn random_tag_bodies_never_panic(tag_type in prop_oneof![Just(8u8), Just(9u8), Just(18u8)], ts in any::<u32>(), body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut d = TagDemuxer::new();
        let _ = d.push_tag(tag_type, ts, Bytes::from(body));
        while d.poll().is_some() {}
    }

    #[test]
    fn codec_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..128)) {
        let b = Bytes::from(data.clone());
        let _ = h264::Sps::parse(&data);
        let _ = h264::Pps::parse(&data);
        let _ = h264::SliceHeader::parse(&data);
        let _ = h264::AvcConfig::parse(&b);
        let _ = h265::Sps::parse(&data);
        let _ = h265::Pps::parse(&data);
        let _ = h265::SliceHeader::parse(&data, |_| Some(h265::Pps { pps_id: 0, sps_id: 0, dependent_slice_segments_enabled: true, output_flag_present: true, num_extra_slice_header_bits: 7 }));
        let _ = h265::HevcConfig::parse(&b);
        let _ = aac::AudioSpecificConfig::parse(&data);
        let _ = aac::AdtsHeader::parse(&data);
        let _ = amf0::Decoder::new(&data).value();
    }

    #[test]
    fn mutated_sequence_headers_never_panic(at in 0usize..64, xor in 1u8..=255, cut in 0usize..80) {
        // Mutate the avcC / hvcC tags specifically: they drive the most parsing.
        for name in ["h264_aac.flv", "hevc_enhanced_aac.flv"] {
            let data = fixture(name);
            let mut d = FlvDemuxer::new();
            d.push(&data[..4096.min(data.len())]);
            let _ = d.poll();
            let mut t = TagDemuxer::new();
            // Video sequence header tag body starts after the script tag; find it by scanning.
            let pos = data.windows(2).position(|w| w == [0x17, 0x00] || w == [0x90, b'h']).unwrap_or(0);
            let mut body = data[pos..(pos + 80).min(data.len())].to_vec();
            if let Some(b) = body.get_mut(at) { *b ^= xor; }
            body.truncate(cut.max(1));
            let _ = t.push_tag(9, 0, Bytes::from(body));
            while t.poll().is_some() {}
        }
    }
}

#[test]
fn errors_are_typed() {
    let data = fixture("h264_aac.flv");
    // Corrupt a NAL length inside the first keyframe: a typed overrun, and demuxing goes on.
    let key = data
        .windows(5)
        .position(|w| w == [0x17, 0x01, 0, 0, 0])
        .unwrap();
    let mut bad = data.clone();
    bad[key + 5] = 0x7f;
    let (events, end) = run(&bad, 4096);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Err(FlvError::NaluOverrun { .. })))
    );
    assert!(
        events
            .iter()
            .filter(|e| matches!(e, Ok(DemuxEvent::Frame(_))))
            .count()
            > 50
    );
    assert_eq!(end, Ok(()));
    let (events, _) = run(b"FLX\x01\x05\0\0\0\x09\0\0\0\0", 3);
    assert_eq!(events, vec![Err(FlvError::BadSignature)]);
}
