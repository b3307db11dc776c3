//! The hub's fan-out guarantees, end to end through the public API.

mod hub_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hub_support::{Source, assert_whole_gops};
use rtmlive::hub::{
    GopLimits, HubConfig, JumpReason, Recv, RingLimits, StartAt, Stream, Subscription,
};
use rtmlive::media::{Codec, Frame, FrameData, FrameKind, TrackKind, VideoConfig};
use rtmlive::rtp::MediaPacket;

fn small_config(ring_bytes: usize) -> HubConfig {
    HubConfig {
        packet_ring: RingLimits {
            max_items: 100_000,
            max_bytes: ring_bytes,
            max_duration_ms: 60_000,
        },
        packet_gop: GopLimits {
            max_bytes: ring_bytes / 2,
            max_duration_ms: 30_000,
        },
        ..HubConfig::default()
    }
}

fn video_config() -> VideoConfig {
    VideoConfig {
        codec: Codec::H264,
        parameter_sets: Vec::new(),
        width: 640,
        height: 360,
        profile: 66,
        constraints: 0xc0,
        level: 30,
    }
}

fn drain(sub: &mut Subscription, out: &mut Vec<MediaPacket>, jumps: &mut Vec<usize>) -> usize {
    let mut n = 0;
    loop {
        let before = out.len();
        match sub.poll(out, 64) {
            Recv::Items(k) => n += k,
            Recv::Jumped { n: k, .. } | Recv::Switched { n: k } => {
                jumps.push(before);
                n += k;
            }
            Recv::Pending | Recv::Closed => return n,
        }
    }
}

#[test]
fn late_joiner_gets_the_whole_cached_gop_with_audio() {
    let s = Stream::new("live/a", HubConfig::default());
    let mut src = Source::new(25, 4);
    s.push_packets(src.frames(60)); // GOPs at frames 0, 25, 50
    let gop: Vec<MediaPacket> = {
        let mut replay = Source::new(25, 4);
        let all = replay.frames(60);
        let k = all.iter().rposition(|p| p.keyframe_start).unwrap();
        all[k..].to_vec()
    };
    let mut sub = s.subscribe();
    let mut out = Vec::new();
    assert_eq!(sub.poll(&mut out, 100_000), Recv::Items(gop.len()));
    assert_eq!(out, gop);
    assert!(out[0].keyframe_start);
    assert!(out.iter().any(|p| p.track == TrackKind::Audio));
    assert_eq!(sub.poll(&mut out, 10), Recv::Pending);
    let st = s.stats();
    assert_eq!(st.viewers, 1);
    assert_eq!(st.packet_ring.gop_items as usize, gop.len());
    assert_eq!(st.keyframes, 3);
}

#[test]
fn joiner_before_any_keyframe_waits_for_it() {
    let s = Stream::new("live/a", HubConfig::default());
    // The origin delivers the sequence header first: the stream is known to have video, so
    // audio alone is no starting point.
    s.set_video_config(video_config());
    let mut src = Source::new(25, 3);
    let mut pkts = src.frames(30);
    // Drop the first GOP's keyframe: the stream starts mid-GOP (as a pull that joined late).
    let first_key = pkts.iter().position(|p| p.keyframe_start).unwrap();
    pkts.drain(..first_key + 3);
    let second_key = pkts.iter().position(|p| p.keyframe_start).unwrap();
    s.push_packets(pkts[..second_key].to_vec());
    assert!(!s.has_keyframe());
    let mut sub = s.subscribe();
    let mut out = Vec::new();
    assert_eq!(sub.poll(&mut out, 1000), Recv::Pending);
    s.push_packets(pkts[second_key..].to_vec());
    assert!(s.has_keyframe());
    let n = sub.poll(&mut out, 1000).count();
    assert_eq!(n, pkts.len() - second_key);
    assert!(out[0].keyframe_start);
}

#[test]
fn slow_subscriber_is_jumped_to_a_whole_gop_and_producer_never_blocks() {
    // Ring of 100 KB: about 2.3 GOPs of 10 frames x 4 packets x 1 KB.
    let s = Stream::new("live/a", small_config(100_000));
    let mut src = Source::new(10, 4);
    s.push_packets(src.frames(10));
    let mut sub = s.subscribe();
    let mut out = Vec::new();
    let mut jumps = Vec::new();
    // Read half a GOP, then stall while the producer pushes 20 more GOPs.
    assert_eq!(sub.poll(&mut out, 17), Recv::Items(17));
    let t = Instant::now();
    for _ in 0..200 {
        s.push_packets(src.next_frame());
    }
    assert!(t.elapsed() < Duration::from_secs(5), "producer was held up");
    let before = out.len();
    match sub.poll(&mut out, 10_000) {
        Recv::Jumped { jump, n } => {
            assert_eq!(jump.reason, JumpReason::Lagged);
            assert!(jump.to_keyframe);
            assert!(jump.skipped() > 0);
            assert_eq!(n, out.len() - before);
            jumps.push(before);
        }
        other => panic!("expected a jump, got {other:?}"),
    }
    assert!(out[before].keyframe_start);
    drain(&mut sub, &mut out, &mut jumps);
    assert_whole_gops(&out, &jumps);
    assert_eq!(sub.jumps(), 1);
    assert_eq!(s.stats().jumps, 1);
    assert!(s.stats().packet_ring.bytes <= 100_000);
}

