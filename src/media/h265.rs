//! H.265 (ITU-T H.265) syntax the edge needs: the two-byte NAL unit header, IRAP detection,
//! VPS/SPS/PPS ids, SPS resolution and general profile/tier/level (for SDP and the hvcC record),
//! the PPS flags that shape the slice header, and the slice header up to `slice_type` (to tell
//! P from B pictures). Also the HEVCDecoderConfigurationRecord (`hvcC`, ISO 14496-15 8.3.3).
//!
//! Hand-written and minimal: every path returns [`H265Error`] on malformed input.

use bytes::{BufMut, Bytes, BytesMut};

use super::bits::{BitReader, BitsError, unescape_rbsp};

/// NAL unit types that matter to the edge.
pub mod nal_type {
    /// First IRAP type (BLA_W_LP); IRAP pictures are 16..=23.
    pub const BLA_W_LP: u8 = 16;
    pub const IDR_W_RADL: u8 = 19;
    pub const IDR_N_LP: u8 = 20;
    pub const CRA: u8 = 21;
    pub const RSV_IRAP_23: u8 = 23;
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
    pub const AUD: u8 = 35;
    pub const PREFIX_SEI: u8 = 39;
    pub const SUFFIX_SEI: u8 = 40;
}

/// Why an H.265 structure could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum H265Error {
    #[error("NAL unit shorter than its 2-byte header")]
    ShortNal,
    #[error("NAL unit type {found} where {expected} was expected")]
    UnexpectedNalType { expected: u8, found: u8 },
    #[error("bitstream: {0}")]
    Bits(#[from] BitsError),
    #[error("{field} out of range: {value}")]
    OutOfRange { field: &'static str, value: u32 },
    #[error("hvcC record truncated")]
    HvcCTruncated,
    #[error("hvcC version {0} unsupported")]
    HvcCVersion(u8),
    #[error("hvcC needs an SPS")]
    HvcCNoSps,
}

/// The two-byte NAL unit header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NalHeader {
    pub nal_type: u8,
    pub layer_id: u8,
    pub temporal_id_plus1: u8,
}

impl NalHeader {
    pub fn parse(nal: &[u8]) -> Result<Self, H265Error> {
        let [a, b, ..] = *nal else {
            return Err(H265Error::ShortNal);
        };
        Ok(Self {
            nal_type: (a >> 1) & 0x3f,
            layer_id: ((a & 1) << 5) | (b >> 3),
            temporal_id_plus1: b & 7,
        })
    }

    /// Parses the header of a NAL unit that must be of type `expected` (a VPS, SPS or PPS).
    fn expect(nal: &[u8], expected: u8) -> Result<Self, H265Error> {
        let h = Self::parse(nal)?;
        if h.nal_type != expected {
            return Err(H265Error::UnexpectedNalType {
                expected,
                found: h.nal_type,
            });
        }
        Ok(h)
    }
}

/// The type of a NAL unit (0 when shorter than a byte).
pub fn nal_type_of(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// Whether a NAL unit type is an intra random access point (BLA, IDR, CRA): decoding can start.
pub fn is_irap(nal_type: u8) -> bool {
    (nal_type::BLA_W_LP..=nal_type::RSV_IRAP_23).contains(&nal_type)
}

/// Whether a NAL unit type is a coded slice segment (VCL).
pub fn is_vcl(nal_type: u8) -> bool {
    nal_type < 32
}

fn ue_max(r: &mut BitReader<'_>, field: &'static str, max: u32) -> Result<u32, H265Error> {
    let value = r.read_ue()?;
    if value > max {
        return Err(H265Error::OutOfRange { field, value });
    }
    Ok(value)
}

fn rbsp(nal: &[u8], max: usize) -> Vec<u8> {
    unescape_rbsp(nal.get(2..).unwrap_or_default(), max)
}

/// The general part of `profile_tier_level()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileTierLevel {
    pub profile_space: u8,
    pub tier_flag: bool,
    pub profile_idc: u8,
    pub compatibility_flags: u32,
    /// progressive/interlaced/non-packed/frame-only flags and the 44 reserved/constraint bits.
    pub constraint_flags: u64,
    pub level_idc: u8,
}

