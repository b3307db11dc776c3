//! The picture size a stream's keyframes announce, read from the sequence parameter set the
//! sender puts in front of every keyframe (H.264 SPS, H.265 SPS; alone or in an aggregation
//! packet).
//!
//! A player sees a new size when the sender moves it to another source (a co-host switch to a
//! mix, an encoder restarted with other settings) without re-signaling; the report lists each
//! change so a test can tell which source it was shown, without trusting the server's word.

use rtmlive::media::{Codec, h264, h265};
use serde::{Deserialize, Serialize};

/// A picture size and when the player first saw it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PictureSize {
    /// When the keyframe announcing it was released, ms since the session started.
    pub at_ms: f64,
    pub width: u32,
    pub height: u32,
}

/// H.264 NAL unit types (RFC 6184).
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
/// H.265 NAL unit types (RFC 7798).
const H265_SPS: u8 = 33;
const H265_AP: u8 = 48;

/// The size in the SPS carried by one RTP payload of `codec`, if it carries one.
pub fn sps_size(codec: Codec, payload: &[u8]) -> Option<(u32, u32)> {
    let first = *payload.first()?;
    match codec {
        Codec::H264 => match first & 0x1f {
            H264_SPS => h264_size(payload),
            H264_STAP_A => units(payload.get(1..)?).find_map(h264_size),
            _ => None,
        },
        Codec::H265 => match (first >> 1) & 0x3f {
            H265_SPS => h265_size(payload),
            H265_AP => units(payload.get(2..)?).find_map(h265_size),
            _ => None,
        },
        _ => None,
    }
}

fn h264_size(nal: &[u8]) -> Option<(u32, u32)> {
    (nal.first()? & 0x1f == H264_SPS)
        .then(|| h264::Sps::parse(nal).ok())
        .flatten()
        .map(|s| (s.width, s.height))
}

fn h265_size(nal: &[u8]) -> Option<(u32, u32)> {
    ((nal.first()? >> 1) & 0x3f == H265_SPS)
        .then(|| h265::Sps::parse(nal).ok())
        .flatten()
        .map(|s| (s.width, s.height))
}

/// The NAL units of an aggregation packet's body: 16-bit size, unit, repeated. Stops at the
/// first size that runs past the end.
fn units(mut body: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = body.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let unit = rest.get(..len)?;
        body = &rest[len..];
        Some(unit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SPS of `tests/fixtures/h264_aac.flv` (main profile, 320x240).
    fn sps_320x240() -> Vec<u8> {
        vec![
            0x67, 0x4d, 0x40, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
            0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80,
        ]
    }

    #[test]
    fn single_and_aggregated_h264_sps() {
        let sps = sps_320x240();
        assert_eq!(sps_size(Codec::H264, &sps), Some((320, 240)));
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let mut stap = vec![0x18];
        for nal in [&sps[..], &pps[..]] {
            stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            stap.extend_from_slice(nal);
        }
        assert_eq!(sps_size(Codec::H264, &stap), Some((320, 240)));
        // Not a parameter set, or a truncated aggregate: nothing.
        assert_eq!(sps_size(Codec::H264, &[0x65, 0x88]), None);
        assert_eq!(sps_size(Codec::H264, &stap[..8]), None);
        assert_eq!(sps_size(Codec::H264, &[]), None);
        assert_eq!(sps_size(Codec::Aac, &sps), None);
    }
}