#[test]
fn randomly_slow_subscribers_only_ever_see_whole_gops() {
    let s = Stream::new("live/a", small_config(50_000));
    let mut src = Source::new(8, 3);
    let mut subs: Vec<(Subscription, Vec<MediaPacket>, Vec<usize>)> = (0..8)
        .map(|_| (s.subscribe(), Vec::new(), Vec::new()))
        .collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2_000 {
        s.push_packets(src.next_frame());
        for (i, (sub, out, jumps)) in subs.iter_mut().enumerate() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Subscriber i polls with probability ~ 1/(i+1), a random amount.
            if rng.is_multiple_of(i as u64 + 1) {
                let before = out.len();
                if let Recv::Jumped { .. } = sub.poll(out, (rng >> 32) as usize % 40) {
                    jumps.push(before);
                }
            }
        }
    }
    let mut total_jumps = 0;
    for (sub, mut out, mut jumps) in subs {
        let mut sub = sub;
        drain(&mut sub, &mut out, &mut jumps);
        assert_whole_gops(&out, &jumps);
        total_jumps += jumps.len() as u64;
    }
    assert!(total_jumps > 0, "the test never exercised a jump");
    assert_eq!(s.stats().jumps, total_jumps);
}

#[test]
fn stalled_subscriber_keeps_memory_bounded() {
    let cfg = HubConfig {
        packet_ring: RingLimits {
            max_items: 2_000,
            max_bytes: 1 << 20,
            max_duration_ms: 20_000,
        },
        packet_gop: GopLimits {
            max_bytes: 1 << 19,
            max_duration_ms: 10_000,
        },
        ..HubConfig::default()
    };
    cfg.validate().unwrap();
    let s = Stream::new("live/a", cfg);
    let _stalled: Vec<Subscription> = (0..100).map(|_| s.subscribe()).collect();
    let mut src = Source::new(50, 5);
    for _ in 0..5_000 {
        s.push_packets(src.next_frame());
        let st = s.stats().packet_ring;
        assert!(st.bytes <= 1 << 20 && st.items <= 2_000);
    }
    // A subscriber is a cursor: its state is tiny, whatever the stream holds.
    assert!(std::mem::size_of::<Subscription>() <= 256);
    assert!(std::mem::size_of::<rtmlive::hub::room::SwitchableSubscription>() <= 1024);
}

#[test]
fn oversized_gop_is_not_offered_to_late_joiners() {
    // GOP bound 20 KB; a GOP here is 25 frames x 4 x 1 KB = 100 KB.
    let s = Stream::new("live/a", small_config(40_000));
    let mut src = Source::new(25, 4);
    s.push_packets(src.frames(3));
    assert!(s.has_keyframe());
    s.push_packets(src.frames(10));
    assert!(!s.has_keyframe());
    assert!(s.stats().gop_overflows >= 1);
    let mut sub = s.subscribe();
    let mut out = Vec::new();
    // The joiner waits for the next keyframe...
    s.push_packets(src.frames(10));
    assert_eq!(sub.poll(&mut out, 1000), Recv::Pending);
    s.push_packets(src.frames(2));
    assert_eq!(sub.poll(&mut out, 1000), Recv::Pending);
    s.push_packets(src.frames(1)); // frame 25: the next keyframe
    // ... and starts on it.
    assert!(sub.poll(&mut out, 1000).count() > 0);
    assert!(out[0].keyframe_start);
}

#[test]
fn lookup_by_wire_seq_across_wrap() {
    let s = Stream::new("live/a", HubConfig::default());
    let mut src = Source::new(25, 4).with_seqs(65_400, 65_500);
    s.push_packets(src.frames(100)); // video seqs 65_400 .. 65_800, wrapping at 65_536
    for ext in [65_400u64, 65_535, 65_536, 65_537, 65_799] {
        let p = s.lookup(TrackKind::Video, ext as u16).expect("cached");
        assert_eq!(p.seq, ext);
        assert_eq!(&p.bytes[2..4], &(ext as u16).to_be_bytes());
    }
    assert!(s.lookup(TrackKind::Video, 65_800u64 as u16).is_none());
    let a = s.newest_seq(TrackKind::Audio).unwrap();
    assert_eq!(s.lookup(TrackKind::Audio, a as u16).unwrap().seq, a);
    assert!(a > 65_536);
    let st = s.stats();
    assert_eq!((st.lookups, st.lookup_misses), (7, 1));
}

