//! AAC payload formats: MP4A-LATM (RFC 6416, `cpresent=0`) and the ADTS framing deployed RTM
//! clients negotiate as "MP4A-ADTS", plus the few AudioSpecificConfig fields they need.

/// Errors reading an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AscError {
    #[error("AudioSpecificConfig truncated")]
    Truncated,
    #[error("audio object type {0} cannot be expressed in an ADTS header (needs 1..=4)")]
    AdtsObjectType(u8),
    #[error("explicit sampling frequency cannot be expressed in an ADTS header")]
    AdtsExplicitFrequency,
    #[error("channel configuration {0} cannot be expressed in an ADTS header")]
    AdtsChannels(u8),
}

/// Sampling frequencies by `samplingFrequencyIndex`.
pub const SAMPLING_FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The fields of an AudioSpecificConfig that packetization uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AscInfo {
    /// Object type of the core coder (2 = AAC LC also for HE-AAC, whose SBR/PS is signalled on
    /// top of it).
    pub core_object_type: u8,
    /// `samplingFrequencyIndex` of the core (15 = explicit frequency).
    pub frequency_index: u8,
    /// Core sampling rate in Hz.
    pub core_rate: u32,
    pub channel_config: u8,
    /// 1024 or 960 (`frameLengthFlag`) core samples per access unit.
    pub frame_length: u32,
    /// SBR present (HE-AAC, object type 5 or 29): output rate is the extension rate.
    pub sbr: bool,
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Result<u32, AscError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.data.get(self.pos / 8).ok_or(AscError::Truncated)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }

    fn object_type(&mut self) -> Result<u8, AscError> {
        let t = self.read(5)?;
        Ok(if t == 31 {
            32 + self.read(6)? as u8
        } else {
            t as u8
        })
    }

    fn frequency(&mut self) -> Result<(u8, u32), AscError> {
        let idx = self.read(4)? as u8;
        let rate = if idx == 15 {
            self.read(24)?
        } else {
            SAMPLING_FREQUENCIES
                .get(usize::from(idx))
                .copied()
                .unwrap_or(0)
        };
        Ok((idx, rate))
    }
}

/// Reads the core fields of an AudioSpecificConfig.
pub fn parse_asc(asc: &[u8]) -> Result<AscInfo, AscError> {
    let mut b = Bits { data: asc, pos: 0 };
    let mut object_type = b.object_type()?;
    let (mut frequency_index, mut core_rate) = b.frequency()?;
    let channel_config = b.read(4)? as u8;
    let mut sbr = false;
    if object_type == 5 || object_type == 29 {
        sbr = true;
        // The extension (output) frequency follows, then the core object type.
        let _ = b.frequency()?;
        object_type = b.object_type()?;
    }
    // GASpecificConfig starts with frameLengthFlag for the AAC object types.
    let ga = matches!(object_type, 1..=4 | 6 | 7 | 17 | 19..=23);
    let frame_length = if ga && b.read(1)? == 1 { 960 } else { 1024 };
    if frequency_index != 15 && core_rate == 0 {
        // Reserved index: treat as unknown explicit rate.
        frequency_index = 15;
        core_rate = 0;
    }
    Ok(AscInfo {
        core_object_type: object_type,
        frequency_index,
        core_rate,
        channel_config,
        frame_length,
        sbr,
    })
}

impl AscInfo {
    /// RTP clock ticks per access unit at `clock_rate`, when that is a whole number.
    pub fn samples_per_frame(&self, clock_rate: u32) -> Option<u32> {
        if self.core_rate == 0 {
            return None;
        }
        let n = u64::from(self.frame_length) * u64::from(clock_rate);
        (n % u64::from(self.core_rate) == 0).then(|| (n / u64::from(self.core_rate)) as u32)
    }

    /// The fixed part of an ADTS header for this config (without CRC), or why it cannot exist.
    pub fn adts_template(&self) -> Result<AdtsTemplate, AscError> {
        if !(1..=4).contains(&self.core_object_type) {
            return Err(AscError::AdtsObjectType(self.core_object_type));
        }
        if self.frequency_index > 12 {
            return Err(AscError::AdtsExplicitFrequency);
        }
        if self.channel_config > 7 {
            return Err(AscError::AdtsChannels(self.channel_config));
        }
        Ok(AdtsTemplate {
            profile: self.core_object_type - 1,
            frequency_index: self.frequency_index,
            channel_config: self.channel_config,
        })
    }
}

/// Length of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;
/// Largest ADTS frame (13-bit `aac_frame_length`, header included).
pub const ADTS_MAX_FRAME: usize = 0x1FFF;

/// What an ADTS header repeats in every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsTemplate {
    pub profile: u8,
    pub frequency_index: u8,
    pub channel_config: u8,
}

impl AdtsTemplate {
    /// The 7-byte header (MPEG-4, no CRC, buffer fullness 0x7FF = VBR, one raw data block) for
    /// an access unit of `au_len` bytes. `au_len + 7` must not exceed [`ADTS_MAX_FRAME`].
    pub fn header(&self, au_len: usize) -> [u8; 7] {
        let len = (au_len + ADTS_HEADER_LEN) as u32;
        [
            0xFF,
            0xF1,
            (self.profile << 6) | (self.frequency_index << 2) | (self.channel_config >> 2),
            ((self.channel_config & 3) << 6) | ((len >> 11) & 0x03) as u8,
            ((len >> 3) & 0xFF) as u8,
            (((len & 7) as u8) << 5) | 0x1F,
            0xFC,
        ]
    }
}

/// The LATM `PayloadLengthInfo` of one access unit: `len / 255` bytes of 0xFF then `len % 255`.
pub fn latm_length_prefix(len: usize, out: &mut Vec<u8>) {
    out.extend(std::iter::repeat_n(0xFF, len / 255));
    out.push((len % 255) as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lc_and_he_aac() {
        let lc = parse_asc(&[0x12, 0x10]).unwrap(); // LC, 44.1 kHz, stereo
        assert_eq!(
            (lc.core_object_type, lc.frequency_index, lc.channel_config),
            (2, 4, 2)
        );
        assert_eq!(lc.samples_per_frame(44_100), Some(1024));
        // HE-AAC: AOT 5, 24 kHz core, stereo, extension 48 kHz, core AOT 2.
        let he = parse_asc(&[0x2B, 0x11, 0x88, 0x00]).unwrap();
        assert!(he.sbr);
        assert_eq!(
            (he.core_object_type, he.core_rate, he.channel_config),
            (2, 24_000, 2)
        );
        assert_eq!(he.samples_per_frame(48_000), Some(2048));
        assert_eq!(parse_asc(&[0x12]), Err(AscError::Truncated));
    }

    #[test]
    fn adts_header_layout() {
        let t = parse_asc(&[0x12, 0x10]).unwrap().adts_template().unwrap();
        assert_eq!(t.header(100), [0xFF, 0xF1, 0x50, 0x80, 0x0D, 0x7F, 0xFC]);
    }

    #[test]
    fn latm_prefix() {
        let mut v = Vec::new();
        latm_length_prefix(600, &mut v);
        assert_eq!(v, [0xFF, 0xFF, 90]);
        v.clear();
        latm_length_prefix(255, &mut v);
        assert_eq!(v, [0xFF, 0]);
    }
}
