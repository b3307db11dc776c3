//! A play client fed arbitrary server bytes (handshake included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmlive::rtmp::{ClientConfig, ClientSession};

fuzz_target!(|data: &[u8]| {
    let mut c = ClientSession::new(ClientConfig::new("live", "rtmp://h/live", "x"), 0, 1);
    let _ = c.take_output();
    let mut input = vec![3u8];
    input.extend_from_slice(&[0u8; 1536 * 2]);
    input.extend_from_slice(data);
    for piece in input.chunks(131) {
        if c.receive(piece).is_err() {
            return;
        }
        while c.poll_event().is_some() {}
        let _ = c.take_output();
    }
});
