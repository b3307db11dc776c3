//! Simulated rendering: frames released by the jitter buffer are presented on their PTS
//! schedule, B-frames reordered, audio and video on one media clock.
//!
//! No real display is involved; what matters for QA is *when* a real player could have shown
//! each frame. A frame is presentable once no later-decoded frame can precede it: since every
//! frame has PTS ≥ DTS and DTS never decreases, a frame with PTS `p` is safe to present as soon
//! as a frame with DTS ≥ `p` has been released (or the stream ended). It is presented at
//! `max(due, available)` where `due` follows the media clock; if it is late, the clock is
//! re-based (the player paused), and a render gap over the stall threshold counts as a stall.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rtmlive::media::TrackKind;

/// Tencent's definition, widely used by QA: a render gap over 200 ms is a stall.
pub const STALL_THRESHOLD: Duration = Duration::from_millis(200);

/// One presented frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    pub track: TrackKind,
    pub pts_ms: i64,
    pub at: Instant,
}

/// Stall and order statistics of one track's presentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlayoutStats {
    pub frames_presented: u64,
    pub stalls: u64,
    pub stall_time_ms: f64,
    /// Presented frames whose PTS was not above the previous one (must stay 0).
    pub out_of_order: u64,
    /// Wall time from the first to the last presentation.
    pub played_ms: f64,
}

#[derive(Debug)]
struct Track {
    /// Released, not yet presented: min-heap on PTS.
    pending: BinaryHeap<Reverse<i64>>,
    max_dts: Option<i64>,
    last: Option<(i64, Instant)>,
    first_at: Option<Instant>,
    stats: PlayoutStats,
}

impl Track {
    fn new() -> Self {
        Self {
            pending: BinaryHeap::new(),
            max_dts: None,
            last: None,
            first_at: None,
            stats: PlayoutStats::default(),
        }
    }
}

/// The shared media clock: media time `pts0` is shown at wall time `t0`.
#[derive(Debug, Clone, Copy)]
struct Clock {
    t0: Instant,
    pts0: i64,
}

impl Clock {
    fn due(&self, pts: i64) -> Instant {
        let off = pts - self.pts0;
        if off >= 0 {
            self.t0 + Duration::from_millis(off as u64)
        } else {
            self.t0
                .checked_sub(Duration::from_millis(off.unsigned_abs()))
                .unwrap_or(self.t0)
        }
    }
}

/// Presentation of one session's audio and video.
#[derive(Debug)]
pub struct Playout {
    video: Track,
    audio: Track,
    clock: Option<Clock>,
    /// Extra delay a player adds before its first frame (a start-up buffer). Zero = show the
    /// first frame the moment it is decodable, which is what first-frame time measures.
    startup_buffer: Duration,
    presented: Vec<Presented>,
    keep_log: bool,
}

impl Playout {
    /// `keep_log` records every presentation (tests, charts); load mode keeps only counters.
    pub fn new(startup_buffer: Duration, keep_log: bool) -> Self {
        Self {
            video: Track::new(),
            audio: Track::new(),
            clock: None,
            startup_buffer,
            presented: Vec::new(),
            keep_log,
        }
    }

    fn track(&mut self, t: TrackKind) -> &mut Track {
        match t {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        }
    }

    /// A frame released (in decode order) at `now`. Presents whatever became presentable;
    /// returns how many frames were presented.
    pub fn push(&mut self, track: TrackKind, dts_ms: i64, pts_ms: i64, now: Instant) -> usize {
        let t = self.track(track);
        t.pending.push(Reverse(pts_ms));
        t.max_dts = Some(t.max_dts.map_or(dts_ms, |d| d.max(dts_ms)));
        self.present_ready(track, now, false)
    }

    /// End of stream: present everything still held for reordering.
    pub fn flush(&mut self, now: Instant) {
        self.present_ready(TrackKind::Video, now, true);
        self.present_ready(TrackKind::Audio, now, true);
    }

    fn present_ready(&mut self, track: TrackKind, now: Instant, flush: bool) -> usize {
        let mut n = 0;
        loop {
            let t = self.track(track);
            let Some(&Reverse(pts)) = t.pending.peek() else {
                break;
            };
            if !flush && t.max_dts.is_none_or(|d| d < pts) {
                break;
            }
            t.pending.pop();
            self.present(track, pts, now);
            n += 1;
        }
        n
    }

