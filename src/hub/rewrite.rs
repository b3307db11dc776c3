//! Keeping a viewer's RTP streams continuous when the packets it is sent stop following each
//! other: after a jump to a keyframe, a keyframe-request replay, or a co-host switch to another
//! stream (another SSRC, sequence space and clock origin).
//!
//! The player must see, per track, one SSRC (the session's own), sequence numbers that
//! increase by one, and timestamps that keep advancing at the rate media time advances. A
//! [`Continuity`] maps every source packet to those output values with a per-track offset
//! that is fixed within an **epoch** (a run of packets that do follow each other) and chosen
//! anew at the first packet of each track in the next epoch:
//!
//! * sequence: `out = src + seq_offset` (wrapping) with the first output of the epoch = last
//!   output + 1 (no gap: the player must not NACK what was skipped on purpose);
//! * time: epochs are placed on one output timeline in milliseconds by the source DTS,
//!   `out_ms = src_dts_ms + shift`; `shift` puts the first packet of the new epoch one frame
//!   interval after the newest packet sent in the previous epoch. Each track's RTP timestamp
//!   offset then makes its first output timestamp advance from its own last one by the output
//!   time elapsed (at least one tick), so audio and video stay in sync to within a frame.
//!
//! It is per viewer (about 100 bytes), pure (no clock), and also maps NACKed output sequence
//! numbers back to the source (current and previous epoch).

use crate::media::TrackKind;
use crate::rtp::MediaPacket;
use crate::rtp::ext::{RtmExt, shift_time_values};

/// Output values for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// RTP sequence number to send.
    pub seq: u16,
    /// RTP timestamp to send.
    pub timestamp: u32,
    /// What was added to the source sequence number (also to be added to the
    /// frame-seq-range extension values).
    pub seq_delta: u16,
    /// Output-timeline shift of this packet's epoch in milliseconds (output DTS = source DTS
    /// + shift), for a session that also rewrites the DTS extension.
    pub dts_shift_ms: i64,
}

impl Rewrite {
    /// Patches a copy of `pkt.bytes` (same length) in place: sequence number, timestamp,
    /// optionally SSRC, the frame-seq-range extension if the packet carries one, and the
    /// decoding- and reference-frame-timestamp extensions (stream ids), which share the RTP
    /// timestamp's origin and so move with it. Returns false (and leaves `buf` partly patched)
    /// if `buf` is too short for what `pkt` says or its extension block is malformed.
    pub fn apply(&self, pkt: &MediaPacket, buf: &mut [u8], ssrc: Option<u32>) -> bool {
        let ok = put(buf, 2, &self.seq.to_be_bytes()) && put(buf, 4, &self.timestamp.to_be_bytes());
        if !ok {
            return false;
        }
        if let Some(s) = ssrc
            && !put(buf, 8, &s.to_be_bytes())
        {
            return false;
        }
        if let Some(off) = pkt.seq_range_offset {
            let off = usize::from(off);
            for at in [off, off + 2] {
                let Some(v) = buf.get(at..at + 2) else {
                    return false;
                };
                let v = u16::from_be_bytes([v[0], v[1]]).wrapping_add(self.seq_delta);
                if !put(buf, at, &v.to_be_bytes()) {
                    return false;
                }
            }
        }
        let ids = [
            RtmExt::DecodingTimestamp.default_id(),
            RtmExt::ReferenceFrameTimestamp.default_id(),
        ];
        shift_time_values(buf, ids, self.timestamp.wrapping_sub(pkt.timestamp))
    }
}

fn put(buf: &mut [u8], at: usize, v: &[u8]) -> bool {
    match buf.get_mut(at..at + v.len()) {
        Some(d) => {
            d.copy_from_slice(v);
            true
        }
        None => false,
    }
}

/// Where a NACKed output sequence number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceSeq {
    /// The source packet's 16-bit sequence number (for [`crate::hub::Stream::lookup`]).
    pub seq: u16,
    /// It belongs to the previous epoch (after a switch: look it up in the previous stream).
    pub previous_epoch: bool,
}

#[derive(Debug, Clone, Copy)]
struct EpochMap {
    seq_off: u16,
    ts_off: u32,
    first_out: u16,
    /// Number of output sequence numbers used in this epoch.
    count: u32,
    dts_shift_ms: i64,
}

impl EpochMap {
    fn contains(&self, out: u16) -> bool {
        u32::from(out.wrapping_sub(self.first_out)) < self.count
    }
}

#[derive(Debug, Clone, Copy)]
struct Last {
    seq: u16,
    ts: u32,
    out_ms: i64,
}

#[derive(Debug, Clone, Copy, Default)]
struct TrackMap {
    cur: Option<EpochMap>,
    prev: Option<EpochMap>,
    last: Option<Last>,
}

