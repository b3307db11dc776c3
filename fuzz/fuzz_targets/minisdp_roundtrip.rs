//! Whatever decodes and re-encodes must decode to the same value (encode is a right
//! inverse of decode on the decoder's image).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtm_sdp::minisdp;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = minisdp::decode(data) else { return };
    let Ok(bytes) = minisdp::encode(&p) else { return };
    assert_eq!(minisdp::decode(&bytes).expect("re-encoded packet must decode"), p);
});
