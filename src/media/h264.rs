//! H.264 (ITU-T H.264 / ISO 14496-10) syntax the edge needs: NAL unit header, the SPS fields
//! that give resolution and `profile-level-id`, PPS ids, the start of the slice header (to tell
//! P from B pictures: a CTS offset alone does not prove a B-frame), and the avcC record
//! (ISO 14496-15) that carries parameter sets in FLV/MP4.
//!
//! Hand-written and minimal on purpose: it reads only what packetization and SDP need, and every
//! path returns [`H264Error`] on malformed input instead of panicking.

use bytes::{BufMut, Bytes, BytesMut};

use super::bits::{BitReader, BitsError, unescape_rbsp};

/// NAL unit types that matter to the edge.
pub mod nal_type {
    pub const SLICE: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
}

/// Why an H.264 structure could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum H264Error {
    #[error("empty NAL unit")]
    EmptyNal,
    #[error("NAL unit type {found} where {expected} was expected")]
    UnexpectedNalType { expected: u8, found: u8 },
    #[error("bitstream: {0}")]
    Bits(#[from] BitsError),
    #[error("{field} out of range: {value}")]
    OutOfRange { field: &'static str, value: u32 },
    #[error("avcC record truncated")]
    AvcCTruncated,
    #[error("avcC version {0} unsupported")]
    AvcCVersion(u8),
    #[error("avcC has no SPS")]
    AvcCNoSps,
}

/// The one-byte NAL unit header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NalHeader {
    pub nal_ref_idc: u8,
    pub nal_type: u8,
}

impl NalHeader {
    pub fn parse(nal: &[u8]) -> Result<Self, H264Error> {
        let b = *nal.first().ok_or(H264Error::EmptyNal)?;
        Ok(Self {
            nal_ref_idc: (b >> 5) & 3,
            nal_type: b & 0x1f,
        })
    }

    /// Parses the header of a NAL unit that must be of type `expected` (an SPS, a PPS).
    fn expect(nal: &[u8], expected: u8) -> Result<Self, H264Error> {
        let h = Self::parse(nal)?;
        if h.nal_type != expected {
            return Err(H264Error::UnexpectedNalType {
                expected,
                found: h.nal_type,
            });
        }
        Ok(h)
    }
}

/// The type of a NAL unit (0 for an empty one).
pub fn nal_type_of(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// The fields of a sequence parameter set the edge uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    pub profile_idc: u8,
    /// The `constraint_set0..5` flags byte, as in `profile-level-id`.
    pub constraints: u8,
    pub level_idc: u8,
    pub sps_id: u32,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Displayed width and height in pixels, after the cropping window.
    pub width: u32,
    pub height: u32,
}

/// Profiles whose SPS carries chroma format and bit depth (7.3.2.1.1).
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: u32) -> Result<(), H264Error> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.read_se()?;
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

fn ue_max(r: &mut BitReader<'_>, field: &'static str, max: u32) -> Result<u32, H264Error> {
    let value = r.read_ue()?;
    if value > max {
        return Err(H264Error::OutOfRange { field, value });
    }
    Ok(value)
}

