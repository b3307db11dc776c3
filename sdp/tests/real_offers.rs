//! Real browser offers: parse, write back, compress to both miniSDP versions, answer.

use rtm_sdp::ExtensionUri;
use rtm_sdp::Sdp;
use rtm_sdp::minisdp::{
    self, CodecName, CompressOptions, MiniSdp, PushPull, ReplyAttrs, SdpKind, WireVersion,
};
use rtm_sdp::sdp::answer::{AnswerParams, CodecPreference, TrackParams};
use rtm_sdp::sdp::{Candidate, Direction, Fingerprint, HashFunction, MediaKind};

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

const URL: &str = "webrtc://live.example.com/live/stream01";

fn opts(version: WireVersion) -> CompressOptions {
    CompressOptions {
        seq: 7,
        push_pull: Some(PushPull::Pull),
        ..CompressOptions::new(version, SdpKind::Offer, URL)
    }
}

#[test]
fn chromium_offer_parses_and_writes_back_verbatim() {
    for name in [
        "chromium_recvonly_offer.sdp",
        "chromium_recvonly_offer_no_candidates.sdp",
    ] {
        let text = fixture(name);
        let sdp = Sdp::parse(&text).unwrap();
        assert_eq!(sdp.to_string(), text, "{name}");
        assert_eq!(sdp.bundle().unwrap(), ["0", "1"]);
        assert_eq!(sdp.media.len(), 2);
        let video = sdp.media_of(&MediaKind::Video).unwrap();
        assert_eq!(video.direction(), Some(Direction::RecvOnly));
        assert!(video.codecs().iter().any(|c| c.name == "H264"
            && c.fmtp_param("packetization-mode") == Some("1")
            && c.fmtp_param("profile-level-id") == Some("42e01f")));
        assert_eq!(sdp.fingerprint().unwrap().hash, HashFunction::Sha256);
    }
}

#[test]
fn chromium_offer_compresses_to_both_versions() {
    let sdp = Sdp::parse(&fixture("chromium_recvonly_offer.sdp")).unwrap();
    for version in [WireVersion::V0, WireVersion::Ext] {
        let m = MiniSdp::from_sdp(&sdp, &opts(version)).unwrap();
        let bytes = m.encode().unwrap();
        let back = MiniSdp::decode(&bytes).unwrap();
        assert_eq!(back, m, "{version:?}");
        assert_eq!(back.url, URL);
        assert_eq!(back.direction, Direction::RecvOnly);
        assert_eq!(back.ice_ufrag, sdp.ice_ufrag().unwrap());
        assert_eq!(back.fingerprint.as_ref(), sdp.fingerprint());
        let video = back.video().unwrap();
        assert_eq!(video.extension_id(ExtensionUri::AbsSendTime), Some(2));
        assert!(video.codecs_named(CodecName::H264).count() >= 4);
        assert!(back.candidate_addrs().count() >= 1);
        match version {
            WireVersion::V0 => assert_eq!(back.candidates.len(), 1),
            WireVersion::Ext => {
                // Every distinct UDP host candidate, IPv6 included.
                assert_eq!(back.candidates.len(), 4);
                assert!(back.candidates.iter().any(|c| c.ip.is_ipv6()));
                let h264 = video
                    .codecs_named(CodecName::H264)
                    .find(|c| {
                        c.h264.is_some_and(|h| {
                            h.packetization_mode == 1 && h.profile_level_id == [0x42, 0xe0, 0x1f]
                        })
                    })
                    .unwrap();
                assert_eq!(h264.pt, 108);
                assert!(h264.feedback.nack_pli);
                assert!(
                    video
                        .codecs
                        .iter()
                        .any(|c| c.name == CodecName::Rtx && c.apt == Some(108))
                );
            }
        }
        // Expansion is valid SDP.
        Sdp::parse(&back.to_sdp().to_string()).unwrap();
    }
}

