//! AAC configuration: the AudioSpecificConfig (ISO 14496-3 1.6.2.1) that FLV/RTMP carry in the
//! AAC sequence header, and the 7-byte ADTS header that some RTM clients expect in front of each
//! raw frame.
//!
//! HE-AAC signalling matters to the edge because the RTP clock and SDP rate are the *output*
//! sample rate: with SBR it is twice the core rate. Both explicit (object type 5/29 first) and
//! backward-compatible (sync extension 0x2b7 after the LC config) signalling are recognised.

use bytes::Bytes;

use super::bits::{BitReader, BitsError};

/// Why an AAC structure could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AacError {
    #[error("bitstream: {0}")]
    Bits(#[from] BitsError),
    #[error("reserved sampling frequency index {0}")]
    ReservedFrequencyIndex(u8),
    #[error("sampling frequency {0} Hz has no ADTS index")]
    NoFrequencyIndex(u32),
    #[error("ADTS header: {0}")]
    Adts(&'static str),
}

/// Sampling frequencies by `samplingFrequencyIndex`.
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Audio object type with SBR (HE-AAC).
pub const AOT_SBR: u8 = 5;
/// Audio object type with parametric stereo (HE-AAC v2).
pub const AOT_PS: u8 = 29;
/// AAC-LC.
pub const AOT_LC: u8 = 2;

/// The index of a sampling frequency, if it has one.
pub fn frequency_index(rate: u32) -> Option<u8> {
    SAMPLE_RATES
        .iter()
        .position(|r| *r == rate)
        .map(|i| i as u8)
}

/// A parsed AudioSpecificConfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// The signalled object type (5 or 29 for explicit HE-AAC signalling).
    pub object_type: u8,
    /// The core (AAC) object type: 2 for LC also under HE-AAC.
    pub core_object_type: u8,
    /// Core sampling rate in Hz.
    pub sample_rate: u32,
    pub channel_config: u8,
    /// SBR output rate when SBR is signalled (explicitly or by the sync extension).
    pub sbr_sample_rate: Option<u32>,
    /// Parametric stereo signalled.
    pub ps: bool,
    /// 960-sample frames instead of 1024.
    pub frame_length_960: bool,
}

fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, AacError> {
    let t = r.read_bits(5)? as u8;
    if t == 31 {
        Ok(32 + r.read_bits(6)? as u8)
    } else {
        Ok(t)
    }
}

fn read_frequency(r: &mut BitReader<'_>) -> Result<u32, AacError> {
    let idx = r.read_bits(4)? as u8;
    if idx == 15 {
        return Ok(r.read_bits(24)?);
    }
    SAMPLE_RATES
        .get(usize::from(idx))
        .copied()
        .ok_or(AacError::ReservedFrequencyIndex(idx))
}