fn parse_ptl(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: u32,
) -> Result<ProfileTierLevel, H265Error> {
    let profile_space = r.read_bits(2)? as u8;
    let tier_flag = r.read_flag()?;
    let profile_idc = r.read_bits(5)? as u8;
    let compatibility_flags = r.read_bits(32)?;
    let constraint_flags = (u64::from(r.read_bits(16)?) << 32) | u64::from(r.read_bits(32)?);
    let level_idc = r.read_u8()?;
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    for i in 0..max_sub_layers_minus1 as usize {
        profile_present[i] = r.read_flag()?;
        level_present[i] = r.read_flag()?;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1 as usize))?;
    }
    for i in 0..max_sub_layers_minus1 as usize {
        if profile_present[i] {
            r.skip(88)?;
        }
        if level_present[i] {
            r.skip(8)?;
        }
    }
    Ok(ProfileTierLevel {
        profile_space,
        tier_flag,
        profile_idc,
        compatibility_flags,
        constraint_flags,
        level_idc,
    })
}

/// The first field of a VPS: its id.
pub fn vps_id(nal: &[u8]) -> Result<u32, H265Error> {
    NalHeader::expect(nal, nal_type::VPS)?;
    let b = nal.get(2).ok_or(H265Error::Bits(BitsError::Eof))?;
    Ok(u32::from(b >> 4))
}

/// The fields of a sequence parameter set the edge uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    pub vps_id: u32,
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    pub ptl: ProfileTierLevel,
    pub sps_id: u32,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Displayed size after the conformance window.
    pub width: u32,
    pub height: u32,
}

impl Sps {
    pub fn parse(nal: &[u8]) -> Result<Self, H265Error> {
        NalHeader::expect(nal, nal_type::SPS)?;
        let data = rbsp(nal, 256);
        let mut r = BitReader::new(&data);
        let vps_id = r.read_bits(4)?;
        let max_sub_layers_minus1 = r.read_bits(3)?;
        if max_sub_layers_minus1 > 6 {
            return Err(H265Error::OutOfRange {
                field: "sps_max_sub_layers_minus1",
                value: max_sub_layers_minus1,
            });
        }
        let temporal_id_nesting = r.read_flag()?;
        let ptl = parse_ptl(&mut r, max_sub_layers_minus1)?;
        let sps_id = ue_max(&mut r, "sps_seq_parameter_set_id", 15)?;
        let chroma_format_idc = ue_max(&mut r, "chroma_format_idc", 3)?;
        let mut separate_colour_plane = false;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.read_flag()?;
        }
        let mut width = ue_max(&mut r, "pic_width_in_luma_samples", 16888)?;
        let mut height = ue_max(&mut r, "pic_height_in_luma_samples", 16888)?;
        if r.read_flag()? {
            let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
                (1, false) => (2, 2),
                (2, false) => (2, 1),
                _ => (1, 1),
            };
            let left = r.read_ue()?;
            let right = r.read_ue()?;
            let top = r.read_ue()?;
            let bottom = r.read_ue()?;
            let cw = left.saturating_add(right).saturating_mul(sub_w);
            let ch = top.saturating_add(bottom).saturating_mul(sub_h);
            width = width.checked_sub(cw).ok_or(H265Error::OutOfRange {
                field: "conf_win_offset",
                value: cw,
            })?;
            height = height.checked_sub(ch).ok_or(H265Error::OutOfRange {
                field: "conf_win_offset",
                value: ch,
            })?;
        }
        if width == 0 || height == 0 {
            return Err(H265Error::OutOfRange {
                field: "picture size",
                value: 0,
            });
        }
        let bit_depth_luma = 8 + ue_max(&mut r, "bit_depth_luma_minus8", 8)? as u8;
        let bit_depth_chroma = 8 + ue_max(&mut r, "bit_depth_chroma_minus8", 8)? as u8;
        Ok(Self {
            vps_id,
            max_sub_layers: max_sub_layers_minus1 as u8 + 1,
            temporal_id_nesting,
            ptl,
            sps_id,
            chroma_format_idc,
            bit_depth_luma,
            bit_depth_chroma,
            width,
            height,
        })
    }
}

/// The PPS fields the slice header depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pps {
    pub pps_id: u32,
    pub sps_id: u32,
    pub dependent_slice_segments_enabled: bool,
    pub output_flag_present: bool,
    pub num_extra_slice_header_bits: u8,
}

