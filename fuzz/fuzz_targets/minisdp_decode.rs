//! Any datagram: the miniSDP decoder must return Ok or a typed error, never panic, and
//! whatever it accepts must expand to SDP that our own parser accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtm_sdp::minisdp::{self, Packet};

fuzz_target!(|data: &[u8]| {
    let _ = minisdp::is_minisdp(data);
    if let Ok(Packet::Sdp(m)) = minisdp::decode(data) {
        let text = m.to_sdp().to_string();
        rtm_sdp::Sdp::parse(&text).expect("expansion of a decoded packet must parse");
    }
});