impl Sps {
    /// Parses an SPS NAL unit (with its header byte, emulation prevention still in place).
    pub fn parse(nal: &[u8]) -> Result<Self, H264Error> {
        NalHeader::expect(nal, nal_type::SPS)?;
        // An SPS is a few dozen bytes; 1 KiB covers any real one (scaling lists included).
        let rbsp = unescape_rbsp(nal.get(1..).unwrap_or_default(), 1024);
        let mut r = BitReader::new(&rbsp);
        let profile_idc = r.read_u8()?;
        let constraints = r.read_u8()?;
        let level_idc = r.read_u8()?;
        let sps_id = ue_max(&mut r, "seq_parameter_set_id", 31)?;
        let mut chroma_format_idc = 1;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma = 8;
        let mut bit_depth_chroma = 8;
        if has_chroma_info(profile_idc) {
            chroma_format_idc = ue_max(&mut r, "chroma_format_idc", 3)?;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.read_flag()?;
            }
            bit_depth_luma = 8 + ue_max(&mut r, "bit_depth_luma_minus8", 6)? as u8;
            bit_depth_chroma = 8 + ue_max(&mut r, "bit_depth_chroma_minus8", 6)? as u8;
            r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
            if r.read_flag()? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.read_flag()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        ue_max(&mut r, "log2_max_frame_num_minus4", 12)?;
        match ue_max(&mut r, "pic_order_cnt_type", 2)? {
            0 => {
                ue_max(&mut r, "log2_max_pic_order_cnt_lsb_minus4", 12)?;
            }
            1 => {
                r.skip(1)?;
                r.read_se()?;
                r.read_se()?;
                let n = ue_max(&mut r, "num_ref_frames_in_pic_order_cnt_cycle", 255)?;
                for _ in 0..n {
                    r.read_se()?;
                }
            }
            _ => {}
        }
        r.read_ue()?; // max_num_ref_frames
        r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = ue_max(&mut r, "pic_width_in_mbs_minus1", 1023)? + 1;
        let height_units = ue_max(&mut r, "pic_height_in_map_units_minus1", 1023)? + 1;
        let frame_mbs_only = r.read_flag()?;
        if !frame_mbs_only {
            r.skip(1)?; // mb_adaptive_frame_field_flag
        }
        r.skip(1)?; // direct_8x8_inference_flag
        let mut width = width_mbs * 16;
        let mut height = height_units * 16 * if frame_mbs_only { 1 } else { 2 };
        if r.read_flag()? {
            let left = r.read_ue()?;
            let right = r.read_ue()?;
            let top = r.read_ue()?;
            let bottom = r.read_ue()?;
            let chroma_array_type = if separate_colour_plane {
                0
            } else {
                chroma_format_idc
            };
            let (sub_w, sub_h) = match chroma_array_type {
                1 => (2, 2),
                2 => (2, 1),
                _ => (1, 1),
            };
            let (unit_x, unit_y) = if chroma_array_type == 0 {
                (1, if frame_mbs_only { 1 } else { 2 })
            } else {
                (sub_w, sub_h * if frame_mbs_only { 1 } else { 2 })
            };
            let crop_w = left.saturating_add(right).saturating_mul(unit_x);
            let crop_h = top.saturating_add(bottom).saturating_mul(unit_y);
            width = width
                .checked_sub(crop_w)
                .filter(|w| *w > 0)
                .ok_or(H264Error::OutOfRange {
                    field: "frame_crop_offset",
                    value: crop_w,
                })?;
            height =
                height
                    .checked_sub(crop_h)
                    .filter(|h| *h > 0)
                    .ok_or(H264Error::OutOfRange {
                        field: "frame_crop_offset",
                        value: crop_h,
                    })?;
        }
        Ok(Self {
            profile_idc,
            constraints,
            level_idc,
            sps_id,
            chroma_format_idc,
            bit_depth_luma,
            bit_depth_chroma,
            width,
            height,
        })
    }

    /// The SDP `profile-level-id` (RFC 6184): profile, constraint flags, level as 6 hex digits.
    pub fn profile_level_id(&self) -> String {
        format!(
            "{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraints, self.level_idc
        )
    }
}

/// The ids of a picture parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pps {
    pub pps_id: u32,
    pub sps_id: u32,
}

impl Pps {
    pub fn parse(nal: &[u8]) -> Result<Self, H264Error> {
        NalHeader::expect(nal, nal_type::PPS)?;
        let rbsp = unescape_rbsp(nal.get(1..).unwrap_or_default(), 16);
        let mut r = BitReader::new(&rbsp);
        let pps_id = ue_max(&mut r, "pic_parameter_set_id", 255)?;
        let sps_id = ue_max(&mut r, "seq_parameter_set_id", 31)?;
        Ok(Self { pps_id, sps_id })
    }
}

/// H.264 slice types (`slice_type % 5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceType {
    P,
    B,
    I,
    Sp,
    Si,
}

/// The first fields of a slice header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceHeader {
    pub first_mb_in_slice: u32,
    pub slice_type: SliceType,
    pub pps_id: u32,
}