impl Pps {
    pub fn parse(nal: &[u8]) -> Result<Self, H265Error> {
        NalHeader::expect(nal, nal_type::PPS)?;
        let data = rbsp(nal, 16);
        let mut r = BitReader::new(&data);
        let pps_id = ue_max(&mut r, "pps_pic_parameter_set_id", 63)?;
        let sps_id = ue_max(&mut r, "pps_seq_parameter_set_id", 15)?;
        let dependent_slice_segments_enabled = r.read_flag()?;
        let output_flag_present = r.read_flag()?;
        let num_extra_slice_header_bits = r.read_bits(3)? as u8;
        Ok(Self {
            pps_id,
            sps_id,
            dependent_slice_segments_enabled,
            output_flag_present,
            num_extra_slice_header_bits,
        })
    }
}

/// H.265 slice types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceType {
    B,
    P,
    I,
}

/// The start of a slice segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceHeader {
    pub first_slice_segment_in_pic: bool,
    pub pps_id: u32,
    /// Present for the first slice segment of a picture (the only one the edge needs: it
    /// classifies the picture), `None` for later segments, whose address needs the SPS.
    pub slice_type: Option<SliceType>,
}

impl SliceHeader {
    /// Parses a slice segment header. `pps` resolves the PPS it references (by id).
    pub fn parse(nal: &[u8], pps: impl Fn(u32) -> Option<Pps>) -> Result<Self, H265Error> {
        let h = NalHeader::parse(nal)?;
        if !is_vcl(h.nal_type) {
            return Err(H265Error::UnexpectedNalType {
                expected: 1,
                found: h.nal_type,
            });
        }
        let data = rbsp(nal, 32);
        let mut r = BitReader::new(&data);
        let first = r.read_flag()?;
        if is_irap(h.nal_type) {
            r.skip(1)?; // no_output_of_prior_pics_flag
        }
        let pps_id = ue_max(&mut r, "slice_pic_parameter_set_id", 63)?;
        if !first {
            return Ok(Self {
                first_slice_segment_in_pic: false,
                pps_id,
                slice_type: None,
            });
        }
        let p = pps(pps_id).ok_or(H265Error::OutOfRange {
            field: "unknown slice_pic_parameter_set_id",
            value: pps_id,
        })?;
        r.skip(usize::from(p.num_extra_slice_header_bits))?;
        let slice_type = match ue_max(&mut r, "slice_type", 2)? {
            0 => SliceType::B,
            1 => SliceType::P,
            _ => SliceType::I,
        };
        Ok(Self {
            first_slice_segment_in_pic: true,
            pps_id,
            slice_type: Some(slice_type),
        })
    }
}

/// The HEVCDecoderConfigurationRecord (`hvcC`): the fields the edge uses plus the NAL arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    pub profile_idc: u8,
    pub tier_flag: bool,
    pub level_idc: u8,
    /// Bytes of the NAL length prefix in samples (1, 2 or 4).
    pub length_size: u8,
    /// Parameter sets and SEI in record order, each a zero-copy slice of the input.
    pub nalus: Vec<Bytes>,
}

impl HevcConfig {
    pub fn parse(data: &Bytes) -> Result<Self, H265Error> {
        let t = H265Error::HvcCTruncated;
        let head = data.get(..23).ok_or(t.clone())?;
        if head[0] != 1 {
            return Err(H265Error::HvcCVersion(head[0]));
        }
        let profile_idc = head[1] & 0x1f;
        let tier_flag = head[1] & 0x20 != 0;
        let level_idc = head[12];
        let length_size = (head[21] & 3) + 1;
        if length_size == 3 {
            return Err(H265Error::OutOfRange {
                field: "lengthSizeMinusOne",
                value: 2,
            });
        }
        let num_arrays = head[22];
        let mut pos = 23usize;
        let mut nalus = Vec::new();
        let byte = |pos: usize| data.get(pos).copied().ok_or(H265Error::HvcCTruncated);
        for _ in 0..num_arrays {
            let _array_type = byte(pos)?;
            let count = usize::from(byte(pos + 1)?) << 8 | usize::from(byte(pos + 2)?);
            pos += 3;
            for _ in 0..count {
                let len = usize::from(byte(pos)?) << 8 | usize::from(byte(pos + 1)?);
                pos += 2;
                let end = pos + len;
                if end > data.len() {
                    return Err(t);
                }
                nalus.push(data.slice(pos..end));
                pos = end;
            }
        }
        Ok(Self {
            profile_idc,
            tier_flag,
            level_idc,
            length_size,
            nalus,
        })
    }