/// Per-viewer continuity of RTP sequence numbers and timestamps across epochs. See the
/// module documentation.
#[derive(Debug, Clone)]
pub struct Continuity {
    clock_hz: [u32; 2],
    tracks: [TrackMap; 2],
    shift_ms: Option<i64>,
    last_out_ms: Option<i64>,
    last_video_dts: Option<i64>,
    frame_gap_ms: i64,
}

fn lane(t: TrackKind) -> usize {
    match t {
        TrackKind::Audio => 0,
        TrackKind::Video => 1,
    }
}

impl Continuity {
    /// `video_clock_hz` is 90 000 for H.264/H.265; `audio_clock_hz` the audio RTP clock
    /// (sample rate, 48 000 for Opus). Every stream a viewer is moved between must use these
    /// clocks (a co-host mix is produced to match its hosts).
    pub fn new(video_clock_hz: u32, audio_clock_hz: u32) -> Self {
        Continuity {
            clock_hz: [audio_clock_hz, video_clock_hz],
            tracks: [TrackMap::default(); 2],
            shift_ms: None,
            last_out_ms: None,
            last_video_dts: None,
            frame_gap_ms: 33,
        }
    }

    /// The packets rewritten next do not follow the previous ones (after
    /// [`crate::hub::Recv::Jumped`] or [`crate::hub::Recv::Switched`]).
    pub fn begin_epoch(&mut self) {
        self.shift_ms = None;
        self.last_video_dts = None;
        for t in &mut self.tracks {
            if let Some(cur) = t.cur.take() {
                t.prev = Some(cur);
            }
        }
    }

    /// Output values for the next packet sent (in delivery order).
    pub fn rewrite(&mut self, pkt: &MediaPacket) -> Rewrite {
        let shift = match self.shift_ms {
            Some(s) => s,
            None => {
                let s = match self.last_out_ms {
                    None => 0,
                    Some(last) => last + self.frame_gap_ms - pkt.dts_ms,
                };
                self.shift_ms = Some(s);
                s
            }
        };
        let out_ms = pkt.dts_ms + shift;
        if pkt.track == TrackKind::Video {
            if let Some(prev) = self.last_video_dts
                && pkt.dts_ms > prev
            {
                self.frame_gap_ms = (pkt.dts_ms - prev).clamp(1, 200);
            }
            self.last_video_dts = Some(pkt.dts_ms);
        }
        self.last_out_ms = Some(self.last_out_ms.map_or(out_ms, |l| l.max(out_ms)));
        let l = lane(pkt.track);
        let clock = i64::from(self.clock_hz[l]);
        let t = &mut self.tracks[l];
        let seq16 = pkt.seq as u16;
        let map = t.cur.get_or_insert_with(|| {
            let (seq_off, ts_off) = match t.last {
                None => (0, 0),
                Some(last) => {
                    let dt_ms = (out_ms - last.out_ms).max(1);
                    let adv = u32::try_from((dt_ms * clock / 1000).max(1)).unwrap_or(u32::MAX);
                    (
                        last.seq.wrapping_add(1).wrapping_sub(seq16),
                        last.ts.wrapping_add(adv).wrapping_sub(pkt.timestamp),
                    )
                }
            };
            EpochMap {
                seq_off,
                ts_off,
                first_out: seq16.wrapping_add(seq_off),
                count: 0,
                dts_shift_ms: shift,
            }
        });
        let seq = seq16.wrapping_add(map.seq_off);
        let used = u32::from(seq.wrapping_sub(map.first_out)) + 1;
        map.count = map.count.max(used);
        let rw = Rewrite {
            seq,
            timestamp: pkt.timestamp.wrapping_add(map.ts_off),
            seq_delta: map.seq_off,
            dts_shift_ms: map.dts_shift_ms,
        };
        let newer = t
            .last
            .is_none_or(|l| (seq.wrapping_sub(l.seq) as i16) > 0 || map.count == 1);
        if newer {
            t.last = Some(Last {
                seq,
                ts: rw.timestamp,
                out_ms,
            });
        }
        rw
    }

    /// Which source packet a NACKed output sequence number of `track` refers to, if it was
    /// sent in the current or the previous epoch.
    pub fn source_seq(&self, track: TrackKind, out_seq: u16) -> Option<SourceSeq> {
        let t = &self.tracks[lane(track)];
        for (map, previous_epoch) in [(t.cur, false), (t.prev, true)] {
            if let Some(m) = map
                && m.contains(out_seq)
            {
                return Some(SourceSeq {
                    seq: out_seq.wrapping_sub(m.seq_off),
                    previous_epoch,
                });
            }
        }
        None
    }