impl AudioSpecificConfig {
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        let mut r = BitReader::new(data);
        let object_type = read_object_type(&mut r)?;
        let sample_rate = read_frequency(&mut r)?;
        let channel_config = r.read_bits(4)? as u8;
        let mut core_object_type = object_type;
        let mut sbr_sample_rate = None;
        let mut ps = false;
        if object_type == AOT_SBR || object_type == AOT_PS {
            ps = object_type == AOT_PS;
            sbr_sample_rate = Some(read_frequency(&mut r)?);
            core_object_type = read_object_type(&mut r)?;
        }
        let mut frame_length_960 = false;
        // GASpecificConfig for the object types that use it (1-4, 6, 7, 17, 19-23).
        let ga = matches!(core_object_type, 1..=4 | 6 | 7 | 17 | 19..=23);
        if ga {
            frame_length_960 = r.read_flag()?;
            if r.read_flag()? {
                r.skip(14)?; // coreCoderDelay
            }
            let extension = r.read_flag()?;
            // A program_config_element (channel_config 0) is not walked: the sync extension
            // search below then simply finds nothing.
            if channel_config != 0 && extension && matches!(core_object_type, 6 | 20) {
                r.skip(3)?; // layerNr
            }
            if channel_config != 0 && extension && matches!(core_object_type, 17 | 19..=23) {
                r.skip(3)?; // resilience flags (approximate; not used by LC/HE streams)
            }
            // Backward-compatible HE-AAC signalling (1.6.5.2): syncExtensionType 0x2b7.
            if channel_config != 0
                && sbr_sample_rate.is_none()
                && r.remaining() >= 16
                && r.read_bits(11)? == 0x2b7
            {
                let ext_type = read_object_type(&mut r)?;
                if ext_type == AOT_SBR && r.read_flag()? {
                    sbr_sample_rate = Some(read_frequency(&mut r)?);
                    if r.remaining() >= 12 && r.read_bits(11)? == 0x548 {
                        ps = r.read_flag()?;
                    }
                }
            }
        }
        Ok(Self {
            object_type,
            core_object_type,
            sample_rate,
            channel_config,
            sbr_sample_rate,
            ps,
            frame_length_960,
        })
    }

    /// The decoder's output sample rate: the SBR rate for HE-AAC, else the core rate.
    pub fn output_sample_rate(&self) -> u32 {
        self.sbr_sample_rate.unwrap_or(self.sample_rate)
    }

    /// Output channel count: parametric stereo makes mono core audio stereo.
    pub fn output_channels(&self) -> u8 {
        match self.channel_config {
            _ if self.ps => 2,
            7 => 8,
            c => c,
        }
    }

    /// The object type a player should announce: 29 with PS, 5 with SBR, else the core type.
    pub fn effective_object_type(&self) -> u8 {
        if self.ps {
            AOT_PS
        } else if self.sbr_sample_rate.is_some() {
            AOT_SBR
        } else {
            self.core_object_type
        }
    }

    /// Builds a minimal AAC-LC-style AudioSpecificConfig (GASpecificConfig with all flags zero).
    /// Frequencies without an index use the 24-bit explicit form.
    pub fn build_simple(object_type: u8, sample_rate: u32, channel_config: u8) -> Bytes {
        let mut w = BitWriter::default();
        if object_type >= 31 {
            w.put(31, 5);
            w.put(u32::from(object_type - 32) & 0x3f, 6);
        } else {
            w.put(u32::from(object_type), 5);
        }
        match frequency_index(sample_rate) {
            Some(i) => w.put(u32::from(i), 4),
            None => {
                w.put(15, 4);
                w.put(sample_rate & 0xff_ffff, 24);
            }
        }
        w.put(u32::from(channel_config & 0xf), 4);
        w.put(0, 3); // frameLengthFlag, dependsOnCoreCoder, extensionFlag
        Bytes::from(w.finish())
    }
}

/// MSB-first bit writer for the few bits of an ASC.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    bits: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, n: u32) {
        for i in (0..n).rev() {
            if self.bits.is_multiple_of(8) {
                self.out.push(0);
            }
            if (value >> i) & 1 == 1
                && let Some(last) = self.out.last_mut()
            {
                *last |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
    }

    fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// The fields of a 7-byte ADTS header (no CRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// Audio object type (profile + 1): 2 for LC.
    pub object_type: u8,
    pub frequency_index: u8,
    pub channel_config: u8,
    /// Raw frame length **without** the header.
    pub payload_len: usize,
}

/// Length of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;

impl AdtsHeader {
    /// The ADTS header for raw frames of the stream an ASC describes. ADTS can signal only the
    /// core object types 1-4 and indexed rates: HE-AAC streams get the LC core header (implicit
    /// SBR), which is what ADTS-based players expect.
    pub fn for_config(asc: &AudioSpecificConfig, payload_len: usize) -> Result<Self, AacError> {
        let frequency_index =
            frequency_index(asc.sample_rate).ok_or(AacError::NoFrequencyIndex(asc.sample_rate))?;
        if !(1..=4).contains(&asc.core_object_type) {
            return Err(AacError::Adts("object type not representable"));
        }
        Ok(Self {
            object_type: asc.core_object_type,
            frequency_index,
            channel_config: asc.channel_config & 7,
            payload_len,
        })
    }

