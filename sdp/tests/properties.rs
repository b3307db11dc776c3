//! Property tests: decode(encode(x)) == x inside each version's representable subset, and
//! no input makes a decoder or the SDP parser panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use rtm_sdp::ExtensionUri;
use rtm_sdp::Sdp;
use rtm_sdp::minisdp::{self, *};
use rtm_sdp::sdp::{CandidateType, Direction, Fingerprint, HashFunction};

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9+/_.:-]{{0,{max}}}")).unwrap()
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn cand_type() -> impl Strategy<Value = CandidateType> {
    prop_oneof![
        Just(CandidateType::Host),
        Just(CandidateType::Srflx),
        Just(CandidateType::Prflx),
        Just(CandidateType::Relay),
    ]
}

fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    prop_oneof![
        Just(HashFunction::Sha1),
        Just(HashFunction::Sha224),
        Just(HashFunction::Sha256),
        Just(HashFunction::Sha384),
        Just(HashFunction::Sha512),
    ]
    .prop_flat_map(|hash| {
        let n = hash.digest_len().unwrap_or(32);
        proptest::collection::vec(any::<u8>(), n).prop_map(move |digest| Fingerprint {
            hash: hash.clone(),
            digest,
        })
    })
}

fn role() -> impl Strategy<Value = DtlsRole> {
    prop_oneof![
        Just(DtlsRole::ActPass),
        Just(DtlsRole::Active),
        Just(DtlsRole::Passive)
    ]
}

fn codec_name(ext: bool) -> impl Strategy<Value = CodecName> {
    let max: u8 = if ext { 6 } else { 5 };
    (0..=max).prop_map(|i| CodecName::from_id(i).unwrap())
}

fn clock() -> impl Strategy<Value = u32> {
    (0usize..16).prop_filter_map("index 14 is unused", |i| {
        (i != 14).then_some(FREQUENCIES[i])
    })
}

