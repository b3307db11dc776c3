//! Fuzzes the WHIP receive path behind SRTP: arbitrary packets through the reorder/NACK
//! receiver and the RTP ingest (RTP parse, frame assembly, H.264 depacketizing, in-band
//! parameter sets, Opus). Never a panic, never unbounded growth.
//!
//! Run (bounded): `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run whip_ingest -- -max_total_time=30`
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rtmlive::ingest::rtp_ingest::RtpIngest;
use rtmlive::media::{DemuxEvent, TrackKind};
use rtmlive::origin::MediaSink;
use rtmlive::transport::MediaIngest;
use rtmlive::transport::receiver::{ReceiverConfig, RtpReceiver};

struct Discard;

impl MediaSink for Discard {
    fn on_event(&self, _ev: DemuxEvent) {}
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut ingest = RtpIngest::new(Arc::new(Discard), t0, None);
    let mut receivers = [
        RtpReceiver::new(ReceiverConfig::default(), 48_000),
        RtpReceiver::new(ReceiverConfig::default(), 90_000),
    ];
    let mut out = Vec::new();
    let mut nacks = Vec::new();
    // Records: [flags, len, bytes...]; bit 0 of flags picks the track, the rest advance time.
    let mut rest = data;
    let mut now = t0;
    while let [flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (pkt, next) = tail.split_at(n);
        rest = next;
        now += Duration::from_millis(u64::from(flags >> 1));
        let (idx, track) = if flags & 1 == 0 {
            (0, TrackKind::Audio)
        } else {
            (1, TrackKind::Video)
        };
        let r = &mut receivers[idx];
        if let [_, _, s0, s1, t0, t1, t2, t3, c0, c1, c2, c3, ..] = *pkt {
            let seq = u16::from_be_bytes([s0, s1]);
            let ts = u32::from_be_bytes([t0, t1, t2, t3]);
            let ssrc = u32::from_be_bytes([c0, c1, c2, c3]);
            r.push(now, ssrc, seq, ts, Bytes::copy_from_slice(pkt), &mut out);
        }
        r.handle_timeout(now, &mut out);
        r.due_nacks(now, &mut nacks);
        let _ = r.report_block(now);
        nacks.clear();
        for p in out.drain(..) {
            ingest.on_packet(now, track, p);
        }
        let _ = ingest.wants_keyframe();
    }
});