    fn present(&mut self, track: TrackKind, pts: i64, available: Instant) {
        let clock = *self.clock.get_or_insert(Clock {
            t0: available + self.startup_buffer,
            pts0: pts,
        });
        let due = clock.due(pts);
        let at = due.max(available);
        if at > due {
            // Late: the player waited. Re-base the clock so later frames keep their spacing.
            self.clock = Some(Clock { t0: at, pts0: pts });
        }
        let keep = self.keep_log;
        let t = self.track(track);
        if let Some((last_pts, last_at)) = t.last {
            if pts <= last_pts {
                t.stats.out_of_order += 1;
            }
            let gap = at.saturating_duration_since(last_at);
            if gap > STALL_THRESHOLD {
                t.stats.stalls += 1;
                t.stats.stall_time_ms += gap.as_secs_f64() * 1000.0;
            }
        }
        t.last = Some((pts, at));
        let first = *t.first_at.get_or_insert(at);
        t.stats.frames_presented += 1;
        t.stats.played_ms = at.saturating_duration_since(first).as_secs_f64() * 1000.0;
        if keep {
            self.presented.push(Presented {
                track,
                pts_ms: pts,
                at,
            });
        }
    }

    pub fn stats(&self, track: TrackKind) -> PlayoutStats {
        match track {
            TrackKind::Video => self.video.stats,
            TrackKind::Audio => self.audio.stats,
        }
    }

    /// Every presentation so far, in the order they happened (when `keep_log`).
    pub fn log(&self) -> &[Presented] {
        &self.presented
    }

    /// Video frames waiting for reordering.
    pub fn held(&self) -> usize {
        self.video.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b_frames_are_presented_in_pts_order() {
        // Decode order I0 P3 B1 B2 P6 B4 B5 (PTS in frame units of 40 ms).
        let dec = [(0, 0), (1, 3), (2, 1), (3, 2), (4, 6), (5, 4), (6, 5)];
        let t0 = Instant::now();
        let mut p = Playout::new(Duration::ZERO, true);
        for (i, (d, pts)) in dec.iter().enumerate() {
            // DTS shifted so that PTS ≥ DTS, as muxers do.
            p.push(
                TrackKind::Video,
                (d - 1) * 40,
                pts * 40,
                t0 + Duration::from_millis(i as u64),
            );
        }
        p.flush(t0 + Duration::from_millis(10));
        let order: Vec<i64> = p.log().iter().map(|x| x.pts_ms / 40).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(p.stats(TrackKind::Video).out_of_order, 0);
        let at: Vec<Instant> = p.log().iter().map(|x| x.at).collect();
        assert!(
            at.windows(2)
                .all(|w| w[1] - w[0] == Duration::from_millis(40))
        );
    }

    #[test]
    fn a_late_frame_is_a_stall_and_rebases_the_clock() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Playout::new(Duration::ZERO, true);
        p.push(TrackKind::Video, 0, 0, t0);
        p.push(TrackKind::Video, 40, 40, t0 + ms(10));
        // Frame 80 arrives 500 ms late (waiting for a retransmission).
        p.push(TrackKind::Video, 80, 80, t0 + ms(580));
        p.push(TrackKind::Video, 120, 120, t0 + ms(581));
        let s = p.stats(TrackKind::Video);
        assert_eq!(s.stalls, 1);
        assert!((s.stall_time_ms - 540.0).abs() < 1.0, "{}", s.stall_time_ms);
        assert_eq!(p.log()[3].at, t0 + ms(620), "spacing kept after the stall");
    }

    #[test]
    fn smooth_stream_has_no_stall() {
        let t0 = Instant::now();
        let mut p = Playout::new(Duration::ZERO, false);
        for i in 0..100i64 {
            p.push(
                TrackKind::Audio,
                i * 21,
                i * 21,
                t0 + Duration::from_millis(i as u64 * 21),
            );
            p.push(
                TrackKind::Video,
                i * 33,
                i * 33,
                t0 + Duration::from_millis(i as u64 * 33),
            );
        }
        assert_eq!(p.stats(TrackKind::Video).stalls, 0);
        assert_eq!(p.stats(TrackKind::Audio).stalls, 0);
    }
}
