//! HTTP response head parsing and body de-chunking on arbitrary bytes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rtmlive::origin::http::{BodyDecoder, BodyFraming, parse_head};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    if let Ok(Some(head)) = parse_head(&mut buf)
        && let Ok(framing) = head.body_framing()
    {
        let mut d = BodyDecoder::new(framing);
        let _ = d.decode(&mut buf, &mut Vec::new());
    }
    let mut d = BodyDecoder::new(BodyFraming::Chunked);
    let mut buf = BytesMut::new();
    for piece in data.chunks(5) {
        buf.extend_from_slice(piece);
        if d.decode(&mut buf, &mut Vec::new()).is_err() {
            break;
        }
    }
});
