//! SDP text: parse must not panic; parse(write(x)) == x for everything it accepts; and
//! compression to both miniSDP versions must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtm_sdp::Sdp;
use rtm_sdp::minisdp::{CompressOptions, MiniSdp, SdpKind, WireVersion};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(sdp) = Sdp::parse(text) else { return };
    let again = Sdp::parse(&sdp.to_string()).expect("written SDP must parse");
    assert_eq!(again, sdp);
    for v in [WireVersion::V0, WireVersion::Ext] {
        let opts = CompressOptions::new(v, SdpKind::Offer, "webrtc://fuzz/app/stream");
        if let Ok(m) = MiniSdp::from_sdp(&sdp, &opts) {
            let _ = m.encode();
        }
    }
});
