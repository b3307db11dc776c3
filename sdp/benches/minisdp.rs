//! Encode/decode cost per packet (target: < 2 µs). Figures go in docs/minisdp.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rtm_sdp::Sdp;
use rtm_sdp::minisdp::{
    self, AudioCodecs, CompressOptions, MiniSdp, PullOffer, SdpKind, WireVersion,
};
use rtm_sdp::sdp::{Fingerprint, HashFunction};

const CHROMIUM: &str = include_str!("../tests/fixtures/chromium_recvonly_offer.sdp");

fn typical(version: WireVersion) -> MiniSdp {
    PullOffer {
        version,
        url: "webrtc://live.example.com/live/stream01".into(),
        seq: 1,
        ice_ufrag: "Xq3B".into(),
        ice_pwd: "r9a7lQ0cT1uVbK2mZ8pWf6sN".into(),
        fingerprint: Fingerprint {
            hash: HashFunction::Sha256,
            digest: vec![0xAB; 32],
        },
        candidates: vec!["192.168.1.23:54321".parse().unwrap()],
        audio: AudioCodecs::Aac,
        h265: false,
        auth: if version == WireVersion::Ext {
            vec![0x5A; 64]
        } else {
            Vec::new()
        },
        ticket: None,
        imm_send: false,
    }
    .build()
}

fn bench(c: &mut Criterion) {
    let chromium = Sdp::parse(CHROMIUM).unwrap();
    for (label, version) in [("v0", WireVersion::V0), ("ext", WireVersion::Ext)] {
        let offer = typical(version);
        let bytes = offer.encode().unwrap();
        c.bench_function(&format!("{label}/encode_typical_offer"), |b| {
            b.iter(|| black_box(&offer).encode().unwrap())
        });
        c.bench_function(&format!("{label}/decode_typical_offer"), |b| {
            b.iter(|| minisdp::decode(black_box(&bytes)).unwrap())
        });
        let chrome = MiniSdp::from_sdp(
            &chromium,
            &CompressOptions::new(version, SdpKind::Offer, "webrtc://live.example.com/live/s"),
        )
        .unwrap();
        let cbytes = chrome.encode().unwrap();
        c.bench_function(&format!("{label}/encode_chromium_offer"), |b| {
            b.iter(|| black_box(&chrome).encode().unwrap())
        });
        c.bench_function(&format!("{label}/decode_chromium_offer"), |b| {
            b.iter(|| minisdp::decode(black_box(&cbytes)).unwrap())
        });
        c.bench_function(&format!("{label}/expand_to_sdp_text"), |b| {
            b.iter(|| black_box(&offer).to_sdp().to_string())
        });
    }
    c.bench_function("sdp/parse_chromium_offer", |b| {
        b.iter(|| Sdp::parse(black_box(CHROMIUM)).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