    /// Serialises the header.
    pub fn to_bytes(&self) -> Result<[u8; 7], AacError> {
        let full = self.payload_len + ADTS_HEADER_LEN;
        if full > 0x1fff {
            return Err(AacError::Adts("frame longer than 8191 bytes"));
        }
        if !(1..=4).contains(&self.object_type) || self.frequency_index > 12 {
            return Err(AacError::Adts("field out of range"));
        }
        let profile = self.object_type - 1;
        let full = full as u16;
        Ok([
            0xff,
            0xf1, // MPEG-4, layer 0, no CRC
            profile << 6 | self.frequency_index << 2 | (self.channel_config >> 2) & 1,
            (self.channel_config & 3) << 6 | (full >> 11) as u8 & 3,
            (full >> 3) as u8,
            ((full & 7) as u8) << 5 | 0x1f,
            0xfc, // buffer fullness 0x7ff (VBR), one raw data block
        ])
    }

    /// Parses an ADTS header at the start of `data`; returns it and the header length
    /// (7, or 9 with CRC).
    pub fn parse(data: &[u8]) -> Result<(Self, usize), AacError> {
        let h = data.get(..7).ok_or(AacError::Adts("truncated"))?;
        if h[0] != 0xff || h[1] & 0xf0 != 0xf0 {
            return Err(AacError::Adts("no sync word"));
        }
        let header_len = if h[1] & 1 == 0 { 9 } else { 7 };
        let profile = h[2] >> 6;
        let frequency_index = (h[2] >> 2) & 0xf;
        if frequency_index > 12 {
            return Err(AacError::ReservedFrequencyIndex(frequency_index));
        }
        let channel_config = (h[2] & 1) << 2 | h[3] >> 6;
        let full = usize::from(h[3] & 3) << 11 | usize::from(h[4]) << 3 | usize::from(h[5] >> 5);
        let payload_len = full
            .checked_sub(header_len)
            .ok_or(AacError::Adts("frame length shorter than header"))?;
        Ok((
            Self {
                object_type: profile + 1,
                frequency_index,
                channel_config,
                payload_len,
            },
            header_len,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_44100_stereo() {
        // The ASC of the fixtures: 12 10 (plus ffmpeg's trailing 56 e5 00 sync extension bytes).
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10, 0x56, 0xe5, 0x00]).unwrap();
        assert_eq!(asc.object_type, 2);
        assert_eq!(asc.sample_rate, 44100);
        assert_eq!(asc.channel_config, 2);
        assert_eq!(asc.output_sample_rate(), 44100);
        assert_eq!(
            AudioSpecificConfig::build_simple(2, 44100, 2).as_ref(),
            &[0x12, 0x10]
        );
    }

    #[test]
    fn explicit_he_aac_v2() {
        // AOT 29, 24 kHz core, 1 channel, SBR at 48 kHz, core AOT 2.
        let asc = AudioSpecificConfig::parse(&[0xEB, 0x09, 0x88, 0x00]).unwrap();
        assert_eq!(asc.object_type, 29);
        assert_eq!(asc.core_object_type, 2);
        assert_eq!(asc.sample_rate, 24000);
        assert_eq!(asc.output_sample_rate(), 48000);
        assert_eq!(asc.channel_config, 1);
        assert_eq!(asc.output_channels(), 2);
        assert_eq!(asc.effective_object_type(), 29);
    }

    #[test]
    fn explicit_frequency() {
        let b = AudioSpecificConfig::build_simple(2, 12345, 1);
        let asc = AudioSpecificConfig::parse(&b).unwrap();
        assert_eq!(asc.sample_rate, 12345);
        assert_eq!(asc.channel_config, 1);
    }

    #[test]
    fn backward_compatible_sbr() {
        // LC 24 kHz stereo + sync ext 0x2b7, SBR present, 48 kHz: 13 10 56 e5 98
        let asc = AudioSpecificConfig::parse(&[0x13, 0x10, 0x56, 0xe5, 0x98]).unwrap();
        assert_eq!(asc.sample_rate, 24000);
        assert_eq!(asc.sbr_sample_rate, Some(48000));
        assert_eq!(asc.output_sample_rate(), 48000);
    }

    #[test]
    fn adts_round_trip() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        let h = AdtsHeader::for_config(&asc, 300).unwrap();
        let bytes = h.to_bytes().unwrap();
        assert_eq!(AdtsHeader::parse(&bytes).unwrap(), (h, 7));
        assert!(AdtsHeader::parse(&[0xff, 0xf1]).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(AudioSpecificConfig::parse(&[]).is_err());
        assert!(AudioSpecificConfig::parse(&[0x17, 0x80]).is_err()); // reserved index 14
    }
}
