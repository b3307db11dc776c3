//! Keeps a pulled stream's timestamps continuous across upstream switches.
//!
//! Two origins do not share a timestamp base. After a failover the first frame of the new
//! upstream (a keyframe) is placed right after the last delivered frame plus the wall-clock
//! time that passed, and every later frame of that upstream keeps the same offset, so viewers
//! see one gap of real duration and never a jump backwards or far forwards.

use std::time::Instant;

use crate::media::{Frame, TrackKind};

/// Per-stream timestamp mapping (sans-IO: `now` is passed in).
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    offset: i64,
    last_dts: Option<i64>,
    last_wall: Option<Instant>,
    rebase_pending: bool,
    last_audio: Option<i64>,
    last_video: Option<i64>,
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline::default()
    }

    /// Call when a new upstream connection starts delivering: its first frame is rebased.
    pub fn switch_upstream(&mut self) {
        if self.last_dts.is_some() {
            self.rebase_pending = true;
        }
    }

    /// Whether any frame has been delivered (so a switch is a gap).
    pub fn has_delivered(&self) -> bool {
        self.last_dts.is_some()
    }

    /// Maps `frame` onto the stream's timeline.
    pub fn map(&mut self, mut frame: Frame, now: Instant) -> Frame {
        if self.rebase_pending
            && let (Some(last), Some(wall)) = (self.last_dts, self.last_wall)
        {
            let elapsed = now.saturating_duration_since(wall).as_millis() as i64;
            self.offset = last + elapsed.max(1) - frame.dts;
            self.rebase_pending = false;
        }
        frame.dts = frame.dts.saturating_add(self.offset);
        // Never backwards within a track (the interleaving of the new upstream may put an audio
        // frame slightly before the keyframe it was rebased on).
        let last_track = match frame.codec.track() {
            TrackKind::Audio => &mut self.last_audio,
            TrackKind::Video => &mut self.last_video,
        };
        if let Some(l) = *last_track
            && frame.dts < l
        {
            frame.dts = l;
        }
        *last_track = Some(frame.dts);
        self.last_dts = Some(self.last_dts.map_or(frame.dts, |l| l.max(frame.dts)));
        self.last_wall = Some(now);
        frame
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::media::{Codec, FrameData, FrameKind};

    fn frame(codec: Codec, dts: i64) -> Frame {
        Frame {
            codec,
            kind: if codec.is_video() {
                FrameKind::Key
            } else {
                FrameKind::Audio
            },
            dts,
            cts: 0,
            data: FrameData::Audio(bytes::Bytes::new()),
        }
    }

    #[test]
    fn switch_continues_after_wall_gap() {
        let t0 = Instant::now();
        let mut t = Timeline::new();
        assert_eq!(t.map(frame(Codec::H264, 5000), t0).dts, 5000);
        assert_eq!(t.map(frame(Codec::Aac, 5010), t0).dts, 5010);
        t.switch_upstream();
        // New origin starts at 100; 800 ms have passed.
        let t1 = t0 + Duration::from_millis(800);
        assert_eq!(t.map(frame(Codec::H264, 100), t1).dts, 5810);
        assert_eq!(t.map(frame(Codec::H264, 140), t1).dts, 5850);
        // Audio slightly before the keyframe is clamped to stay monotonic per track only if it
        // would go backwards; here 5800 > 5010 so it keeps the offset.
        assert_eq!(t.map(frame(Codec::Aac, 90), t1).dts, 5800);
    }

    #[test]
    fn first_connection_keeps_origin_timestamps() {
        let mut t = Timeline::new();
        t.switch_upstream();
        assert!(!t.has_delivered());
        assert_eq!(t.map(frame(Codec::Aac, 42), Instant::now()).dts, 42);
    }
}