    /// Builds an hvcC record (4-byte NAL lengths) from parameter sets in VPS, SPS, PPS order.
    /// The profile/tier/level fields are copied from the first SPS.
    pub fn build(parameter_sets: &[Bytes]) -> Result<Bytes, H265Error> {
        let sps_nal = parameter_sets
            .iter()
            .find(|n| nal_type_of(n) == nal_type::SPS)
            .ok_or(H265Error::HvcCNoSps)?;
        let sps = Sps::parse(sps_nal)?;
        let ptl = sps.ptl;
        let mut out = BytesMut::new();
        out.put_u8(1);
        out.put_u8(ptl.profile_space << 6 | u8::from(ptl.tier_flag) << 5 | ptl.profile_idc);
        out.put_u32(ptl.compatibility_flags);
        out.put_slice(&ptl.constraint_flags.to_be_bytes()[2..]);
        out.put_u8(ptl.level_idc);
        out.put_u16(0xf000); // min_spatial_segmentation_idc = 0
        out.put_u8(0xfc); // parallelismType = 0 (unknown)
        out.put_u8(0xfc | (sps.chroma_format_idc as u8 & 3));
        out.put_u8(0xf8 | (sps.bit_depth_luma.saturating_sub(8) & 7));
        out.put_u8(0xf8 | (sps.bit_depth_chroma.saturating_sub(8) & 7));
        out.put_u16(0); // avgFrameRate unknown
        out.put_u8((sps.max_sub_layers & 7) << 3 | u8::from(sps.temporal_id_nesting) << 2 | 3);
        let mut arrays: Vec<(u8, Vec<&Bytes>)> = Vec::new();
        for nal in parameter_sets {
            let t = nal_type_of(nal);
            match arrays.iter_mut().find(|(at, _)| *at == t) {
                Some((_, v)) => v.push(nal),
                None => arrays.push((t, vec![nal])),
            }
        }
        out.put_u8(
            u8::try_from(arrays.len()).map_err(|_| H265Error::OutOfRange {
                field: "numOfArrays",
                value: 256,
            })?,
        );
        for (t, nals) in arrays {
            out.put_u8(0x80 | t); // array_completeness = 1: all sets of the type are here
            out.put_u16(
                u16::try_from(nals.len()).map_err(|_| H265Error::OutOfRange {
                    field: "numNalus",
                    value: u32::MAX,
                })?,
            );
            for n in nals {
                out.put_u16(u16::try_from(n.len()).map_err(|_| H265Error::OutOfRange {
                    field: "nalUnitLength",
                    value: u32::MAX,
                })?);
                out.put_slice(n);
            }
        }
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // VPS/SPS/PPS of tests/fixtures/hevc_enhanced_aac.flv (libx265, 320x240 main, level 2).
    pub(crate) const VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x90, 0x09,
    ];
    pub(crate) const SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x59, 0x59, 0x24, 0x93, 0x2b, 0xc0, 0x5a,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10,
    ];
    pub(crate) const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

    #[test]
    fn parses_parameter_sets() {
        assert_eq!(vps_id(VPS), Ok(0));
        let sps = Sps::parse(SPS).unwrap();
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(sps.ptl.profile_idc, 1);
        assert_eq!(sps.ptl.level_idc, 60);
        assert!(!sps.ptl.tier_flag);
        let pps = Pps::parse(PPS).unwrap();
        assert_eq!((pps.pps_id, pps.sps_id), (0, 0));
    }

    #[test]
    fn irap_range() {
        assert!(is_irap(nal_type::IDR_W_RADL));
        assert!(is_irap(nal_type::CRA));
        assert!(!is_irap(1));
        assert!(!is_irap(nal_type::VPS));
    }

    #[test]
    fn hvcc_round_trip() {
        let sets = vec![
            Bytes::from_static(VPS),
            Bytes::from_static(SPS),
            Bytes::from_static(PPS),
        ];
        let rec = HevcConfig::build(&sets).unwrap();
        let parsed = HevcConfig::parse(&rec).unwrap();
        assert_eq!(parsed.nalus, sets);
        assert_eq!(
            (parsed.profile_idc, parsed.level_idc, parsed.length_size),
            (1, 60, 4)
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Sps::parse(&[0x42]).is_err());
        assert!(Sps::parse(&[0x42, 0x01, 0xff]).is_err());
        assert!(HevcConfig::parse(&Bytes::from_static(&[1; 30])).is_err());
        assert!(SliceHeader::parse(&[0x02, 0x01, 0x80], |_| None).is_err());
    }
}
