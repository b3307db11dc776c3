//! Fuzzes the RTM extension parsers, the RTP packet parser and the depacketizers: arbitrary
//! bytes must give a value or a typed error, never a panic or an unbounded allocation.
//!
//! Run (bounded): `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run rtp_ext -- -max_total_time=30`
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rtmlive::media::Codec;
use rtmlive::rtp::depacketize::{Depacketizer, DepacketizerConfig, FrameAssembler};
use rtmlive::rtp::ext::{self, Elements, ExtensionIds, RtmExtensions};
use rtmlive::rtp::{AacMode, RtpView};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let small = ExtensionIds::from_extmap(ext::RtmExt::ALL.iter().enumerate().map(|(i, e)| (i as u8 + 1, e.uri())));
    let ids = if selector & 1 == 0 { ExtensionIds::default() } else { small.unwrap_or_default() };

    // The generic block parser and the typed value parsers, in both forms.
    for profile in [0xBEDE, 0x1000] {
        if let Ok(els) = Elements::new(profile, rest) {
            for el in els.take(256) {
                let Ok(el) = el else { break };
                let _ = ext::parse_decoding_timestamp(el.value);
                let _ = ext::parse_composition_time(el.value);
                let _ = ext::parse_frame_seq_range(el.value);
                let _ = ext::parse_frame_type(el.value);
                let _ = ext::parse_reference_frame_timestamp(el.value);
                let _ = ext::parse_aac_config(el.value);
            }
        }
        let _ = RtmExtensions::parse(profile, rest, &ids);
    }

    // Whole packets: split the input into packets at 0xFE bytes, assemble, depacketize.
    let dep = match selector >> 1 & 7 {
        0 => DepacketizerConfig::video(Codec::H264),
        1 => DepacketizerConfig::video(Codec::H265),
        2 => DepacketizerConfig::aac(44_100, AacMode::Latm),
        3 => DepacketizerConfig::aac(48_000, AacMode::Adts),
        _ => DepacketizerConfig::opus(),
    };
    let mut assembler = FrameAssembler::new();
    let mut frames = Vec::new();
    for chunk in rest.split(|&b| b == 0xFE).take(64) {
        let _ = rtmlive::rtp::extension_value_range(chunk, selector);
        if let Ok(view) = RtpView::parse(Bytes::copy_from_slice(chunk), &ids) {
            let _ = view.extension_value_range(ids.frame_seq_range.unwrap_or(21));
            assembler.push(view, &mut frames);
        }
    }
    frames.extend(assembler.flush());
    let mut d = Depacketizer::new(dep);
    for f in &frames {
        let _ = d.depacketize(&f.packets);
    }
});
