//! player-test's receive path on hostile input: HTTP response heads, RTP packets through
//! `RtpInput`, and arbitrary packet sequences (sequence numbers, frame-seq-ranges, DTS) through
//! the no-drop jitter buffer. Never a panic; the buffer's memory stays bounded by its limits.
//!
//! Input: `[selector][rest]`; selector 0 = HTTP head, 1 = RTP packet, else a jitter-buffer run
//! of 9-byte records `[seq:2][first:2][last:2][dts:2][flags:1]`.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use player_test::jitter::{JitterConfig, TrackBuffer};
use player_test::packet::{FrameMeta, RtpIn};
use player_test::rtp_in::{RtpInput, TrackMap};
use rtmlive::media::{FrameKind, TrackKind};
use rtmlive::rtp::ExtensionIds;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel {
        0 => {
            let _ = player_test::http::parse_head(rest);
        }
        1 => {
            let map = TrackMap { video_pts: vec![102], audio_pts: vec![97], ..TrackMap::default() };
            let mut input = RtpInput::new(ExtensionIds::default(), map, 44_100);
            let _ = input.parse(Bytes::copy_from_slice(rest));
        }
        _ => {
            let t0 = Instant::now();
            let mut b = TrackBuffer::new(TrackKind::Video, JitterConfig::default());
            for (i, r) in rest.chunks_exact(9).enumerate() {
                let u = |k: usize| u16::from_be_bytes([r[k], r[k + 1]]);
                let flags = r[8];
                let pkt = RtpIn {
                    track: TrackKind::Video,
                    ssrc: 1,
                    seq: u(0),
                    timestamp: u32::from(u(6)) * 90,
                    marker: flags & 1 != 0,
                    payload: Bytes::from_static(&[0x65]),
                    raw: Bytes::new(),
                    meta: FrameMeta {
                        dts_ms: (flags & 2 != 0).then_some(i64::from(u(6))),
                        cts_ms: None,
                        seq_range: (flags & 4 != 0).then_some((u(2), u(4))),
                        kind: (flags & 8 != 0).then_some(FrameKind::Key),
                    },
                };
                let now = t0 + Duration::from_millis(i as u64);
                if b.insert(pkt, now).is_err() {
                    b.reset();
                }
                while b.pop_frame().is_some() {}
                let _ = b.poll_nacks(now);
                assert!(b.nack().outstanding() as u64 <= player_test::jitter::MAX_WINDOW + player_test::jitter::MAX_FRAME_PACKETS);
            }
        }
    }
});
