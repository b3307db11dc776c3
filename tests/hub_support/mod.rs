//! A synthetic live source for the hub tests: the packet pattern of a packetized A/V stream
//! (25 fps video in GOPs, several packets per frame, AAC every ~21 ms), with real RTP headers
//! and a payload that names the packet, so a test can check exactly what it received.
#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use rtmlive::media::{FrameKind, TrackKind};
use rtmlive::rtp::MediaPacket;

pub const VIDEO_SSRC: u32 = 0x1111_1111;
pub const AUDIO_SSRC: u32 = 0x2222_2222;

/// Generates packets in the order a packetizer hands them to the hub.
#[derive(Debug, Clone)]
pub struct Source {
    pub gop_frames: u32,
    pub pkts_per_frame: u32,
    pub payload: usize,
    pub frame: u64,
    pub video_seq: u64,
    pub audio_seq: u64,
    pub audio_next_ms: i64,
    pub ts_base: u32,
    pub dts_base: i64,
}

impl Source {
    pub fn new(gop_frames: u32, pkts_per_frame: u32) -> Self {
        Source {
            gop_frames,
            pkts_per_frame,
            payload: 1000,
            frame: 0,
            video_seq: 0,
            audio_seq: 0,
            audio_next_ms: 0,
            ts_base: 0,
            dts_base: 0,
        }
    }

    /// Sequence numbers start at `video`/`audio` (extended).
    pub fn with_seqs(mut self, video: u64, audio: u64) -> Self {
        self.video_seq = video;
        self.audio_seq = audio;
        self
    }

    pub fn with_time(mut self, ts_base: u32, dts_base: i64) -> Self {
        self.ts_base = ts_base;
        self.dts_base = dts_base;
        self.audio_next_ms = dts_base;
        self
    }

    /// DTS of the next video frame.
    pub fn next_dts(&self) -> i64 {
        self.dts_base + self.frame as i64 * 40
    }

    /// Packets of the next video frame, preceded by the audio packets due before it.
    pub fn next_frame(&mut self) -> Vec<MediaPacket> {
        let mut out = Vec::new();
        let dts = self.next_dts();
        while self.audio_next_ms <= dts {
            let ms = self.audio_next_ms;
            let ts = self
                .ts_base
                .wrapping_add(((ms - self.dts_base) * 48) as u32);
            out.push(packet(
                TrackKind::Audio,
                self.audio_seq,
                ts,
                true,
                FrameKind::Audio,
                false,
                ms,
                200,
            ));
            self.audio_seq += 1;
            self.audio_next_ms += 21;
        }
        let key = self.frame.is_multiple_of(u64::from(self.gop_frames));
        let kind = if key {
            FrameKind::Key
        } else {
            FrameKind::Inter
        };
        let ts = self
            .ts_base
            .wrapping_add(((dts - self.dts_base) * 90) as u32);
        for i in 0..self.pkts_per_frame {
            out.push(packet(
                TrackKind::Video,
                self.video_seq,
                ts,
                i + 1 == self.pkts_per_frame,
                kind,
                key && i == 0,
                dts,
                self.payload,
            ));
            self.video_seq += 1;
        }
        self.frame += 1;
        out
    }

    /// All packets of the next `frames` frames.
    pub fn frames(&mut self, frames: u32) -> Vec<MediaPacket> {
        (0..frames).flat_map(|_| self.next_frame()).collect()
    }
}

#[allow(clippy::too_many_arguments)]
pub fn packet(
    track: TrackKind,
    seq: u64,
    ts: u32,
    marker: bool,
    frame_kind: FrameKind,
    keyframe_start: bool,
    dts_ms: i64,
    payload: usize,
) -> MediaPacket {
    let mut b = BytesMut::with_capacity(12 + payload);
    b.put_u8(0x80);
    b.put_u8(if marker { 0x80 | 96 } else { 96 });
    b.put_u16(seq as u16);
    b.put_u32(ts);
    b.put_u32(match track {
        TrackKind::Video => VIDEO_SSRC,
        TrackKind::Audio => AUDIO_SSRC,
    });
    b.put_u64(seq);
    b.resize(12 + payload.max(8), 0xab);
    MediaPacket {
        bytes: Bytes::from(b),
        track,
        seq,
        timestamp: ts,
        marker,
        frame_kind,
        keyframe_start,
        dts_ms,
        seq_range_offset: None,
    }
}

/// Checks the no-drop invariant on what one subscriber received: split at `jump_at` indexes
/// (where a jump or switch was reported), every segment's first video packet starts a
/// keyframe and video sequence numbers within a segment are contiguous; audio too.
pub fn assert_whole_gops(received: &[MediaPacket], jump_at: &[usize]) {
    let mut bounds: Vec<usize> = jump_at.to_vec();
    bounds.insert(0, 0);
    bounds.push(received.len());
    for w in bounds.windows(2) {
        let seg = &received[w[0]..w[1]];
        let video: Vec<&MediaPacket> = seg.iter().filter(|p| p.track == TrackKind::Video).collect();
        if let Some(first) = video.first() {
            assert!(
                first.keyframe_start,
                "segment at {} starts mid-GOP (seq {})",
                w[0], first.seq
            );
        }
        for track in [TrackKind::Audio, TrackKind::Video] {
            let seqs: Vec<u64> = seg
                .iter()
                .filter(|p| p.track == track)
                .map(|p| p.seq)
                .collect();
            for s in seqs.windows(2) {
                assert_eq!(s[1], s[0] + 1, "{track:?} gap inside segment at {}", w[0]);
            }
        }
    }
}
