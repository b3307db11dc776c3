//! H.264 payload format, RFC 6184, packetization-mode 1 (non-interleaved): single NAL unit
//! packets, STAP-A for the parameter sets in front of a keyframe, FU-A for NAL units that do not
//! fit a packet.

use bytes::{BufMut, Bytes, BytesMut};

use super::video::NalCodec;

/// NAL unit type of a STAP-A packet.
pub const STAP_A: u8 = 24;
/// NAL unit type of an FU-A packet.
pub const FU_A: u8 = 28;
/// NAL unit type of an IDR slice.
pub const IDR: u8 = 5;
pub const SPS: u8 = 7;
pub const PPS: u8 = 8;

/// `nal_unit_type` of a NAL unit (its first byte).
pub fn nal_type(header: u8) -> u8 {
    header & 0x1F
}

pub(crate) struct H264;

impl NalCodec for H264 {
    const HEADER_LEN: usize = 1;
    const FU_OVERHEAD: usize = 2;
    const AGG_HEADER_LEN: usize = 1;
    const AGG_TYPE: u8 = STAP_A;
    const FU_TYPE: u8 = FU_A;

    fn nal_type(header0: u8) -> u8 {
        nal_type(header0)
    }

    fn is_parameter_set(nal: &[u8]) -> bool {
        matches!(nal.first().map(|&b| nal_type(b)), Some(SPS | PPS))
    }

    fn can_be_single(nal: &[u8]) -> bool {
        // 0 and 24..=31 would be read as a payload structure (or are undefined): send those in
        // FU-A, whose FU header carries the type unambiguously.
        matches!(nal.first().map(|&b| nal_type(b)), Some(1..=23))
    }

    fn write_agg_header(nals: &[Bytes], buf: &mut BytesMut) {
        // F = OR of the aggregated Fs; NRI = the maximum NRI (RFC 6184 §5.7.1).
        let f = nals.iter().fold(0, |a, n| a | (n[0] & 0x80));
        let nri = nals.iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
        buf.put_u8(f | nri | STAP_A);
    }

    fn write_fu_header(nal: &[u8], start: bool, end: bool, buf: &mut BytesMut) {
        buf.put_u8((nal[0] & 0xE0) | FU_A);
        buf.put_u8(if start { 0x80 } else { 0 } | if end { 0x40 } else { 0 } | nal_type(nal[0]));
    }

    fn write_unfragmented_header(payload: &[u8], fu_header: u8, buf: &mut BytesMut) {
        // F and NRI from the FU indicator, the type from the FU header.
        buf.put_u8((payload[0] & 0xE0) | nal_type(fu_header));
    }
}