fn aac() -> impl Strategy<Value = AacParams> {
    (
        any::<u8>(),
        any::<[bool; 4]>(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(object, f, config)| AacParams {
            object,
            ps: f[0],
            sbr: f[1],
            stereo: f[2],
            cpresent: f[3],
            config,
        })
}

fn codec(ext: bool, aac_fmtp: bool) -> impl Strategy<Value = MiniCodec> {
    let ch_max: u8 = if ext { 15 } else { 3 };
    (
        codec_name(ext),
        0u8..128,
        clock(),
        0..=ch_max,
        any::<[bool; 6]>(),
        aac(),
        any::<([u8; 3], u8, bool)>(),
        any::<(u8, bool, bool)>(),
        proptest::option::of(0u8..128),
        any::<[bool; 3]>(),
    )
        .prop_map(
            move |(name, pt, clock_rate, channels, fb, a, h, o, apt, present)| {
                let mut c = MiniCodec::new(name, pt, clock_rate, channels);
                c.feedback = Feedback {
                    nack: fb[0],
                    goog_remb: fb[1],
                    transport_cc: fb[2],
                    nack_pli: ext && fb[3],
                    ccm_fir: ext && fb[4],
                };
                c.bframe = fb[5];
                if name.is_aac() && aac_fmtp {
                    c.aac = Some(a.clone());
                }
                if ext {
                    if !name.is_aac() && present[0] {
                        c.aac = Some(a);
                    }
                    if present[1] {
                        c.h264 = Some(H264Params {
                            profile_level_id: h.0,
                            packetization_mode: h.1,
                            level_asymmetry_allowed: h.2,
                        });
                    }
                    if present[2] {
                        c.opus = Some(OpusParams {
                            minptime: o.0,
                            useinbandfec: o.1,
                            stereo: o.2,
                        });
                    }
                    c.apt = apt;
                }
                c
            },
        )
}

fn extension(ext: bool) -> impl Strategy<Value = MiniExtension> {
    let n = if ext { ExtensionUri::ALL.len() } else { 10 };
    (1u8..=255, 0..n).prop_map(|(id, i)| MiniExtension {
        id,
        uri: ExtensionUri::ALL[i],
    })
}

fn media(kind: MiniMediaKind, ext: bool, aac_fmtp: bool) -> impl Strategy<Value = MiniMedia> {
    let data = kind == MiniMediaKind::Data;
    let (ssrc_max, codec_max, ext_max) = if data {
        (0, 0, 0)
    } else {
        (if ext { 4 } else { 2 }, 4, 5)
    };
    (
        proptest::collection::hash_set(1u32.., 0..=ssrc_max),
        proptest::collection::vec(
            (any::<u32>(), any::<u32>()),
            0..=if ext && !data { 2 } else { 0 },
        ),
        proptest::collection::vec(codec(ext, aac_fmtp), 0..=codec_max),
        proptest::collection::vec(extension(ext), 0..=ext_max),
    )
        .prop_map(move |(ssrcs, rtx_groups, codecs, extensions)| MiniMedia {
            kind,
            ssrcs: ssrcs.into_iter().collect(),
            rtx_groups,
            codecs,
            extensions,
        })
}

fn kind_strategy() -> impl Strategy<Value = MiniMediaKind> {
    prop_oneof![
        Just(MiniMediaKind::Audio),
        Just(MiniMediaKind::Video),
        Just(MiniMediaKind::Data)
    ]
}

/// Session fields shared by both strategies.
#[allow(clippy::type_complexity)]
fn base(ext: bool) -> impl Strategy<Value = (MiniSdp, bool)> {
    (
        (
            0u8..3,
            any::<u16>(),
            any::<u16>(),
            0u8..if ext { 4 } else { 3 },
            role(),
        ),
        any::<[bool; 6]>(),
        proptest::option::of(prop_oneof![Just(PushPull::Push), Just(PushPull::Pull)]),
        (text(24), text(40), text(60), text(40)),
        proptest::option::of(fingerprint()),
        proptest::collection::vec(
            (ip(), any::<u16>(), cand_type()),
            0..=if ext { 4 } else { 1 },
        ),
        (
            proptest::collection::vec(any::<u8>(), 0..=if ext { 80 } else { 0 }),
            any::<[u8; 16]>(),
        ),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(
            move |(h, flags, push_pull, s, fingerprint, cands, (auth, auth16), ticket)| {
                let (k, status, seq, d, role) = h;
                let kind = match k {
                    0 => SdpKind::Offer,
                    1 => SdpKind::Answer,
                    _ => SdpKind::Error,
                };
                // v0 tells an error reply from an offer by its status.
                let status = match (ext, kind) {
                    (false, SdpKind::Offer) => 0,
                    (false, SdpKind::Error) => status.max(1),
                    _ => status,
                };
                let direction = [
                    Direction::SendOnly,
                    Direction::RecvOnly,
                    Direction::SendRecv,
                    Direction::Inactive,
                ][d as usize];
                let mut m = MiniSdp::new(
                    if ext {
                        WireVersion::Ext
                    } else {
                        WireVersion::V0
                    },
                    kind,
                    &format!("webrtc://{}", s.2),
                );
                m.status = Status(status);
                m.seq = seq;
                m.direction = direction;
                m.role = role;
                m.dtls_srtp = flags[0];
                m.imm_send = flags[1];
                m.ice_lite = ext && flags[2];
                m.aac_fmtp = flags[3];
                m.session_id_one = flags[4];
                m.mid_style = if flags[5] {
                    MidStyle::Kind
                } else {
                    MidStyle::Numeric
                };
                m.push_pull = push_pull;
                m.ice_ufrag = s.0;
                m.ice_pwd = s.1;
                m.svrsig = s.3;
                m.fingerprint = fingerprint;
                m.candidates = cands
                    .into_iter()
                    .map(|(ip, port, typ)| MiniCandidate {
                        ip,
                        port,
                        typ: if ext { typ } else { CandidateType::Srflx },
                    })
                    .collect();
                m.auth = if ext {
                    auth
                } else if auth16.iter().any(|b| *b != 0) && flags[2] {
                    auth16.to_vec()
                } else {
                    Vec::new()
                };
                m.ticket = if ext { ticket } else { None };
                (m, flags[3])
            },
        )
}

fn v0_model() -> impl Strategy<Value = MiniSdp> {
    base(false).prop_flat_map(|(m, aac_fmtp)| {
        let kinds = proptest::sample::subsequence(
            vec![
                MiniMediaKind::Audio,
                MiniMediaKind::Video,
                MiniMediaKind::Data,
            ],
            0..=3,
        )
        .prop_shuffle();
        kinds.prop_flat_map(move |ks| {
            let m = m.clone();
            let medias: Vec<_> = ks.into_iter().map(|k| media(k, false, aac_fmtp)).collect();
            medias.prop_map(move |media| MiniSdp { media, ..m.clone() })
        })
    })
}

fn ext_model() -> impl Strategy<Value = MiniSdp> {
    base(true).prop_flat_map(|(m, aac_fmtp)| {
        proptest::collection::vec(kind_strategy(), 0..=3).prop_flat_map(move |ks| {
            let m = m.clone();
            let medias: Vec<_> = ks.into_iter().map(|k| media(k, true, aac_fmtp)).collect();
            medias.prop_map(move |media| MiniSdp { media, ..m.clone() })
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn v0_round_trip(m in v0_model()) {
        let bytes = match m.encode() {
            Err(EncodeError::PacketTooLarge { .. }) => return Ok(()),
            other => other.unwrap(),
        };
        prop_assert_eq!(MiniSdp::decode(&bytes).unwrap(), m.clone());
        // Expansion is valid SDP that parses back to the same model.
        let text = m.to_sdp().to_string();
        prop_assert_eq!(Sdp::parse(&text).unwrap(), m.to_sdp());
    }

    #[test]
    fn ext_round_trip(m in ext_model()) {
        let bytes = match m.encode() {
            Err(EncodeError::PacketTooLarge { .. }) => return Ok(()),
            other => other.unwrap(),
        };
        prop_assert!(bytes.len() <= ext::MAX_PACKET);
        prop_assert_eq!(MiniSdp::decode(&bytes).unwrap(), m.clone());
        let text = m.to_sdp().to_string();
        prop_assert_eq!(Sdp::parse(&text).unwrap(), m.to_sdp());
    }

    #[test]
    fn stop_round_trip(ext in any::<bool>(), status in any::<u16>(), seq in any::<u16>(),
                       svrsig in text(80), auth in proptest::collection::vec(any::<u8>(), 0..40)) {
        let s = StopPacket {
            version: if ext { WireVersion::Ext } else { WireVersion::V0 },
            status: Status(status),
            seq,
            svrsig,
            auth: if ext { auth } else { Vec::new() },
        };
        let bytes = minisdp::encode(&Packet::Stop(s.clone())).unwrap();
        prop_assert_eq!(minisdp::decode(&bytes).unwrap(), Packet::Stop(s));
    }

    #[test]
    fn decode_arbitrary_bytes_never_panics(
        prefix in prop_oneof![Just(b"\xffSDP\x00".to_vec()), Just(b"\xffSDPR".to_vec()),
                              Just(b"\xffSTP\x00".to_vec()), Just(b"\xffSTPR".to_vec()), Just(vec![])],
        body in proptest::collection::vec(any::<u8>(), 0..1600),
    ) {
        let mut buf = prefix;
        buf.extend_from_slice(&body);
        let _ = minisdp::decode(&buf);
    }

    #[test]
    fn decode_mutated_packets_never_panics(m in ext_model(), v0 in v0_model(),
                                            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
                                            cut in any::<usize>()) {
        for model in [m, v0] {
            let Ok(mut bytes) = model.encode() else { continue };
            for (at, x) in &flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            let _ = minisdp::decode(&bytes);
            bytes.truncate(cut % (bytes.len() + 1));
            let _ = minisdp::decode(&bytes);
        }
    }

    #[test]
    fn sdp_text_round_trips(lines in proptest::collection::vec(
        (prop_oneof![Just("a="), Just("m="), Just("c="), Just("b="), Just("i="), Just("s="), Just("t=")],
         prop_oneof![
            Just("rtpmap:".to_string()), Just("fmtp:".to_string()), Just("candidate:".to_string()),
            Just("extmap:".to_string()), Just("ssrc:".to_string()), Just("fingerprint:sha-256 ".to_string()),
            Just("group:BUNDLE".to_string()), Just("rtcp-fb:".to_string()), Just("msid:".to_string()),
            Just("audio 9 UDP/TLS/RTP/SAVPF ".to_string()), Just(String::new()),
         ],
         "[ a-zA-Z0-9:/.=;*-]{0,40}"), 0..30)) {
        let mut text = String::from("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n");
        for (t, head, body) in lines {
            text.push_str(t);
            text.push_str(&head);
            text.push_str(&body);
            text.push('\n');
        }
        if let Ok(sdp) = Sdp::parse(&text) {
            prop_assert_eq!(Sdp::parse(&sdp.to_string()).unwrap(), sdp);
        }
    }

    #[test]
    fn sdp_parser_never_panics(s in "(?s)[vosctma=:/ 0-9a-z\\r\\n-]{0,400}") {
        let _ = Sdp::parse(&s);
    }
}