#[test]
fn firefox_style_offer_keeps_session_level_fingerprint() {
    let text = fixture("firefox_style_recvonly_offer.sdp");
    let sdp = Sdp::parse(&text).unwrap();
    assert_eq!(Sdp::parse(&sdp.to_string()).unwrap(), sdp);
    assert!(sdp.media.iter().all(|m| m.fingerprint().is_none()));
    let fp = sdp.fingerprint().unwrap().clone();
    for version in [WireVersion::V0, WireVersion::Ext] {
        let m = MiniSdp::from_sdp(&sdp, &opts(version)).unwrap();
        assert_eq!(m.fingerprint.as_ref(), Some(&fp), "{version:?}");
        assert_eq!(m.ice_ufrag, "7d1e9a3c");
        let back = MiniSdp::decode(&m.encode().unwrap()).unwrap();
        assert_eq!(back, m);
        let audio = back.audio().unwrap();
        assert_eq!(audio.codecs.len(), 1);
        assert_eq!(audio.codecs[0].name, CodecName::Opus);
    }
    // The TCP candidate is not carried by the extended format (UDP only).
    let ext = MiniSdp::from_sdp(&sdp, &opts(WireVersion::Ext)).unwrap();
    assert_eq!(ext.candidates.len(), 1);
}

fn answer_params() -> AnswerParams {
    AnswerParams {
        ice_ufrag: "srv_7f3a9c21".into(),
        ice_pwd: "4d1c8e0b6a2f9e57c3b18d42".into(),
        fingerprint: Fingerprint {
            hash: HashFunction::Sha256,
            digest: (0..32).collect(),
        },
        candidates: vec![
            Candidate::parse("1 1 udp 2130706431 203.0.113.10 8000 typ host").unwrap(),
        ],
        ice_lite: true,
        session_id: 1,
        cname: "rtm".into(),
        stream_id: "stream01".into(),
        audio: Some(TrackParams {
            codecs: vec![CodecPreference::opus()],
            direction: Direction::SendOnly,
            ssrc: 0x0100_0000,
            rtx_ssrc: None,
            track_id: "a".into(),
        }),
        video: Some(TrackParams {
            codecs: vec![CodecPreference::h264("42e01f")],
            direction: Direction::SendOnly,
            ssrc: 0x0200_0000,
            rtx_ssrc: None,
            track_id: "v".into(),
        }),
        extensions: vec![
            ExtensionUri::AbsSendTime,
            ExtensionUri::TransportWideCc,
            ExtensionUri::DecodingTimestamp,
            ExtensionUri::CompositionTime,
        ],
    }
}

#[test]
fn answers_a_chromium_offer_in_the_clients_version() {
    let sdp = Sdp::parse(&fixture("chromium_recvonly_offer.sdp")).unwrap();
    for version in [WireVersion::V0, WireVersion::Ext] {
        let offer_bytes = MiniSdp::from_sdp(&sdp, &opts(version))
            .unwrap()
            .encode()
            .unwrap();
        let offer = MiniSdp::decode(&offer_bytes).unwrap();
        let answer =
            minisdp::answer_offer(&offer, &answer_params(), &ReplyAttrs::default()).unwrap();
        let bytes = answer.encode().unwrap();
        let back = MiniSdp::decode(&bytes).unwrap();
        assert_eq!(back.version, version);
        assert_eq!(back.kind, SdpKind::Answer);
        assert_eq!(back.seq, 7);
        assert_eq!(back.url, URL);
        assert_eq!(back.direction, Direction::SendOnly);
        assert_eq!(back.role, minisdp::DtlsRole::Passive);
        assert_eq!(back.svrsig, offer.ice_ufrag);
        assert_eq!(back.ice_lite, version == WireVersion::Ext);
        let v = back.video().unwrap();
        // v0 reconstructs a made-up profile for every H.264 PT; the answer picks the first.
        assert_eq!(v.codecs.len(), 1);
        assert_eq!(v.ssrcs, [0x0200_0000]);
        assert_eq!(
            back.candidate_addrs().next().unwrap(),
            "203.0.113.10:8000".parse().unwrap()
        );
        assert!(
            bytes.len() <= 300,
            "{version:?} answer is {} bytes",
            bytes.len()
        );
        if version == WireVersion::Ext {
            assert_eq!(v.codecs[0].pt, 108);
        }
    }
}

