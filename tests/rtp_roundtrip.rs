//! Round trips through the RTP layer: depacketize(packetize(frames)) must give back every
//! frame byte for byte with its DTS, CTS and kind; sequence numbers must be contiguous,
//! frame-seq-range must name each frame's actual first and last packet, and marker bits must
//! sit on the last packet of each frame only.

use bytes::Bytes;
use proptest::prelude::*;
use rtmlive::media::{AudioConfig, Codec, Frame, FrameData, FrameKind};
use rtmlive::rtp::depacketize::{Depacketizer, DepacketizerConfig, FrameAssembler};
use rtmlive::rtp::ext::RtmExt;
use rtmlive::rtp::{
    AacMode, AudioPacketizer, AudioPacketizerConfig, ExtensionIds, MediaPacket, RtpView,
    VideoPacketizer, VideoPacketizerConfig,
};

/// Checks the packet-level invariants of one frame's packets and returns their views.
fn check_frame_packets(
    frame_packets: &[MediaPacket],
    ids: &ExtensionIds,
    max: usize,
    expect_seq: &mut u64,
) -> Vec<RtpView> {
    let n = frame_packets.len();
    assert!(n > 0);
    let views: Vec<RtpView> = frame_packets
        .iter()
        .map(|m| RtpView::parse(m.bytes.clone(), ids).unwrap())
        .collect();
    for (i, (m, v)) in frame_packets.iter().zip(&views).enumerate() {
        assert!(m.len() <= max, "packet of {} bytes > {max}", m.len());
        assert_eq!(m.seq, *expect_seq, "sequence numbers contiguous");
        *expect_seq += 1;
        assert_eq!(v.sequence, m.seq as u16);
        assert_eq!(v.timestamp, m.timestamp);
        assert_eq!(v.marker, i + 1 == n, "marker only on the last packet");
        assert_eq!(m.marker, v.marker);
        if ids.frame_seq_range.is_some() {
            let r = v
                .rtm
                .frame_seq_range
                .expect("frame-seq-range on every packet");
            assert_eq!(r.first, views[0].sequence);
            assert_eq!(r.last, views[n - 1].sequence);
            let off = usize::from(m.seq_range_offset.unwrap());
            assert_eq!(&m.bytes[off..off + 4], &r.to_bytes()[..]);
        } else {
            assert!(m.seq_range_offset.is_none());
        }
        if ids.decoding_timestamp.is_some() {
            assert!(
                v.rtm.decoding_timestamp.is_some(),
                "decoding-timestamp on every packet"
            );
        }
    }
    views
}

/// Packetizes `frames` with `push`, reassembles and depacketizes, and compares.
fn round_trip(
    frames: &[Frame],
    ids: ExtensionIds,
    max: usize,
    initial_seq: u64,
    mut push: impl FnMut(&Frame, &mut Vec<MediaPacket>),
    dep: DepacketizerConfig,
) {
    let mut expect_seq = initial_seq;
    let mut all = Vec::new();
    let mut per_frame = Vec::new();
    for f in frames {
        let mut out = Vec::new();
        push(f, &mut out);
        let views = check_frame_packets(&out, &ids, max, &mut expect_seq);
        per_frame.push(views.len());
        all.extend(views);
    }
    // Group with the assembler as a player would, then depacketize.
    let mut asm = FrameAssembler::new();
    let mut groups = Vec::new();
    for v in all {
        asm.push(v, &mut groups);
    }
    assert!(asm.flush().is_none(), "no unfinished frame left");
    assert_eq!(groups.len(), frames.len());
    let mut d = Depacketizer::new(dep);
    for ((g, f), n) in groups.iter().zip(frames).zip(per_frame) {
        assert!(g.complete);
        assert_eq!(g.packets.len(), n);
        let back = d.depacketize(&g.packets).unwrap();
        assert_eq!(&back.frame, f);
    }
}

fn small_ids() -> ExtensionIds {
    ExtensionIds::from_extmap(
        RtmExt::ALL
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u8 + 1, e.uri())),
    )
    .unwrap()
}

fn ids_strategy() -> impl Strategy<Value = ExtensionIds> {
    prop_oneof![Just(ExtensionIds::default()), Just(small_ids())]
}

fn body(len: usize, seed: u8) -> impl Iterator<Item = u8> {
    (0..len).map(move |i| (i as u8).wrapping_mul(31).wrapping_add(seed))
}

