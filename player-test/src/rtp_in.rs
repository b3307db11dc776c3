//! From a decrypted RTP datagram to the player's [`RtpIn`].
//!
//! The RTP header is parsed with `rtc-rtp`; the values of the RTM private extensions are
//! decoded by a [`FrameMetaSource`], so that the wire layouts live in one place
//! (`rtmlive::rtp`) and a session without negotiated extensions (plain WHEP) simply has none.

use bytes::Bytes;
use rtc_rtp::header::Header;
use rtc_rtp::packet::Packet;
use rtc_shared::marshal::Unmarshal;
use rtmlive::media::TrackKind;

use crate::packet::{FrameMeta, RtpIn};

#[derive(Debug, thiserror::Error)]
pub enum RtpInError {
    #[error("malformed RTP packet: {0}")]
    Malformed(String),
    #[error("RTP packet for unknown payload type {pt} / SSRC {ssrc:#x}")]
    UnknownStream { pt: u8, ssrc: u32 },
}

/// Decodes the per-frame metadata the RTM header extensions carry.
pub trait FrameMetaSource: Send {
    fn frame_meta(&self, header: &Header) -> FrameMeta;
}

/// For sessions that negotiated no RTM extensions: reassembly falls back to marker bits and
/// timestamps, the frame type to NAL unit inspection.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExtensions;

impl FrameMetaSource for NoExtensions {
    fn frame_meta(&self, _: &Header) -> FrameMeta {
        FrameMeta::default()
    }
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

/// Parses one decrypted RTP packet.
pub fn parse(
    data: Bytes,
    tracks: &TrackMap,
    meta: &dyn FrameMetaSource,
) -> Result<RtpIn, RtpInError> {
    let mut buf = data;
    let p = Packet::unmarshal(&mut buf).map_err(|e| RtpInError::Malformed(e.to_string()))?;
    let h = &p.header;
    let track = tracks
        .track_of(h.payload_type, h.ssrc)
        .ok_or(RtpInError::UnknownStream {
            pt: h.payload_type,
            ssrc: h.ssrc,
        })?;
    Ok(RtpIn {
        track,
        ssrc: h.ssrc,
        seq: h.sequence_number,
        timestamp: h.timestamp,
        marker: h.marker,
        meta: meta.frame_meta(h),
        payload: p.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_maps_track() {
        let raw = [
            0x80u8,
            0x80 | 96,
            0x12,
            0x34,
            0,
            0,
            0x0b,
            0xb8,
            0,
            0,
            0,
            7,
            0x65,
            1,
            2,
        ];
        let map = TrackMap {
            video_pts: vec![96],
            audio_pts: vec![111],
            ..TrackMap::default()
        };
        let p = parse(Bytes::copy_from_slice(&raw), &map, &NoExtensions).unwrap();
        assert_eq!(
            (p.track, p.seq, p.timestamp, p.marker, p.ssrc),
            (TrackKind::Video, 0x1234, 3000, true, 7)
        );
        assert_eq!(&p.payload[..], &[0x65, 1, 2]);
        assert!(matches!(
            parse(
                Bytes::copy_from_slice(&raw),
                &TrackMap::default(),
                &NoExtensions
            ),
            Err(RtpInError::UnknownStream { .. })
        ));
        assert!(parse(Bytes::from_static(&[0x80, 1]), &map, &NoExtensions).is_err());
    }
}
