//! Co-host switching: a viewer moves between streams only at a keyframe of the target, after
//! finishing the frame in flight, and its rewritten RTP stays continuous.

mod hub_support;

use std::sync::Arc;

use hub_support::{AUDIO_SSRC, Source, VIDEO_SSRC};
use rtmlive::hub::room::{Room, SwitchableSubscription};
use rtmlive::hub::{Continuity, HubConfig, Recv, Stream};
use rtmlive::media::TrackKind;
use rtmlive::rtp::MediaPacket;

/// What the viewer's session sent: source packet, rewritten seq and timestamp.
#[derive(Debug, Clone)]
struct Sent {
    from: &'static str,
    pkt: MediaPacket,
    seq: u16,
    ts: u32,
}

struct Viewer {
    sub: SwitchableSubscription,
    cont: Continuity,
    sent: Vec<Sent>,
    switched_at: Vec<usize>,
}

impl Viewer {
    fn poll(&mut self, a: &Arc<Stream>) {
        let mut out = Vec::new();
        loop {
            out.clear();
            let r = self.sub.poll(&mut out, 7);
            match r {
                Recv::Pending | Recv::Closed => return,
                Recv::Switched { .. } | Recv::Jumped { .. } => {
                    self.switched_at.push(self.sent.len());
                    self.cont.begin_epoch();
                }
                Recv::Items(_) => {}
            }
            let from = if Arc::ptr_eq(self.sub.current(), a) {
                "a"
            } else {
                "b"
            };
            for p in &out {
                let rw = self.cont.rewrite(p);
                let mut copy = p.bytes.to_vec();
                assert!(rw.apply(p, &mut copy, Some(0xfeed)));
                assert_eq!(u16::from_be_bytes([copy[2], copy[3]]), rw.seq);
                self.sent.push(Sent {
                    from,
                    pkt: p.clone(),
                    seq: rw.seq,
                    ts: rw.timestamp,
                });
            }
        }
    }
}

fn assert_continuous(sent: &[Sent]) {
    for track in [TrackKind::Audio, TrackKind::Video] {
        let t: Vec<&Sent> = sent.iter().filter(|s| s.pkt.track == track).collect();
        for w in t.windows(2) {
            assert_eq!(
                w[1].seq,
                w[0].seq.wrapping_add(1),
                "{track:?} output seq not contiguous: {:?} -> {:?}",
                (w[0].from, w[0].pkt.seq),
                (w[1].from, w[1].pkt.seq)
            );
            let dt = w[1].ts.wrapping_sub(w[0].ts) as i32;
            assert!(dt >= 0, "{track:?} output time went back");
            if w[0].from != w[1].from {
                assert!(dt > 0, "{track:?} output time stood still across a switch");
                // Within a couple of frame intervals: no visible jump in time.
                let clock_ms = if track == TrackKind::Video { 90 } else { 48 };
                assert!(dt <= 100 * clock_ms, "{track:?} time jumped by {dt} ticks");
            }
        }
    }
}

fn ssrc(p: &MediaPacket) -> u32 {
    u32::from_be_bytes([p.bytes[8], p.bytes[9], p.bytes[10], p.bytes[11]])
}

#[test]
fn room_switch_happens_only_at_target_keyframe_and_stays_continuous() {
    let a = Stream::new("live/host", HubConfig::default());
    let b = Stream::new("live/mix", HubConfig::default());
    let mut sa = Source::new(25, 3).with_seqs(1_000, 2_000);
    // The mix: other sequence space (wrapping soon), other clock origin, keyframes out of
    // phase with the host's.
    let mut sb = Source::new(25, 3)
        .with_seqs(65_500, 30_000)
        .with_time(3_000_000_000, 777_000);
    sb.frame = 11;
    a.push_packets(sa.frames(30));
    b.push_packets(sb.frames(12));

    let room = Room::new("room/1", a.clone());
    let mut v = Viewer {
        sub: room.subscribe(None),
        cont: Continuity::new(90_000, 48_000),
        sent: Vec::new(),
        switched_at: Vec::new(),
    };
    v.poll(&a);
    assert!(v.sent.iter().all(|s| s.from == "a"));

    room.switch_to(b.clone());
    // B has pushed frames 11..=22 of its first GOP: the switch happens at frame 25.
    for _ in 0..2 {
        a.push_packets(sa.next_frame());
        b.push_packets(sb.next_frame());
        v.poll(&a);
        assert!(v.sub.is_switching());
        assert!(
            v.sent.iter().all(|s| s.from == "a"),
            "switched before the keyframe"
        );
    }
    a.push_packets(sa.next_frame());
    b.push_packets(sb.next_frame()); // B's keyframe
    v.poll(&a);
    assert!(!v.sub.is_switching());
    assert_eq!(v.switched_at.len(), 1);
    let at = v.switched_at[0];
    let first_b = &v.sent[at];
    assert_eq!(first_b.from, "b");
    assert!(first_b.pkt.keyframe_start);
    let last_a_video = v.sent[..at]
        .iter()
        .rev()
        .find(|s| s.pkt.track == TrackKind::Video)
        .unwrap();
    assert!(last_a_video.pkt.marker, "left A mid-frame");
    assert!(v.sent[at..].iter().all(|s| s.from == "b"));

    for _ in 0..30 {
        a.push_packets(sa.next_frame());
        b.push_packets(sb.next_frame());
        v.poll(&a);
    }
    assert_continuous(&v.sent);

    // NACK of an output seq sent before the switch resolves in the previous stream.
    let old = &v.sent[at - 1];
    let src = v.cont.source_seq(old.pkt.track, old.seq).unwrap();
    assert!(src.previous_epoch);
    let prev = v.sub.previous().unwrap();
    assert!(Arc::ptr_eq(prev, &a));
    let again = prev.lookup(old.pkt.track, src.seq).unwrap();
    assert_eq!(again, old.pkt);
    let rw = v.cont.retransmission(&again, true).unwrap();
    assert_eq!((rw.seq, rw.timestamp), (old.seq, old.ts));

    // And back to the solo stream, again at its keyframe.
    room.switch_to(a.clone());
    for _ in 0..30 {
        a.push_packets(sa.next_frame());
        b.push_packets(sb.next_frame());
        v.poll(&a);
    }
    assert_eq!(v.sub.switches(), 2);
    let back = v.switched_at[1];
    assert!(v.sent[back].pkt.keyframe_start);
    assert_eq!(v.sent[back].from, "a");
    assert_continuous(&v.sent);
    assert_eq!(a.viewers() + b.viewers(), 1);
    assert!(
        v.sent
            .iter()
            .all(|s| [VIDEO_SSRC, AUDIO_SSRC].contains(&ssrc(&s.pkt)))
    );
}

