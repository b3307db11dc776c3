//! The embedded demo stream (`live/demo`): a committed FLV fixture looped in real time.
//!
//! [`DemoLoop`] is the sans-IO scheduler: the file is demuxed once, then [`DemoLoop::poll`]
//! hands out the events due at `now` and says when the next one is due. Each loop re-sends the
//! sequence headers and offsets every timestamp by the loop period (file duration plus one
//! frame), so timestamps stay continuous and monotonic across loops forever. [`run`] is the
//! thin tokio driver.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media::{DemuxEvent, FlvDemuxer, TrackKind};
use crate::origin::MediaSink;

/// Why the demo fixture cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("reading the demo fixture: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo fixture is not valid FLV: {0}")]
    Flv(#[from] crate::media::FlvError),
    #[error("demo fixture has no frames")]
    Empty,
}

/// A looping, real-time schedule of a demuxed FLV file.
#[derive(Debug, Clone)]
pub struct DemoLoop {
    /// Events of one pass, frame timestamps rebased to start at 0.
    events: Vec<DemuxEvent>,
    /// Due time of each event within a pass, milliseconds (non-frame events take the time of
    /// the frame after them).
    due: Vec<i64>,
    /// Length of one pass: last frame of the longer track plus that track's frame interval.
    period_ms: i64,
    pos: usize,
    pass: i64,
    start: Option<Instant>,
}

impl DemoLoop {
    /// Demuxes a whole FLV file.
    pub fn from_flv(bytes: &[u8]) -> Result<DemoLoop, DemoError> {
        let mut demux = FlvDemuxer::new();
        demux.push(bytes);
        let mut events = Vec::new();
        while let Some(ev) = demux.poll()? {
            events.push(ev);
        }
        Self::from_events(events)
    }

    /// Reads and demuxes an FLV file.
    pub fn from_file(path: &Path) -> Result<DemoLoop, DemoError> {
        Self::from_flv(&std::fs::read(path)?)
    }

    /// Builds the schedule from demuxed events.
    pub fn from_events(mut events: Vec<DemuxEvent>) -> Result<DemoLoop, DemoError> {
        let dts: Vec<(TrackKind, i64)> = events
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) => Some((f.codec.track(), f.dts)),
                _ => None,
            })
            .collect();
        let first = dts.iter().map(|d| d.1).min().ok_or(DemoError::Empty)?;
        let end_of = |track: TrackKind| -> Option<i64> {
            let t: Vec<i64> = dts.iter().filter(|d| d.0 == track).map(|d| d.1).collect();
            let last = *t.last()?;
            // The smallest positive step is the frame interval (robust to jitter and gaps).
            let step = t
                .windows(2)
                .map(|w| w[1] - w[0])
                .filter(|d| *d > 0)
                .min()
                .unwrap_or(40);
            Some(last + step)
        };
        let end = [end_of(TrackKind::Video), end_of(TrackKind::Audio)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(first + 40);
        for e in &mut events {
            if let DemuxEvent::Frame(f) = e {
                f.dts -= first;
            }
        }
        // Due times: a frame at its DTS; anything else with the next frame.
        let mut due = vec![0i64; events.len()];
        let mut next = end - first;
        for (i, e) in events.iter().enumerate().rev() {
            if let DemuxEvent::Frame(f) = e {
                next = f.dts;
            }
            due[i] = next;
        }
        Ok(DemoLoop {
            events,
            due,
            period_ms: (end - first).max(1),
            pos: 0,
            pass: 0,
            start: None,
        })
    }

    /// Length of one pass in milliseconds.
    pub fn period_ms(&self) -> i64 {
        self.period_ms
    }

    /// Appends every event due at `now` (the first call starts the clock) and returns when the
    /// next event is due.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<DemuxEvent>) -> Instant {
        let start = *self.start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start).as_millis() as i64;
        loop {
            let offset = self.pass * self.period_ms;
            let due = self.due[self.pos] + offset;
            if due > elapsed {
                return start + Duration::from_millis(due as u64);
            }
            let mut ev = self.events[self.pos].clone();
            if let DemuxEvent::Frame(f) = &mut ev {
                f.dts += offset;
            }
            out.push(ev);
            self.pos += 1;
            if self.pos == self.events.len() {
                self.pos = 0;
                self.pass += 1;
            }
        }
    }
}

/// Feeds `sink` from `demo` in real time until the task is dropped or aborted.
pub async fn run(mut demo: DemoLoop, sink: Arc<dyn MediaSink>) {
    let mut out = Vec::new();
    loop {
        let next = demo.poll(Instant::now(), &mut out);
        for ev in out.drain(..) {
            sink.on_event(ev);
        }
        tokio::time::sleep_until(next.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{Codec, Frame, FrameData, FrameKind, VideoConfig};

    fn frame(codec: Codec, dts: i64, key: bool) -> DemuxEvent {
        DemuxEvent::Frame(Frame {
            codec,
            kind: match (codec.is_video(), key) {
                (true, true) => FrameKind::Key,
                (true, false) => FrameKind::Inter,
                _ => FrameKind::Audio,
            },
            dts,
            cts: 0,
            data: FrameData::Audio(bytes::Bytes::new()),
        })
    }

    fn config() -> DemuxEvent {
        DemuxEvent::VideoConfig(VideoConfig {
            codec: Codec::H264,
            parameter_sets: vec![],
            width: 2,
            height: 2,
            profile: 66,
            constraints: 0,
            level: 30,
        })
    }

    #[test]
    fn loops_with_monotonic_timestamps_and_resent_headers() {
        let events = vec![
            config(),
            frame(Codec::H264, 1000, true),
            frame(Codec::Aac, 1000, false),
            frame(Codec::Aac, 1023, false),
            frame(Codec::H264, 1040, false),
            frame(Codec::H264, 1080, false),
        ];
        let mut d = DemoLoop::from_events(events).unwrap();
        // Video ends at 80 + 40 = 120; audio at 23 + 23 = 46: period 120.
        assert_eq!(d.period_ms(), 120);
        let t0 = Instant::now();
        let mut out = Vec::new();
        let next = d.poll(t0, &mut out);
        assert_eq!(out.len(), 3, "config + the two frames at 0");
        assert_eq!(next, t0 + Duration::from_millis(23));
        out.clear();
        d.poll(t0 + Duration::from_millis(250), &mut out);
        let video: Vec<i64> = out
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) if f.codec.is_video() => Some(f.dts),
                _ => None,
            })
            .collect();
        assert_eq!(video, [40, 80, 120, 160, 200, 240]);
        let configs = out
            .iter()
            .filter(|e| matches!(e, DemuxEvent::VideoConfig(_)))
            .count();
        assert_eq!(configs, 2, "sequence header re-sent at each loop start");
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(matches!(
            DemoLoop::from_events(vec![config()]),
            Err(DemoError::Empty)
        ));
    }
}