    /// Output values for a retransmission of `pkt` (found via [`Continuity::source_seq`]):
    /// the same values it was first sent with. Does not change any state.
    pub fn retransmission(&self, pkt: &MediaPacket, previous_epoch: bool) -> Option<Rewrite> {
        let t = &self.tracks[lane(pkt.track)];
        let m = if previous_epoch { t.prev } else { t.cur }?;
        let seq = (pkt.seq as u16).wrapping_add(m.seq_off);
        m.contains(seq).then_some(Rewrite {
            seq,
            timestamp: pkt.timestamp.wrapping_add(m.ts_off),
            seq_delta: m.seq_off,
            dts_shift_ms: m.dts_shift_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::media::FrameKind;

    fn pkt(track: TrackKind, seq: u64, ts: u32, dts: i64) -> MediaPacket {
        MediaPacket {
            bytes: Bytes::from_static(&[0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
            track,
            seq,
            timestamp: ts,
            marker: true,
            frame_kind: FrameKind::Inter,
            keyframe_start: false,
            dts_ms: dts,
            seq_range_offset: Some(12),
        }
    }

    #[test]
    fn first_epoch_is_identity() {
        let mut c = Continuity::new(90_000, 48_000);
        let r = c.rewrite(&pkt(TrackKind::Video, 7, 1000, 0));
        assert_eq!((r.seq, r.timestamp, r.seq_delta), (7, 1000, 0));
    }

    #[test]
    fn epoch_change_keeps_seq_and_time_continuous() {
        let mut c = Continuity::new(90_000, 48_000);
        for i in 0..10u32 {
            c.rewrite(&pkt(
                TrackKind::Video,
                100 + u64::from(i),
                90 * 40 * i,
                40 * i64::from(i),
            ));
        }
        // last: seq 109, ts 32400, dts 360 ms
        c.begin_epoch();
        let r = c.rewrite(&pkt(TrackKind::Video, 60_000, 5, 1_000_000));
        assert_eq!(r.seq, 110);
        // one frame interval (40 ms) later on a 90 kHz clock
        assert_eq!(r.timestamp, 32_400 + 3_600);
        let r2 = c.rewrite(&pkt(TrackKind::Video, 60_001, 5 + 3_600, 1_000_040));
        assert_eq!((r2.seq, r2.timestamp), (111, 32_400 + 7_200));
        // NACK mapping of both epochs
        assert_eq!(
            c.source_seq(TrackKind::Video, 111),
            Some(SourceSeq {
                seq: 60_001,
                previous_epoch: false
            })
        );
        assert_eq!(
            c.source_seq(TrackKind::Video, 105),
            Some(SourceSeq {
                seq: 105,
                previous_epoch: true
            })
        );
        assert_eq!(c.source_seq(TrackKind::Video, 112), None);
        let again = c
            .retransmission(&pkt(TrackKind::Video, 60_001, 5 + 3_600, 1_000_040), false)
            .unwrap();
        assert_eq!(again, r2);
    }

    #[test]
    fn apply_patches_header_and_range() {
        let p = pkt(TrackKind::Video, 1, 0, 0);
        let mut buf = p.bytes.to_vec();
        buf[12..16].copy_from_slice(&[0xff, 0xff, 0x00, 0x02]);
        let rw = Rewrite {
            seq: 0x1234,
            timestamp: 0xdead_beef,
            seq_delta: 3,
            dts_shift_ms: 0,
        };
        assert!(rw.apply(&p, &mut buf, Some(0x0102_0304)));
        assert_eq!(
            &buf[2..12],
            &[0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]
        );
        assert_eq!(&buf[12..16], &[0x00, 0x02, 0x00, 0x05]);
        assert!(!rw.apply(&p, &mut buf[..10], None));
    }

    #[test]
    fn apply_moves_the_time_extensions_with_the_timestamp() {
        // Two-byte block: 18 (DTS) = 0x0F00, 23 (reference) = 0x0E00.
        let mut b = vec![0x90, 96, 0, 1, 0, 0, 0x0F, 0x30, 0, 0, 0, 1];
        b.extend_from_slice(&[0x10, 0x00, 0, 3]);
        b.extend_from_slice(&[18, 4, 0, 0, 0x0F, 0, 23, 4, 0, 0, 0x0E, 0]);
        let p = MediaPacket {
            bytes: Bytes::from(b),
            seq_range_offset: None,
            timestamp: 0x0F30,
            ..pkt(TrackKind::Video, 1, 0x0F30, 0)
        };
        let rw = Rewrite {
            seq: 9,
            timestamp: 0x1030,
            seq_delta: 8,
            dts_shift_ms: 0,
        };
        let mut buf = p.bytes.to_vec();
        assert!(rw.apply(&p, &mut buf, None));
        assert_eq!(&buf[18..22], &[0, 0, 0x10, 0], "DTS + 0x100");
        assert_eq!(&buf[24..28], &[0, 0, 0x0F, 0], "reference + 0x100");
    }
}
