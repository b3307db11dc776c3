//! Packetization throughput: GB/s of H.264 payload (NAL unit bytes) turned into RTP packets with
//! the RTM extensions, one core. Target (issue 2): ≥ 1 GB/s.
//!
//! `cargo bench --bench packetize`; results in `docs/benchmarks.md` ("Packetize").

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtmlive::media::{AudioConfig, Codec, Frame, FrameData, FrameKind};
use rtmlive::rtp::{
    AudioPacketizer, AudioPacketizerConfig, VideoPacketizer, VideoPacketizerConfig,
};

/// A synthetic 2 s GOP at 25 fps: keyframe (SPS, PPS, 60 KB IDR) then 49 P frames of `p_size`.
fn gop(codec: Codec, p_size: usize) -> Vec<Frame> {
    let nal = |h: &[u8], len: usize| {
        let mut v = h.to_vec();
        v.extend((0..len - h.len()).map(|i| (i * 131 + 7) as u8));
        Bytes::from(v)
    };
    let (params, idr, p) = match codec {
        Codec::H264 => (
            vec![nal(&[0x67], 24), nal(&[0x68], 6)],
            &[0x65][..],
            &[0x41][..],
        ),
        _ => (
            vec![nal(&[0x40, 1], 24), nal(&[0x42, 1], 40), nal(&[0x44, 1], 8)],
            &[0x26, 1][..],
            &[0x02, 1][..],
        ),
    };
    let mut frames = Vec::new();
    let mut key = params;
    key.push(nal(idr, 60_000));
    frames.push(Frame {
        codec,
        kind: FrameKind::Key,
        dts: 0,
        cts: 40,
        data: FrameData::Nalus(key),
    });
    for i in 1..50 {
        frames.push(Frame {
            codec,
            kind: FrameKind::Inter,
            dts: 40 * i,
            cts: 40,
            data: FrameData::Nalus(vec![nal(p, p_size)]),
        });
    }
    frames
}

fn video(c: &mut Criterion) {
    let mut g = c.benchmark_group("packetize");
    for (name, codec, p_size) in [
        ("h264_gop_4mbps", Codec::H264, 9_000),
        ("h264_gop_small_frames", Codec::H264, 1_000),
        ("h265_gop_4mbps", Codec::H265, 9_000),
    ] {
        let frames = gop(codec, p_size);
        let bytes: usize = frames.iter().map(|f| f.data.len()).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        let mut p = VideoPacketizer::new(VideoPacketizerConfig::new(codec, 1, 96)).unwrap();
        let mut out = Vec::with_capacity(4096);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                for f in &frames {
                    p.push(black_box(f), &mut out).unwrap();
                }
                black_box(out.len())
            })
        });
    }
    let audio = AudioConfig {
        codec: Codec::Aac,
        asc: Bytes::from_static(&[0x11, 0x90]),
        object_type: 2,
        sample_rate: 48_000,
        channels: 2,
    };
    let mut p = AudioPacketizer::new(AudioPacketizerConfig::new(2, 97), audio).unwrap();
    let frames: Vec<Frame> = (0..100)
        .map(|i| Frame {
            codec: Codec::Aac,
            kind: FrameKind::Audio,
            dts: i * 21,
            cts: 0,
            data: FrameData::Audio(Bytes::from(vec![0x21; 400])),
        })
        .collect();
    g.throughput(Throughput::Elements(frames.len() as u64));
    let mut out = Vec::with_capacity(256);
    g.bench_function("aac_latm_frames", |b| {
        b.iter(|| {
            out.clear();
            for f in &frames {
                p.push(black_box(f), &mut out).unwrap();
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, video);
criterion_main!(benches);
