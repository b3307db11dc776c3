//! A whole server session fed a valid handshake followed by arbitrary chunk-stream bytes
//! (publishes are accepted so media paths are reached).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmlive::rtmp::{ServerConfig, ServerEvent, ServerSession};

fuzz_target!(|data: &[u8]| {
    let mut s = ServerSession::new(ServerConfig::default(), 0, 1);
    let mut hs = vec![3u8];
    hs.extend_from_slice(&[0u8; 1536 * 2]);
    if s.receive(&hs).is_err() {
        return;
    }
    for piece in data.chunks(97) {
        if s.receive(piece).is_err() {
            return;
        }
        while let Some(ev) = s.poll_event() {
            if let ServerEvent::PublishRequest { .. } = ev
                && s.accept_publish().is_err()
            {
                return;
            }
        }
        let _ = s.take_output();
    }
});