#[test]
fn keyframe_request_replays_the_cached_gop_once() {
    let s = Stream::new("live/a", HubConfig::default());
    let mut src = Source::new(25, 2);
    s.push_packets(src.frames(30));
    let mut sub = s.subscribe();
    let mut out = Vec::new();
    let gop = sub.poll(&mut out, 10_000).count();
    sub.request_keyframe();
    out.clear();
    match sub.poll(&mut out, 10_000) {
        Recv::Jumped { jump, n } => {
            assert_eq!(jump.reason, JumpReason::KeyframeRequest);
            assert_eq!(n, gop);
        }
        other => panic!("{other:?}"),
    }
    assert!(out[0].keyframe_start);
    sub.request_keyframe();
    assert_eq!(sub.poll(&mut out, 10_000), Recv::Pending);
    assert_eq!(s.stats().keyframe_requests, 1);
    let mut gop_pkts = Vec::new();
    assert_eq!(s.keyframe_packets(&mut gop_pkts, 10_000), gop);
}

#[test]
fn max_lag_jumps_before_eviction() {
    let cfg = HubConfig {
        max_lag_ms: Some(1_000),
        ..HubConfig::default()
    };
    let s = Stream::new("live/a", cfg);
    let mut src = Source::new(10, 2);
    s.push_packets(src.frames(1));
    let mut sub = s.subscribe();
    s.push_packets(src.frames(60)); // 2.4 s ahead
    let mut out = Vec::new();
    match sub.poll(&mut out, 10_000) {
        Recv::Jumped { jump, .. } => assert_eq!(jump.reason, JumpReason::TooFarBehind),
        other => panic!("{other:?}"),
    }
    assert!(out[0].keyframe_start);
}

#[test]
fn closed_stream_drains_then_reports_closed() {
    let s = Stream::new("live/a", HubConfig::default());
    let mut src = Source::new(5, 1);
    s.push_packets(src.frames(5));
    let mut sub = s.subscribe();
    s.close();
    let mut out = Vec::new();
    assert!(sub.poll(&mut out, 100).count() > 0);
    assert_eq!(sub.poll(&mut out, 100), Recv::Closed);
}

#[test]
fn audio_only_stream_starts_anywhere() {
    let s = Stream::new("radio/a", HubConfig::default());
    let mut src = Source::new(25, 1);
    let audio: Vec<MediaPacket> = src
        .frames(50)
        .into_iter()
        .filter(|p| p.track == TrackKind::Audio)
        .collect();
    s.push_packets(audio.clone());
    assert!(s.has_keyframe());
    let mut sub = s.subscribe();
    let mut out = Vec::new();
    assert_eq!(sub.poll(&mut out, 100), Recv::Items(1));
    assert_eq!(out[0], *audio.last().unwrap());
}

