//! H.265 payload format, RFC 7798, without DONL (`sprop-max-don-diff` = 0): single NAL unit
//! packets, aggregation packets (AP) for VPS/SPS/PPS, fragmentation units (FU).

use bytes::{BufMut, Bytes, BytesMut};

use super::video::NalCodec;

/// NAL unit type of an aggregation packet.
pub const AP: u8 = 48;
/// NAL unit type of a fragmentation unit.
pub const FU: u8 = 49;
/// NAL unit type of a PACI packet (not produced; rejected by the depacketizer).
pub const PACI: u8 = 50;
pub const VPS: u8 = 32;
pub const SPS: u8 = 33;
pub const PPS: u8 = 34;

/// `nal_unit_type` from the first byte of the two-byte NAL unit header.
pub fn nal_type(header0: u8) -> u8 {
    (header0 >> 1) & 0x3F
}

/// Whether a NAL unit type is an IRAP picture (BLA, IDR, CRA: 16..=21), where decoding starts.
pub fn is_irap(t: u8) -> bool {
    (16..=21).contains(&t)
}

pub(crate) struct H265;

impl NalCodec for H265 {
    const HEADER_LEN: usize = 2;
    const FU_OVERHEAD: usize = 3;
    const AGG_HEADER_LEN: usize = 2;
    const AGG_TYPE: u8 = AP;
    const FU_TYPE: u8 = FU;

    fn nal_type(header0: u8) -> u8 {
        nal_type(header0)
    }

    fn is_parameter_set(nal: &[u8]) -> bool {
        matches!(nal.first().map(|&b| nal_type(b)), Some(VPS | SPS | PPS))
    }

    fn can_be_single(nal: &[u8]) -> bool {
        // 48..=63 are payload structures or unspecified: fragment them instead.
        matches!(nal.first().map(|&b| nal_type(b)), Some(0..=47))
    }

    fn write_agg_header(nals: &[Bytes], buf: &mut BytesMut) {
        // F = OR, LayerId = min, TID = min over the aggregated units (RFC 7798 §4.4.2).
        let f = nals.iter().fold(0, |a, n| a | (n[0] & 0x80));
        let layer = nals
            .iter()
            .map(|n| (u16::from(n[0] & 1) << 5) | u16::from(n[1] >> 3))
            .min()
            .unwrap_or(0);
        let tid = nals.iter().map(|n| n[1] & 7).min().unwrap_or(1);
        buf.put_u8(f | (AP << 1) | (layer >> 5) as u8);
        buf.put_u8((((layer & 0x1F) as u8) << 3) | tid);
    }

    fn write_fu_header(nal: &[u8], start: bool, end: bool, buf: &mut BytesMut) {
        buf.put_u8((nal[0] & 0x81) | (FU << 1));
        buf.put_u8(nal[1]);
        buf.put_u8(if start { 0x80 } else { 0 } | if end { 0x40 } else { 0 } | nal_type(nal[0]));
    }

    fn write_unfragmented_header(payload: &[u8], fu_header: u8, buf: &mut BytesMut) {
        // F and LayerId from the payload header, the type from the FU header, TID as is.
        buf.put_u8((payload[0] & 0x81) | ((fu_header & 0x3F) << 1));
        buf.put_u8(payload[1]);
    }
}