impl SliceHeader {
    /// Parses the slice header start of a coded slice NAL unit (types 1 and 5).
    pub fn parse(nal: &[u8]) -> Result<Self, H264Error> {
        let h = NalHeader::parse(nal)?;
        if h.nal_type != nal_type::SLICE && h.nal_type != nal_type::IDR {
            return Err(H264Error::UnexpectedNalType {
                expected: nal_type::SLICE,
                found: h.nal_type,
            });
        }
        let rbsp = unescape_rbsp(nal.get(1..).unwrap_or_default(), 32);
        let mut r = BitReader::new(&rbsp);
        let first_mb_in_slice = r.read_ue()?;
        let slice_type = match ue_max(&mut r, "slice_type", 9)? % 5 {
            0 => SliceType::P,
            1 => SliceType::B,
            2 => SliceType::I,
            3 => SliceType::Sp,
            _ => SliceType::Si,
        };
        let pps_id = ue_max(&mut r, "pic_parameter_set_id", 255)?;
        Ok(Self {
            first_mb_in_slice,
            slice_type,
            pps_id,
        })
    }
}

/// The AVCDecoderConfigurationRecord (`avcC`, ISO 14496-15 5.3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile_idc: u8,
    pub constraints: u8,
    pub level_idc: u8,
    /// Bytes of the NAL length prefix in samples (1, 2 or 4).
    pub length_size: u8,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

fn take(data: &Bytes, pos: &mut usize, n: usize) -> Option<Bytes> {
    let end = pos.checked_add(n)?;
    if end > data.len() {
        return None;
    }
    let out = data.slice(*pos..end);
    *pos = end;
    Some(out)
}

fn take_u8(data: &Bytes, pos: &mut usize) -> Option<u8> {
    let b = *data.get(*pos)?;
    *pos += 1;
    Some(b)
}

fn take_u16(data: &Bytes, pos: &mut usize) -> Option<u16> {
    Some(u16::from(take_u8(data, pos)?) << 8 | u16::from(take_u8(data, pos)?))
}

/// `count` parameter sets, each behind a 16-bit length, as avcC lists them.
fn take_sets(data: &Bytes, pos: &mut usize, count: u8) -> Option<Vec<Bytes>> {
    (0..count)
        .map(|_| {
            let len = take_u16(data, pos)?;
            take(data, pos, usize::from(len))
        })
        .collect()
}

/// Writes parameter sets each behind a 16-bit length; `field` names the set in the error.
fn put_sets<'a>(
    out: &mut BytesMut,
    sets: impl Iterator<Item = &'a Bytes>,
    field: &'static str,
) -> Result<(), H264Error> {
    for s in sets {
        let len = u16::try_from(s.len()).map_err(|_| H264Error::OutOfRange {
            field,
            value: u32::MAX,
        })?;
        out.put_u16(len);
        out.put_slice(s);
    }
    Ok(())
}

impl AvcConfig {
    /// Parses an avcC record. Parameter sets are zero-copy slices of `data`.
    pub fn parse(data: &Bytes) -> Result<Self, H264Error> {
        let t = H264Error::AvcCTruncated;
        let mut pos = 0;
        let version = take_u8(data, &mut pos).ok_or(t.clone())?;
        if version != 1 {
            return Err(H264Error::AvcCVersion(version));
        }
        let profile_idc = take_u8(data, &mut pos).ok_or(t.clone())?;
        let constraints = take_u8(data, &mut pos).ok_or(t.clone())?;
        let level_idc = take_u8(data, &mut pos).ok_or(t.clone())?;
        let length_size = (take_u8(data, &mut pos).ok_or(t.clone())? & 3) + 1;
        if length_size == 3 {
            return Err(H264Error::OutOfRange {
                field: "lengthSizeMinusOne",
                value: 2,
            });
        }
        let num_sps = take_u8(data, &mut pos).ok_or(t.clone())? & 0x1f;
        let sps = take_sets(data, &mut pos, num_sps).ok_or(t.clone())?;
        let num_pps = take_u8(data, &mut pos).ok_or(t.clone())?;
        let pps = take_sets(data, &mut pos, num_pps).ok_or(t)?;
        // Trailing high-profile fields (chroma format, bit depth, SPS ext) repeat the SPS: ignored.
        Ok(Self {
            profile_idc,
            constraints,
            level_idc,
            length_size,
            sps,
            pps,
        })
    }