/// Prints the size table used in docs/minisdp.md (run with `--nocapture`).
#[test]
fn size_table() {
    let mut rows = Vec::new();
    for name in [
        "chromium_recvonly_offer.sdp",
        "chromium_recvonly_offer_no_candidates.sdp",
        "firefox_style_recvonly_offer.sdp",
    ] {
        let text = fixture(name);
        let sdp = Sdp::parse(&text).unwrap();
        let v0 = MiniSdp::from_sdp(&sdp, &opts(WireVersion::V0))
            .unwrap()
            .encode()
            .unwrap();
        let ext = MiniSdp::from_sdp(&sdp, &opts(WireVersion::Ext))
            .unwrap()
            .encode()
            .unwrap();
        rows.push(format!(
            "| {name} | {} | {} | {} |",
            text.len(),
            v0.len(),
            ext.len()
        ));
    }
    println!("{}", rows.join("\n"));
}

fn typical(version: WireVersion, audio: minisdp::AudioCodecs, auth: usize) -> minisdp::PullOffer {
    minisdp::PullOffer {
        version,
        url: URL.into(),
        seq: 1,
        ice_ufrag: "Xq3B".into(),
        ice_pwd: "r9a7lQ0cT1uVbK2mZ8pWf6sN".into(),
        fingerprint: Fingerprint {
            hash: HashFunction::Sha256,
            digest: vec![0xAB; 32],
        },
        candidates: vec!["192.168.1.23:54321".parse().unwrap()],
        audio,
        h265: false,
        auth: vec![0x5A; auth],
        ticket: None,
        imm_send: false,
    }
}

#[test]
fn typical_pull_offers_and_answers_fit_300_bytes() {
    use minisdp::AudioCodecs::*;
    for version in [WireVersion::V0, WireVersion::Ext] {
        for audio in [Opus, Aac, Both] {
            let auth = if version == WireVersion::Ext { 64 } else { 16 };
            let offer = typical(version, audio, auth).build();
            let bytes = offer.encode().unwrap();
            assert!(
                bytes.len() <= 300,
                "{version:?} {audio:?}: {} bytes",
                bytes.len()
            );
            let decoded = MiniSdp::decode(&bytes).unwrap();
            assert_eq!(decoded, offer);
            let mut params = answer_params();
            params.audio.as_mut().unwrap().codecs = vec![
                CodecPreference::by_name("MP4A-LATM", 48_000, None),
                CodecPreference::opus(),
            ];
            let answer = minisdp::answer_offer(&decoded, &params, &ReplyAttrs::default()).unwrap();
            let abytes = answer.encode().unwrap();
            assert!(
                abytes.len() <= 300,
                "{version:?} {audio:?} answer: {} bytes",
                abytes.len()
            );
            assert_eq!(MiniSdp::decode(&abytes).unwrap(), answer);
            println!(
                "| typical pull, {version:?}, {audio:?}, auth {auth} B | {} | {} |",
                bytes.len(),
                abytes.len()
            );
            if version == WireVersion::Ext {
                let v = answer.video().unwrap();
                assert_eq!(
                    v.extension_id(ExtensionUri::FrameSeqRange),
                    None,
                    "not in params"
                );
                assert_eq!(v.extension_id(ExtensionUri::DecodingTimestamp), Some(18));
                assert_eq!(v.extension_id(ExtensionUri::CompositionTime), Some(19));
            }
        }
    }
}

#[test]
fn playable_codec_set_shrinks_chromium_offer() {
    let sdp = Sdp::parse(&fixture("chromium_recvonly_offer.sdp")).unwrap();
    let all = MiniSdp::from_sdp(&sdp, &opts(WireVersion::Ext)).unwrap();
    let playable_opts = CompressOptions {
        codecs: minisdp::CodecSet::Playable,
        max_candidates: 1,
        ..opts(WireVersion::Ext)
    };
    let playable = MiniSdp::from_sdp(&sdp, &playable_opts).unwrap();
    let (a, p) = (
        all.encode().unwrap().len(),
        playable.encode().unwrap().len(),
    );
    println!(
        "| chromium_recvonly_offer.sdp, playable codecs, 1 candidate | {} | – | {p} |",
        fixture("chromium_recvonly_offer.sdp").len()
    );
    assert!(p < a && p <= 300, "{p} vs {a}");
    let v = playable.video().unwrap();
    assert!(v.codecs.iter().all(|c| c.name != CodecName::FlexFec03));
    assert!(
        v.codecs
            .iter()
            .filter(|c| c.name == CodecName::Rtx)
            .all(|r| v.codecs.iter().any(|c| Some(c.pt) == r.apt))
    );
}