#[test]
fn concurrent_producer_and_subscriber_threads() {
    const FRAMES: u32 = 3_000;
    // A ring that holds the whole run: readers may lag arbitrarily without being jumped.
    let mut cfg = small_config(64 << 20);
    cfg.packet_ring.max_duration_ms = 400_000;
    cfg.packet_gop.max_duration_ms = 200_000;
    let s = Stream::new("live/a", cfg);
    let mut src = Source::new(25, 4);
    s.push_packets(src.frames(1));
    let notify = Arc::new(tokio::sync::Notify::new());
    let subs: Vec<Subscription> = (0..6)
        .map(|_| s.subscribe_with(StartAt::CachedKeyframe, Some(notify.clone())))
        .collect();
    let expected: u64 = {
        let mut r = Source::new(25, 4);
        let all = r.frames(FRAMES + 1);
        // Subscribers start at the first keyframe, after the audio packet that precedes it.
        (all.len() - all.iter().position(|p| p.keyframe_start).unwrap()) as u64
    };
    std::thread::scope(|scope| {
        let producer = {
            let s = s.clone();
            scope.spawn(move || {
                for _ in 0..FRAMES {
                    s.push_packets(src.next_frame());
                }
                s.close();
            })
        };
        let readers: Vec<_> = subs
            .into_iter()
            .map(|mut sub| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    let mut got = Vec::new();
                    let mut jumps = Vec::new();
                    loop {
                        out.clear();
                        match sub.poll(&mut out, 50) {
                            Recv::Closed => break,
                            Recv::Pending => std::thread::yield_now(),
                            Recv::Jumped { .. } => {
                                jumps.push(got.len());
                                got.append(&mut out);
                            }
                            _ => got.append(&mut out),
                        }
                    }
                    assert_whole_gops(&got, &jumps);
                    (got.len() as u64, jumps.len())
                })
            })
            .collect();
        producer.join().unwrap();
        for r in readers {
            let (n, jumps) = r.join().unwrap();
            // The default ring holds far more than this test pushes: nothing may be skipped.
            assert_eq!(jumps, 0);
            assert_eq!(n, expected);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_task_wakes_on_notify_and_first_keyframe_is_awaitable() {
    let s = Stream::new("live/a", HubConfig::default());
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut subs: Vec<Subscription> = (0..100)
        .map(|_| s.subscribe_with(StartAt::CachedKeyframe, Some(notify.clone())))
        .collect();
    let waiter = {
        let s = s.clone();
        tokio::spawn(async move { s.wait_keyframe().await })
    };
    let shard = {
        let notify = notify.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            let mut total = 0usize;
            loop {
                notify.notified().await;
                // One permit may stand for several wake-ups (the last packets and the close
                // together): drain until nothing moves before waiting again, or the close
                // seen behind the last items would never be read.
                loop {
                    let (mut closed, mut moved) = (0, false);
                    for sub in subs.iter_mut().filter(|s| s.has_pending()) {
                        out.clear();
                        match sub.poll(&mut out, 1_000) {
                            Recv::Closed => closed += 1,
                            r => {
                                total += r.count();
                                moved |= r.count() > 0;
                            }
                        }
                    }
                    if closed == subs.len() {
                        return total;
                    }
                    if !moved {
                        break;
                    }
                }
            }
        })
    };
    let mut src = Source::new(25, 4);
    let mut pkts = src.frames(40);
    let k = pkts.iter().position(|p| p.keyframe_start).unwrap();
    pkts.drain(..k + 1); // start mid-GOP
    let second = pkts.iter().position(|p| p.keyframe_start).unwrap();
    let (before, after) = pkts.split_at(second);
    s.push_packets(before.to_vec());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiter.is_finished());
    for p in after {
        s.push(p.clone());
        tokio::task::yield_now().await;
    }
    assert!(waiter.await.unwrap());
    s.close();
    let total = tokio::time::timeout(Duration::from_secs(10), shard)
        .await
        .expect("shard woke up")
        .unwrap();
    assert_eq!(total, after.len() * 100);
    assert_eq!(s.viewers(), 0);
}

#[test]
fn frame_ring_has_the_same_semantics() {
    let s = Stream::new("live/a", HubConfig::default());
    let frame = |kind: FrameKind, dts: i64| {
        Arc::new(Frame {
            codec: if kind == FrameKind::Audio {
                Codec::Aac
            } else {
                Codec::H264
            },
            kind,
            dts,
            cts: 0,
            data: FrameData::Audio(bytes::Bytes::from_static(&[1, 2, 3])),
        })
    };
    for i in 0..30 {
        let kind = if i % 10 == 0 {
            FrameKind::Key
        } else {
            FrameKind::Inter
        };
        s.push_frame(frame(kind, i * 40));
        s.push_frame(frame(FrameKind::Audio, i * 40 + 5));
    }
    let mut sub = s.subscribe_frames(StartAt::CachedKeyframe, None);
    let mut out = Vec::new();
    assert_eq!(sub.poll(&mut out, 100), Recv::Items(20));
    assert_eq!(out[0].kind, FrameKind::Key);
    assert_eq!(out[0].dts, 800);
    assert_eq!(s.frame_subscribers(), 1);
    let mut gop = Vec::new();
    assert_eq!(s.keyframe_frames(&mut gop, 100), 20);
    assert_eq!(s.stats().frames, 60);
}

#[test]
fn poll_with_lends_exactly_what_poll_clones() {
    let s = Stream::new("live/a", small_config(100_000));
    let mut src = Source::new(10, 4);
    s.push_packets(src.frames(12));
    let mut a = s.subscribe();
    let mut b = s.subscribe();
    let mut cloned = Vec::new();
    let mut lent = Vec::new();
    for _ in 0..200 {
        s.push_packets(src.next_frame());
        let ra = a.poll(&mut cloned, 3);
        let rb = b.poll_with(3, |p| lent.push((p.track, p.seq)));
        assert_eq!(ra, rb);
    }
    // Both fell behind the ring the same way and were jumped the same way.
    assert!(a.jumps() > 0);
    assert_eq!(a.jumps(), b.jumps());
    let cloned: Vec<_> = cloned.iter().map(|p| (p.track, p.seq)).collect();
    assert_eq!(cloned, lent);
}