    /// Builds an avcC record from parameter sets (4-byte NAL lengths). Profile bytes come from
    /// the first SPS, as the record requires.
    pub fn build(sps: &[Bytes], pps: &[Bytes]) -> Result<Bytes, H264Error> {
        let first = sps.first().ok_or(H264Error::AvcCNoSps)?;
        let parsed = Sps::parse(first)?;
        let mut out = BytesMut::new();
        out.put_u8(1);
        out.put_u8(parsed.profile_idc);
        out.put_u8(parsed.constraints);
        out.put_u8(parsed.level_idc);
        out.put_u8(0xfc | 3);
        let n_sps = u8::try_from(sps.len().min(31)).unwrap_or(31);
        out.put_u8(0xe0 | n_sps);
        put_sets(&mut out, sps.iter().take(31), "sps length")?;
        out.put_u8(u8::try_from(pps.len().min(255)).unwrap_or(255));
        put_sets(&mut out, pps.iter().take(255), "pps length")?;
        if has_chroma_info(parsed.profile_idc) {
            out.put_u8(0xfc | (parsed.chroma_format_idc as u8 & 3));
            out.put_u8(0xf8 | (parsed.bit_depth_luma.saturating_sub(8) & 7));
            out.put_u8(0xf8 | (parsed.bit_depth_chroma.saturating_sub(8) & 7));
            out.put_u8(0);
        }
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // x264 SPS for 320x240 main profile level 1.3 (from tests/fixtures/h264_aac.flv).
    const SPS_320X240: &[u8] = &[
        0x67, 0x4d, 0x40, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80,
    ];

    #[test]
    fn parses_sps() {
        let sps = Sps::parse(SPS_320X240).unwrap();
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(sps.profile_idc, 77);
        assert_eq!(sps.profile_level_id(), "4d400d");
    }

    #[test]
    fn cropping_1080p() {
        // Baseline 1920x1080: 120x68 MBs with 8 lines cropped at the bottom.
        // (ffmpeg -f lavfi -i testsrc2=size=1920x1080 -c:v libx264 -profile:v baseline)
        let sps = [
            0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00,
            0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc9, 0x20,
        ];
        let s = Sps::parse(&sps).unwrap();
        assert_eq!((s.width, s.height), (1920, 1080));
    }

    #[test]
    fn slice_header_types() {
        // first_mb 0 (1), slice_type 1 = B (010), pps 0 (1)
        let nal = [0x01, 0b1010_1000];
        let h = SliceHeader::parse(&nal).unwrap();
        assert_eq!(h.slice_type, SliceType::B);
        // slice_type 5 = P (00110)
        let nal = [0x41, 0b1001_1010];
        assert_eq!(SliceHeader::parse(&nal).unwrap().slice_type, SliceType::P);
    }

    #[test]
    fn avcc_round_trip() {
        let sps = Bytes::from_static(SPS_320X240);
        let pps = Bytes::from_static(&[0x68, 0xeb, 0xcc, 0xb2]);
        let rec = AvcConfig::build(std::slice::from_ref(&sps), std::slice::from_ref(&pps)).unwrap();
        let parsed = AvcConfig::parse(&rec).unwrap();
        assert_eq!(parsed.sps, vec![sps]);
        assert_eq!(parsed.pps, vec![pps]);
        assert_eq!(parsed.length_size, 4);
        assert_eq!(
            Pps::parse(&parsed.pps[0]).unwrap(),
            Pps {
                pps_id: 0,
                sps_id: 0
            }
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Sps::parse(&[]).is_err());
        assert!(Sps::parse(&[0x67]).is_err());
        assert!(Sps::parse(&[0x67, 0x64, 0, 0, 0, 0]).is_err());
        assert!(AvcConfig::parse(&Bytes::from_static(&[1, 2, 3])).is_err());
    }
}