#[test]
fn switch_waits_for_the_frame_in_flight() {
    let a = Stream::new("live/host", HubConfig::default());
    let b = Stream::new("live/mix", HubConfig::default());
    let mut sa = Source::new(25, 4);
    let mut sb = Source::new(25, 2).with_seqs(9_000, 9_000);
    sb.frame = 24;
    a.push_packets(sa.frames(5));
    b.push_packets(sb.next_frame()); // frame 24: not a keyframe
    let mut v = Viewer {
        sub: SwitchableSubscription::new(a.subscribe()),
        cont: Continuity::new(90_000, 44_100),
        sent: Vec::new(),
        switched_at: Vec::new(),
    };
    v.poll(&a);
    // Half of A's next frame arrives and is delivered: the viewer is mid-frame on A.
    let frame = sa.next_frame();
    let video_start = frame
        .iter()
        .position(|p| p.track == TrackKind::Video)
        .unwrap();
    let (head, tail) = frame.split_at(video_start + 2);
    a.push_packets(head.to_vec());
    v.poll(&a);
    v.sub.switch_to(&b);
    b.push_packets(sb.next_frame()); // B's keyframe arrives
    v.poll(&a);
    assert!(v.sub.is_switching(), "left A in the middle of a frame");
    assert!(v.sent.iter().all(|s| s.from == "a"));
    a.push_packets(tail.to_vec());
    v.poll(&a);
    assert!(!v.sub.is_switching());
    let at = v.switched_at[0];
    assert!(v.sent[at - 1].pkt.marker);
    assert_eq!(v.sent[at - 1].from, "a");
    assert!(v.sent[at].pkt.keyframe_start);
    assert_continuous(&v.sent);
    // Switching to the current stream cancels; to the same target twice is one switch.
    v.sub.switch_to(&a);
    assert!(v.sub.is_switching());
    v.sub.switch_to(&a);
    assert!(v.sub.is_switching());
    v.sub.switch_to(&b);
    assert!(!v.sub.is_switching());
}

#[test]
fn viewer_survives_the_end_of_the_stream_it_leaves() {
    let a = Stream::new("live/host", HubConfig::default());
    let b = Stream::new("live/mix", HubConfig::default());
    let mut sa = Source::new(25, 2);
    let mut sb = Source::new(25, 2).with_seqs(500, 500);
    sb.frame = 20;
    a.push_packets(sa.frames(3));
    b.push_packets(sb.frames(2));
    let mut v = Viewer {
        sub: SwitchableSubscription::new(a.subscribe()),
        cont: Continuity::new(90_000, 48_000),
        sent: Vec::new(),
        switched_at: Vec::new(),
    };
    v.poll(&a);
    v.sub.switch_to(&b);
    a.close();
    let mut out = Vec::new();
    assert_eq!(v.sub.poll(&mut out, 10), Recv::Pending);
    b.push_packets(sb.frames(4)); // frames 22..=25: 25 is the keyframe
    v.poll(&a);
    assert_eq!(v.sub.switches(), 1);
    assert!(v.sent[v.switched_at[0]].pkt.keyframe_start);
    assert_continuous(&v.sent);
    assert_eq!(a.viewers(), 0);
}