/// A NAL unit with the given header and `len` bytes in all.
fn nal(header: &[u8], len: usize, seed: u8) -> Bytes {
    let mut v = header.to_vec();
    v.extend(body(len.saturating_sub(header.len()), seed));
    Bytes::from(v)
}

/// Frame shapes: (kind, dts step, cts, NAL sizes, seed).
fn video_frames(codec: Codec) -> impl Strategy<Value = Vec<Frame>> {
    let frame = (
        prop_oneof![
            Just(FrameKind::Key),
            Just(FrameKind::Inter),
            Just(FrameKind::Inter),
            Just(FrameKind::B)
        ],
        0i64..100,
        -200i32..400,
        prop::collection::vec((0u8..32, 1usize..6000), 1..5),
        any::<u8>(),
    );
    (0i64..100_000, prop::collection::vec(frame, 1..12)).prop_map(move |(start, shapes)| {
        let mut dts = start;
        shapes
            .into_iter()
            .map(|(kind, step, cts, sizes, seed)| {
                dts += step;
                let mut nals = Vec::new();
                if kind == FrameKind::Key {
                    match codec {
                        Codec::H264 => {
                            nals.push(nal(&[0x67, 0x64, 0x00, 0x1F], 25, seed));
                            nals.push(nal(&[0x68], 6, seed));
                        }
                        _ => {
                            nals.push(nal(&[0x40, 0x01], 24, seed));
                            nals.push(nal(&[0x42, 0x01], 45, seed));
                            nals.push(nal(&[0x44, 0x01], 7, seed));
                        }
                    }
                }
                for (t, len) in sizes {
                    // Any NAL type, including those that cannot travel alone (forced FU).
                    match codec {
                        Codec::H264 => nals.push(nal(&[0x60 | t], len.max(2), seed)),
                        _ => nals.push(nal(&[(t * 2) & 0x7E, 0x01], len.max(3), seed)),
                    }
                }
                Frame {
                    codec,
                    kind,
                    dts,
                    cts,
                    data: FrameData::Nalus(nals),
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn h264_round_trip(frames in video_frames(Codec::H264), ids in ids_strategy(), max in 128usize..1500, seq in prop_oneof![Just(0u64), Just(65_530u64), 0u64..1 << 40]) {
        let mut cfg = VideoPacketizerConfig::new(Codec::H264, 0x1234, 96);
        cfg.ext = ids;
        cfg.max_packet_size = max;
        cfg.initial_seq = seq;
        let mut p = VideoPacketizer::new(cfg).unwrap();
        round_trip(&frames, ids, max, seq, |f, out| p.push(f, out).unwrap(), DepacketizerConfig::video(Codec::H264));
    }

    #[test]
    fn h265_round_trip(frames in video_frames(Codec::H265), ids in ids_strategy(), max in 128usize..1500, seq in prop_oneof![Just(65_535u64), 0u64..1 << 20]) {
        let mut cfg = VideoPacketizerConfig::new(Codec::H265, 0x1234, 97);
        cfg.ext = ids;
        cfg.max_packet_size = max;
        cfg.initial_seq = seq;
        let mut p = VideoPacketizer::new(cfg).unwrap();
        round_trip(&frames, ids, max, seq, |f, out| p.push(f, out).unwrap(), DepacketizerConfig::video(Codec::H265));
    }

    #[test]
    fn aac_round_trip(
        mode in prop_oneof![Just(AacMode::Latm), Just(AacMode::Adts)],
        rate_asc in prop_oneof![
            Just((44_100u32, &[0x12u8, 0x10][..])),
            Just((48_000, &[0x11, 0x90][..])),
            Just((22_050, &[0x13, 0x90][..])),
        ],
        sizes in prop::collection::vec((1usize..3000, 0i64..3), 1..40),
        ids in ids_strategy(),
        max in 128usize..1500,
        interval in 0u32..5,
    ) {
        let (rate, asc) = rate_asc;
        let audio = AudioConfig { codec: Codec::Aac, asc: Bytes::from_static(asc), object_type: 2, sample_rate: rate, channels: 2 };
        let mut cfg = AudioPacketizerConfig::new(0x5678, 111);
        cfg.ext = ids;
        cfg.max_packet_size = max;
        cfg.aac_mode = mode;
        cfg.config_interval = interval;
        let mut p = AudioPacketizer::new(cfg, audio).unwrap();
        // ffmpeg-style millisecond timestamps of 1024-sample frames, with occasional gaps.
        let mut sample = 0u64;
        let frames: Vec<Frame> = sizes.iter().enumerate().map(|(i, &(len, gap))| {
            sample += 1024 * gap as u64;
            let dts = (sample * 1000 + u64::from(rate) / 2) / u64::from(rate);
            sample += 1024;
            Frame { codec: Codec::Aac, kind: FrameKind::Audio, dts: dts as i64, cts: 0, data: FrameData::Audio(Bytes::from(body(len, i as u8).collect::<Vec<_>>())) }
        }).collect();
        round_trip(&frames, ids, max, 0, |f, out| p.push(f, out).unwrap(), DepacketizerConfig::aac(rate, mode));
    }

    #[test]
    fn opus_round_trip(sizes in prop::collection::vec(1usize..1000, 1..30), ids in ids_strategy()) {
        let audio = AudioConfig { codec: Codec::Opus, asc: Bytes::new(), object_type: 0, sample_rate: 48_000, channels: 2 };
        let mut cfg = AudioPacketizerConfig::new(0x9, 111);
        cfg.ext = ids;
        let mut p = AudioPacketizer::new(cfg, audio).unwrap();
        let frames: Vec<Frame> = sizes.iter().enumerate().map(|(i, &len)| {
            let mut au = vec![0xFC];
            au.extend(body(len - 1, i as u8));
            Frame { codec: Codec::Opus, kind: FrameKind::Audio, dts: 20 * i as i64, cts: 0, data: FrameData::Audio(Bytes::from(au)) }
        }).collect();
        round_trip(&frames, ids, 1200, 0, |f, out| p.push(f, out).unwrap(), DepacketizerConfig::opus());
    }
}

#[test]
fn without_extensions_content_and_timing_survive_except_b_frames() {
    let ids = ExtensionIds::none();
    let mut cfg = VideoPacketizerConfig::new(Codec::H264, 1, 96);
    cfg.ext = ids;
    let mut p = VideoPacketizer::new(cfg).unwrap();
    let key = Frame {
        codec: Codec::H264,
        kind: FrameKind::Key,
        dts: 0,
        cts: 0,
        data: FrameData::Nalus(vec![
            nal(&[0x67], 20, 1),
            nal(&[0x68], 4, 2),
            nal(&[0x65], 4000, 3),
        ]),
    };
    let p_frame = Frame {
        codec: Codec::H264,
        kind: FrameKind::Inter,
        dts: 40,
        cts: 0,
        data: FrameData::Nalus(vec![nal(&[0x41], 900, 4)]),
    };
    let frames = [key, p_frame];
    round_trip(
        &frames,
        ids,
        1200,
        0,
        |f, out| p.push(f, out).unwrap(),
        DepacketizerConfig::video(Codec::H264),
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Hostile input: parsing arbitrary bytes as an RTP packet or an extension block returns
    /// a value or a typed error, never panics; depacketizing whatever parses never panics.
    #[test]
    fn parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..200), profile in prop_oneof![Just(0xBEDEu16), Just(0x1000), any::<u16>()]) {
        for ids in [ExtensionIds::default(), small_ids()] {
            let _ = rtmlive::rtp::RtmExtensions::parse(profile, &data, &ids);
            let mut pkt = vec![0x90, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
            pkt.extend_from_slice(&profile.to_be_bytes());
            pkt.extend_from_slice(&data);
            for bytes in [pkt, data.clone()] {
                let _ = rtmlive::rtp::extension_value_range(&bytes, 18);
                if let Ok(v) = RtpView::parse(Bytes::from(bytes), &ids) {
                    let _ = v.extension_value_range(18);
                    for dep in [
                        DepacketizerConfig::video(Codec::H264),
                        DepacketizerConfig::video(Codec::H265),
                        DepacketizerConfig::aac(48_000, AacMode::Latm),
                        DepacketizerConfig::aac(48_000, AacMode::Adts),
                        DepacketizerConfig::opus(),
                    ] {
                        let _ = Depacketizer::new(dep).depacketize(std::slice::from_ref(&v));
                    }
                }
            }
        }
    }
}

/// The example packets of `docs/rtp-extensions.md`, byte for byte: if this fails, the document
/// (or the wire format) changed.
/// The AAC-LC, 44.1 kHz stereo configuration of the documented vectors.
fn aac_lc_44k_stereo() -> AudioConfig {
    AudioConfig {
        codec: Codec::Aac,
        asc: Bytes::from_static(&[0x12, 0x10]),
        object_type: 2,
        sample_rate: 44100,
        channels: 2,
    }
}

/// The three-byte AAC access unit of the documented vectors, at `dts`.
fn aac_frame(dts: i64) -> Frame {
    Frame {
        codec: Codec::Aac,
        kind: FrameKind::Audio,
        dts,
        cts: 0,
        data: FrameData::Audio(Bytes::from_static(&[0x21, 0x10, 0x05])),
    }
}

#[test]
fn documented_vectors() {
    let mut cfg = VideoPacketizerConfig::new(Codec::H264, 0x11223344, 96);
    cfg.initial_seq = 100;
    let mut p = VideoPacketizer::new(cfg).unwrap();
    let mut out = Vec::new();
    p.push(
        &Frame {
            codec: Codec::H264,
            kind: FrameKind::Key,
            dts: 1000,
            cts: 40,
            data: FrameData::Nalus(vec![
                Bytes::from_static(&[0x67, 0x42, 0xC0, 0x1F]),
                Bytes::from_static(&[0x68, 0xCE, 0x3C, 0x80]),
                Bytes::from_static(&[0x65, 0x88, 0x84, 0x00]),
            ]),
        },
        &mut out,
    )
    .unwrap();
    p.push(
        &Frame {
            codec: Codec::H264,
            kind: FrameKind::Inter,
            dts: 1040,
            cts: 40,
            data: FrameData::Nalus(vec![Bytes::from_static(&[0x41, 0x9A, 0x02])]),
        },
        &mut out,
    )
    .unwrap();
    let mut cfg = VideoPacketizerConfig::new(Codec::H264, 0x11223344, 96);
    cfg.ext = ExtensionIds::from_extmap(
        rtmlive::rtp::ext::RtmExt::ALL
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u8 + 1, e.uri())),
    )
    .unwrap();
    cfg.initial_seq = 102;
    let mut p = VideoPacketizer::new(cfg).unwrap();
    p.push(
        &Frame {
            codec: Codec::H264,
            kind: FrameKind::B,
            dts: 1080,
            cts: -40,
            data: FrameData::Nalus(vec![Bytes::from_static(&[0x01, 0x9E, 0x03])]),
        },
        &mut out,
    )
    .unwrap();
    let mut acfg = AudioPacketizerConfig::new(0x55667788, 97);
    acfg.initial_seq = 7;
    let mut a = AudioPacketizer::new(acfg, aac_lc_44k_stereo()).unwrap();
    a.push(&aac_frame(23), &mut out).unwrap();
    let mut acfg = AudioPacketizerConfig::new(0x55667788, 97);
    acfg.initial_seq = 8;
    acfg.aac_mode = AacMode::Adts;
    let mut a = AudioPacketizer::new(acfg, aac_lc_44k_stereo()).unwrap();
    a.repeat_config();
    a.push(&aac_frame(46), &mut out).unwrap();
    let got: Vec<(u64, u32, Option<u16>, String)> = out
        .iter()
        .map(|m| {
            (
                m.seq,
                m.timestamp,
                m.seq_range_offset,
                hex::encode(&m.bytes),
            )
        })
        .collect();
    let want = [
        (
            100,
            93600,
            Some(30),
            "9060006400016da01122334410000006120400015f90130400000e101504006400651601000000007800046742c01f000468ce3c80",
        ),
        (
            101,
            93600,
            Some(24),
            "90e0006500016da01122334410000004120400015f901504006400651601000065888400",
        ),
        (
            102,
            97200,
            Some(30),
            "90e0006600017bb01122334410000007120400016da0130400000e10150400660066160101170400016da000419a02",
        ),
        (
            102,
            93600,
            Some(27),
            "90e0006600016da011223344bede00051300017bb023fffff1f033006600664002000000019e03",
        ),
        (
            7,
            1014,
            Some(24),
            "90e10007000003f655667788100000041204000003f61504000700071b02121003211005",
        ),
        (
            8,
            2029,
            Some(24),
            "90e10008000007ed55667788100000041204000007ed1504000800081b021210fff15080015ffc211005",
        ),
    ];
    let want: Vec<(u64, u32, Option<u16>, String)> = want
        .iter()
        .map(|(s, t, o, h)| (*s, *t, *o, h.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// Every committed FLV fixture: demux, packetize (video and audio, AAC both as LATM and as
/// ADTS), reassemble, depacketize; every frame must come back identical, in order.
#[test]
fn fixtures_round_trip() {
    use rtmlive::media::flv::{DemuxEvent, FlvDemuxer};

    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "flv"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "fixtures missing in {}", dir.display());
    for path in names {
        let data = std::fs::read(&path).unwrap();
        let mut d = FlvDemuxer::new();
        d.push(&data);
        let mut events = Vec::new();
        while let Some(ev) = d.poll().unwrap() {
            events.push(ev);
        }
        for mode in [AacMode::Latm, AacMode::Adts] {
            let ids = ExtensionIds::default();
            let mut video: Option<(VideoPacketizer, Depacketizer)> = None;
            let mut audio: Option<(AudioPacketizer, Depacketizer)> = None;
            let (mut vframes, mut aframes) = (Vec::new(), Vec::new());
            let (mut vpk, mut apk) = (Vec::new(), Vec::new());
            for ev in &events {
                match ev {
                    DemuxEvent::VideoConfig(c) if video.is_none() => {
                        let p = VideoPacketizer::new(VideoPacketizerConfig::new(c.codec, 1, 96))
                            .unwrap();
                        video = Some((p, Depacketizer::new(DepacketizerConfig::video(c.codec))));
                    }
                    DemuxEvent::AudioConfig(c) => match &mut audio {
                        Some((p, _)) => p.set_config(c.clone()).unwrap(),
                        None => {
                            let mut cfg = AudioPacketizerConfig::new(2, 97);
                            cfg.aac_mode = mode;
                            let p = AudioPacketizer::new(cfg, c.clone()).unwrap();
                            let dep = DepacketizerConfig::aac(p.clock_rate(), mode);
                            audio = Some((p, Depacketizer::new(dep)));
                        }
                    },
                    DemuxEvent::Frame(f) if f.codec.is_video() => {
                        video
                            .as_mut()
                            .expect("video config first")
                            .0
                            .push(f, &mut vpk)
                            .unwrap();
                        vframes.push(f.clone());
                    }
                    DemuxEvent::Frame(f) => {
                        audio
                            .as_mut()
                            .expect("audio config first")
                            .0
                            .push(f, &mut apk)
                            .unwrap();
                        aframes.push(f.clone());
                    }
                    _ => {}
                }
            }
            let name = path.file_name().unwrap().to_string_lossy();
            assert!(!vframes.is_empty() && !aframes.is_empty(), "{name}");
            // ffmpeg's AAC frames are 1024 samples: the RTP clock must step by exactly that.
            let steps: Vec<u32> = apk
                .windows(2)
                .filter(|w| w[0].timestamp != w[1].timestamp)
                .map(|w| w[1].timestamp.wrapping_sub(w[0].timestamp))
                .collect();
            assert!(
                steps.iter().all(|&s| s == 1024),
                "{name}: audio steps {steps:?}"
            );
            for (packets, frames, dep) in [
                (vpk, vframes, &mut video.as_mut().unwrap().1),
                (apk, aframes, &mut audio.as_mut().unwrap().1),
            ] {
                let mut asm = FrameAssembler::new();
                let mut groups = Vec::new();
                for (i, m) in packets.iter().enumerate() {
                    assert!(m.len() <= 1200, "{name}: packet {i} is {} bytes", m.len());
                    assert_eq!(m.seq, i as u64, "{name}: contiguous sequence numbers");
                    asm.push(RtpView::parse(m.bytes.clone(), &ids).unwrap(), &mut groups);
                }
                assert!(asm.flush().is_none());
                assert_eq!(groups.len(), frames.len(), "{name}");
                for (i, (g, f)) in groups.iter().zip(&frames).enumerate() {
                    assert!(g.complete, "{name}: frame {i}");
                    let n = g.packets.len();
                    for (j, v) in g.packets.iter().enumerate() {
                        assert_eq!(v.marker, j + 1 == n, "{name}: marker of frame {i}");
                        let r = v.rtm.frame_seq_range.unwrap();
                        assert_eq!(
                            (r.first, r.last),
                            (g.packets[0].sequence, g.packets[n - 1].sequence)
                        );
                    }
                    let back = dep.depacketize(&g.packets).unwrap();
                    assert_eq!(&back.frame, f, "{name}: frame {i} ({:?})", f.kind);
                }
            }
        }
    }
}
