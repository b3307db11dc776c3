//! From a decrypted RTP datagram to the player's [`RtpIn`].
//!
//! Parsing (header, RFC 8285 block, RTM extension values) is `rtmlive::rtp::RtpView`'s job;
//! this adds what only a receiver knows: which track a payload type or SSRC is, and the
//! extension of 32-bit DTS values to milliseconds on a continuous line.

use bytes::Bytes;
use rtmlive::media::TrackKind;
use rtmlive::rtp::clock::{Unwrapper, clock_to_ms};
use rtmlive::rtp::{ExtensionIds, RtpError, RtpView};

use crate::packet::{FrameMeta, RtpIn};

#[derive(Debug, thiserror::Error)]
pub enum RtpInError {
    #[error("malformed RTP packet: {0}")]
    Malformed(#[from] RtpError),
    #[error("RTP packet for unknown payload type {pt} / SSRC {ssrc:#x}")]
    UnknownStream { pt: u8, ssrc: u32 },
}

/// Which payload types / SSRCs carry which track, from the answer.
#[derive(Debug, Clone, Default)]
pub struct TrackMap {
    pub video_pts: Vec<u8>,
    pub audio_pts: Vec<u8>,
    pub video_ssrc: Option<u32>,
    pub audio_ssrc: Option<u32>,
}

impl TrackMap {
    pub fn track_of(&self, pt: u8, ssrc: u32) -> Option<TrackKind> {
        if self.video_ssrc == Some(ssrc) {
            Some(TrackKind::Video)
        } else if self.audio_ssrc == Some(ssrc) {
            Some(TrackKind::Audio)
        } else if self.video_pts.contains(&pt) {
            Some(TrackKind::Video)
        } else if self.audio_pts.contains(&pt) {
            Some(TrackKind::Audio)
        } else {
            None
        }
    }
}

/// Per-session RTP input state.
#[derive(Debug, Clone)]
pub struct RtpInput {
    ids: ExtensionIds,
    tracks: TrackMap,
    audio_clock: u32,
    video_dts: Unwrapper,
    audio_dts: Unwrapper,
}

impl RtpInput {
    /// `ids` are the RTM extension IDs the answer negotiated (none for plain WHEP).
    pub fn new(ids: ExtensionIds, tracks: TrackMap, audio_clock: u32) -> Self {
        Self {
            ids,
            tracks,
            audio_clock: audio_clock.max(1),
            video_dts: Unwrapper::new(),
            audio_dts: Unwrapper::new(),
        }
    }

    pub fn ids(&self) -> &ExtensionIds {
        &self.ids
    }

    pub fn tracks(&self) -> &TrackMap {
        &self.tracks
    }

    /// Parses one decrypted RTP packet.
    pub fn parse(&mut self, data: Bytes) -> Result<RtpIn, RtpInError> {
        let v = RtpView::parse(data, &self.ids)?;
        let track =
            self.tracks
                .track_of(v.payload_type, v.ssrc)
                .ok_or(RtpInError::UnknownStream {
                    pt: v.payload_type,
                    ssrc: v.ssrc,
                })?;
        let (clock, dts) = match track {
            TrackKind::Video => (90_000, &mut self.video_dts),
            TrackKind::Audio => (self.audio_clock, &mut self.audio_dts),
        };
        let meta = FrameMeta {
            dts_ms: v
                .rtm
                .decoding_timestamp
                .map(|d| clock_to_ms(dts.unwrap(d), clock)),
            cts_ms: v
                .rtm
                .composition_time
                .map(|c| clock_to_ms(i64::from(c), clock) as i32),
            seq_range: v.rtm.frame_seq_range.map(|r| (r.first, r.last)),
            kind: v.rtm.frame_type.map(|t| t.kind()),
        };
        Ok(RtpIn {
            track,
            ssrc: v.ssrc,
            seq: v.sequence,
            timestamp: v.timestamp,
            marker: v.marker,
            payload: v.payload,
            raw: v.packet,
            meta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtmlive::media::FrameKind;
    use rtmlive::rtp::{FrameSeqRange, FrameType, RtmExtensions};

    fn packet(ids: &ExtensionIds, ext: &RtmExtensions, pt: u8) -> Bytes {
        let block = ext.to_block(ids).unwrap();
        let mut p = vec![0x90, 0x80 | pt, 0x12, 0x34, 0, 0, 0x0b, 0xb8, 0, 0, 0, 7];
        p.extend_from_slice(&block);
        p.extend_from_slice(&[0x65, 1, 2]);
        Bytes::from(p)
    }

    #[test]
    fn parses_header_extensions_and_maps_track() {
        let ids = ExtensionIds::default();
        let ext = RtmExtensions {
            decoding_timestamp: Some(90_000),
            composition_time: Some(3_000),
            frame_seq_range: Some(FrameSeqRange {
                first: 0x1234,
                last: 0x1236,
            }),
            frame_type: Some(FrameType::B),
            ..RtmExtensions::default()
        };
        let map = TrackMap {
            video_pts: vec![96],
            audio_pts: vec![111],
            ..TrackMap::default()
        };
        let mut input = RtpInput::new(ids, map, 48_000);
        let p = input.parse(packet(&ids, &ext, 96)).unwrap();
        assert_eq!(
            (p.track, p.seq, p.timestamp, p.marker, p.ssrc),
            (TrackKind::Video, 0x1234, 3000, true, 7)
        );
        assert_eq!(&p.payload[..], &[0x65, 1, 2]);
        assert_eq!(p.meta.dts_ms, Some(1000));
        assert_eq!(p.meta.cts_ms, Some(33));
        assert_eq!(p.meta.seq_range, Some((0x1234, 0x1236)));
        assert_eq!(p.meta.kind, Some(FrameKind::B));
        assert!(matches!(
            input.parse(packet(&ids, &ext, 50)),
            Err(RtpInError::UnknownStream { .. })
        ));
        assert!(input.parse(Bytes::from_static(&[0x80, 1])).is_err());
    }
}
