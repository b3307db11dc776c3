//! What every packetizer shares: the track's RTP identity (SSRC, payload type, sequence
//! counter), the extension layout of each packet, and writing the 12-byte header plus the
//! extension block.

use bytes::{BufMut, BytesMut};

use super::{MIN_MAX_PACKET_SIZE, PacketizeError};
use crate::rtp::ext::block::{self, Form};
use crate::rtp::ext::{ExtensionIds, FrameSeqRange, FrameType, RtmExt};

/// Which optional extensions one packet carries (decoding-timestamp and frame-seq-range are
/// on every packet when negotiated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExtSet {
    pub cts: bool,
    pub frame_type: bool,
    pub ref_ts: bool,
    pub aac_config: bool,
}

/// The extension values of one frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameValues<'a> {
    pub dts: u32,
    pub cts: i32,
    pub frame_type: Option<FrameType>,
    pub ref_ts: Option<u32>,
    pub aac_config: &'a [u8],
}

/// Per-track RTP state shared by the video and audio packetizers.
#[derive(Debug, Clone)]
pub(crate) struct Track {
    pub ssrc: u32,
    pub payload_type: u8,
    pub ids: ExtensionIds,
    pub max_packet_size: usize,
    pub next_seq: u64,
}

impl Track {
    pub fn new(
        ssrc: u32,
        payload_type: u8,
        ids: ExtensionIds,
        max_packet_size: usize,
        initial_seq: u64,
    ) -> Result<Track, PacketizeError> {
        ids.validate()?;
        if !(MIN_MAX_PACKET_SIZE..=65535).contains(&max_packet_size) {
            return Err(PacketizeError::BadMaxPacketSize(max_packet_size));
        }
        Ok(Track {
            ssrc,
            payload_type: payload_type & 0x7F,
            ids,
            max_packet_size,
            next_seq: initial_seq,
        })
    }

    /// `(id, value length)` of every extension a packet with `set` carries, in wire order.
    fn elements(
        &self,
        set: ExtSet,
        aac_len: usize,
    ) -> impl Iterator<Item = (RtmExt, u8, usize)> + '_ {
        let wanted = [
            (RtmExt::DecodingTimestamp, true, 4),
            (RtmExt::CompositionTime, set.cts, 4),
            (RtmExt::FrameSeqRange, true, 4),
            (RtmExt::FrameType, set.frame_type, 1),
            (RtmExt::ReferenceFrameTimestamp, set.ref_ts, 4),
            (RtmExt::AacConfig, set.aac_config, aac_len),
        ];
        wanted
            .into_iter()
            .filter(|&(_, on, _)| on)
            .filter_map(|(e, _, len)| self.ids.get(e).map(|id| (e, id, len)))
    }

    /// Header plus extension block bytes of a packet with `set`.
    pub fn overhead(&self, set: ExtSet, aac_len: usize) -> usize {
        let form = Form::for_elements(self.elements(set, aac_len).map(|(_, id, len)| (id, len)));
        12 + block::block_len(form, self.elements(set, aac_len).map(|(_, _, len)| len))
    }

    /// Payload bytes left in a packet with `set`.
    pub fn capacity(&self, set: ExtSet, aac_len: usize) -> usize {
        self.max_packet_size
            .saturating_sub(self.overhead(set, aac_len))
    }

    /// Writes the RTP header and extension block of one packet. Returns the offset (from the
    /// start of the packet) of the frame-seq-range value, when written.
    #[allow(clippy::too_many_arguments)]
    pub fn write_header(
        &self,
        buf: &mut BytesMut,
        seq: u64,
        timestamp: u32,
        marker: bool,
        set: ExtSet,
        vals: &FrameValues<'_>,
        range: FrameSeqRange,
    ) -> Option<u16> {
        let dts = vals.dts.to_be_bytes();
        let cts = vals.cts.to_be_bytes();
        let rng = range.to_bytes();
        let ft = [vals.frame_type.map_or(0, FrameType::to_byte)];
        let rf = vals.ref_ts.unwrap_or(0).to_be_bytes();
        let mut els: [(u8, &[u8]); 6] = [(0, &[]); 6];
        let mut n = 0;
        let mut range_index = None;
        for (e, id, _) in self.elements(set, vals.aac_config.len()) {
            let v: &[u8] = match e {
                RtmExt::DecodingTimestamp => &dts,
                RtmExt::CompositionTime => &cts,
                RtmExt::FrameSeqRange => {
                    range_index = Some(n);
                    &rng
                }
                RtmExt::FrameType => &ft,
                RtmExt::ReferenceFrameTimestamp => &rf,
                RtmExt::AacConfig => vals.aac_config,
            };
            els[n] = (id, v);
            n += 1;
        }
        let els = &els[..n];
        buf.put_u8(0x80 | if n > 0 { 0x10 } else { 0 });
        buf.put_u8(self.payload_type | if marker { 0x80 } else { 0 });
        buf.put_u16(seq as u16);
        buf.put_u32(timestamp);
        buf.put_u32(self.ssrc);
        let form = Form::for_elements(els.iter().map(|(id, v)| (*id, v.len())));
        let mut range_offset = None;
        // Cannot fail: IDs were validated at construction and values are at most 255 bytes
        // (aac-config length is checked when the config is set).
        let _ = block::write_block(form, els, buf, |i, off| {
            if Some(i) == range_index {
                range_offset = Some((12 + off) as u16);
            }
        });
        range_offset
    }
}
