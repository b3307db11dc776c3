//! AMF0 decoding, and re-encoding whatever decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmlive::rtmp::amf0;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = amf0::decode_all(data) {
        let bytes = amf0::encode_all(&values);
        let again = amf0::decode_all(&bytes).expect("our own encoding decodes");
        assert_eq!(again.len(), values.len());
    }
});
