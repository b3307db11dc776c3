//! The per-viewer header rewrite: what makes one shared packet this viewer's packet.
//!
//! When the viewer sees the stream's own SSRC, payload type, sequence numbers and timestamps
//! (the common case) nothing is rewritten and the shared bytes are copied into the datagram as
//! they are. Otherwise (co-host switch, GOP jump, a different negotiated SSRC/PT, extensions
//! stripped or renumbered for a WHEP viewer) the same single copy patches the header in O(1)
//! at fixed offsets, without reparsing the packet.

use bytes::BytesMut;

use super::SrtpError;
use crate::rtp::MediaPacket;
use crate::rtp::ext::{RtmExt, shift_time_values};
use crate::transport::ext_policy::ExtensionPolicy;

/// How one track's packets are rewritten for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// SSRC the viewer was told in the answer.
    pub ssrc: u32,
    /// Payload type the viewer negotiated.
    pub payload_type: u8,
    /// Added (wrapping) to every sequence number, and to the frame-seq-range values.
    pub seq_offset: u16,
    /// Added (wrapping) to every RTP timestamp.
    pub ts_offset: u32,
}

impl Rewrite {
    /// Whether `pkt` can be protected as is.
    pub(super) fn is_identity_for(&self, pkt: &[u8], ext: &ExtensionPolicy) -> bool {
        ext.is_keep()
            && self.seq_offset == 0
            && self.ts_offset == 0
            && pkt.get(8..12) == Some(&self.ssrc.to_be_bytes()[..])
            && pkt.get(1).map(|b| b & 0x7F) == Some(self.payload_type)
    }

    /// The viewer-side sequence number of a stream sequence number.
    pub fn viewer_seq(&self, stream_seq: u16) -> u16 {
        stream_seq.wrapping_add(self.seq_offset)
    }

    /// The stream sequence number a viewer's NACK refers to.
    pub fn stream_seq(&self, viewer_seq: u16) -> u16 {
        viewer_seq.wrapping_sub(self.seq_offset)
    }

    /// Copies `pkt` into `out` with this rewrite and the extension policy applied.
    pub(super) fn apply(
        &self,
        pkt: &MediaPacket,
        ext: &ExtensionPolicy,
        out: &mut BytesMut,
    ) -> Result<(), SrtpError> {
        let src = &pkt.bytes[..];
        if src.len() < 12 {
            return Err(SrtpError::ShortPacket);
        }
        let range_at = match ext {
            ExtensionPolicy::Keep => {
                out.clear();
                out.extend_from_slice(src);
                pkt.seq_range_offset
            }
            _ => ext
                .copy(src, out, Some(RtmExt::FrameSeqRange.default_id()))
                .map_err(|_| SrtpError::ShortPacket)?
                .and_then(|o| u16::try_from(o).ok()),
        };
        out[1] = (out[1] & 0x80) | (self.payload_type & 0x7F);
        let seq = u16::from_be_bytes([out[2], out[3]]).wrapping_add(self.seq_offset);
        out[2..4].copy_from_slice(&seq.to_be_bytes());
        let ts = u32::from_be_bytes([out[4], out[5], out[6], out[7]]).wrapping_add(self.ts_offset);
        out[4..8].copy_from_slice(&ts.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        if let Some(off) = range_at
            && self.seq_offset != 0
        {
            let o = usize::from(off);
            let range = out
                .get_mut(o..o + 4)
                .ok_or(SrtpError::BadSeqRangeOffset(off))?;
            let first = u16::from_be_bytes([range[0], range[1]]).wrapping_add(self.seq_offset);
            let last = u16::from_be_bytes([range[2], range[3]]).wrapping_add(self.seq_offset);
            range[0..2].copy_from_slice(&first.to_be_bytes());
            range[2..4].copy_from_slice(&last.to_be_bytes());
        }
        if self.ts_offset != 0 {
            // DTS and reference-frame timestamp share the RTP timestamp's origin.
            let ids = [
                ext.viewer_id(RtmExt::DecodingTimestamp.default_id()),
                ext.viewer_id(RtmExt::ReferenceFrameTimestamp.default_id()),
            ];
            if ids != [0, 0] && !shift_time_values(out, ids, self.ts_offset) {
                return Err(SrtpError::ShortPacket);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{FrameKind, TrackKind};
    use bytes::Bytes;

    fn packet(seq_range: bool) -> MediaPacket {
        let mut b = vec![0x90, 96, 0x12, 0x34, 0, 0, 0x10, 0, 0xAA, 0xBB, 0xCC, 0xDD];
        // one-byte extension block: id 21 len 4 (frame-seq-range)
        b.extend_from_slice(&[
            0xBE,
            0xDE,
            0,
            2,
            (21 << 4) | 3,
            0x12,
            0x30,
            0x12,
            0x35,
            0,
            0,
            0,
        ]);
        b.extend_from_slice(&[1, 2, 3, 4]);
        MediaPacket {
            bytes: Bytes::from(b),
            track: TrackKind::Video,
            seq: 0x1234,
            timestamp: 0x1000,
            marker: false,
            frame_kind: FrameKind::Key,
            keyframe_start: true,
            dts_ms: 0,
            seq_range_offset: seq_range.then_some(17),
        }
    }

    #[test]
    fn rewrite_patches_header_and_range() {
        let r = Rewrite {
            ssrc: 0x01020304,
            payload_type: 100,
            seq_offset: 0x10,
            ts_offset: 5,
        };
        let mut s = BytesMut::new();
        let p = packet(true);
        r.apply(&p, &ExtensionPolicy::Keep, &mut s).unwrap();
        assert_eq!(s[1], 100);
        assert_eq!(&s[2..4], &[0x12, 0x44]);
        assert_eq!(&s[4..8], &[0, 0, 0x10, 5]);
        assert_eq!(&s[8..12], &[1, 2, 3, 4]);
        assert_eq!(&s[17..21], &[0x12, 0x40, 0x12, 0x45]);
        assert_eq!(&s[24..], &[1, 2, 3, 4]);
        assert_eq!(r.stream_seq(r.viewer_seq(0xFFFF)), 0xFFFF);
    }

    #[test]
    fn identity_is_detected_and_bad_offset_rejected() {
        let p = packet(false);
        let id = Rewrite {
            ssrc: 0xAABBCCDD,
            payload_type: 96,
            seq_offset: 0,
            ts_offset: 0,
        };
        assert!(id.is_identity_for(&p.bytes, &ExtensionPolicy::Keep));
        assert!(!id.is_identity_for(&p.bytes, &ExtensionPolicy::Strip));
        let mut bad = packet(true);
        bad.seq_range_offset = Some(200);
        let r = Rewrite {
            seq_offset: 1,
            ..id
        };
        assert!(matches!(
            r.apply(&bad, &ExtensionPolicy::Keep, &mut BytesMut::new()),
            Err(SrtpError::BadSeqRangeOffset(200))
        ));
    }

    #[test]
    fn timestamp_offsets_move_the_dts_and_reference_values_too() {
        // Two-byte block: 18 (DTS) = 0x0F00, 19 (CTS) = 0x30, 23 (reference) = 0x0E00.
        let mut b = vec![0x90, 96, 0, 7, 0, 0, 0x0F, 0x30, 0xAA, 0xBB, 0xCC, 0xDD];
        b.extend_from_slice(&[0x10, 0x00, 0, 5]);
        b.extend_from_slice(&[18, 4, 0, 0, 0x0F, 0, 19, 4, 0, 0, 0, 0x30]);
        b.extend_from_slice(&[23, 4, 0, 0, 0x0E, 0, 0, 0]);
        b.extend_from_slice(&[9, 9]);
        let p = MediaPacket {
            bytes: Bytes::from(b),
            seq_range_offset: None,
            ..packet(false)
        };
        let r = Rewrite {
            ssrc: 1,
            payload_type: 96,
            seq_offset: 0,
            ts_offset: 0x100,
        };
        let mut s = BytesMut::new();
        r.apply(&p, &ExtensionPolicy::Keep, &mut s).unwrap();
        assert_eq!(&s[4..8], &[0, 0, 0x10, 0x30], "timestamp");
        assert_eq!(&s[18..22], &[0, 0, 0x10, 0], "DTS");
        assert_eq!(&s[24..28], &[0, 0, 0, 0x30], "CTS unchanged");
        assert_eq!(&s[30..34], &[0, 0, 0x0F, 0], "reference");
        // A viewer that knows DTS as id 3 and did not negotiate the others.
        let remap = ExtensionPolicy::from_pairs(&[(18, 3)]);
        r.apply(&p, &remap, &mut s).unwrap();
        assert_eq!(&s[16..21], &[(3 << 4) | 3, 0, 0, 0x10, 0]);
        // A browser without extensions.
        r.apply(&p, &ExtensionPolicy::Strip, &mut s).unwrap();
        assert_eq!(&s[12..], &[9, 9]);
    }
}
