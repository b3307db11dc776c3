//! The six RTM private RTP header extensions: their negotiated IDs, value layouts, writers and
//! parsers. The wire format is specified in `docs/rtp-extensions.md`; keep the two in step.
//!
//! All values are big-endian. Times are in units of the track's RTP clock (90 kHz video, the
//! sample rate for audio) with the same origin as the RTP timestamp, so a player never mixes
//! timebases: `RTP timestamp = decoding-timestamp + composition-time` (mod 2^32).

pub mod block;
mod shift;

use bytes::Bytes;

use crate::media::FrameKind;
pub use block::{BlockError, Element, Elements, Form};
pub use shift::shift_time_values;

/// The RTM extensions, in the order a packet carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtmExt {
    DecodingTimestamp,
    CompositionTime,
    FrameSeqRange,
    FrameType,
    ReferenceFrameTimestamp,
    AacConfig,
}

impl RtmExt {
    pub const ALL: [RtmExt; 6] = [
        RtmExt::DecodingTimestamp,
        RtmExt::CompositionTime,
        RtmExt::FrameSeqRange,
        RtmExt::FrameType,
        RtmExt::ReferenceFrameTimestamp,
        RtmExt::AacConfig,
    ];

    /// The `a=extmap` URI that names this extension in SDP.
    pub fn uri(self) -> &'static str {
        match self {
            RtmExt::DecodingTimestamp => {
                "http://www.webrtc.org/experiments/rtp-hdrext/decoding-timestamp"
            }
            RtmExt::CompositionTime => "uri:webrtc:rtc:rtp-hdrext:video:compositiontime",
            RtmExt::FrameSeqRange => "uri:webrtc:rtc:rtp-hdrext:video:frame-seq-range",
            RtmExt::FrameType => "uri:webrtc:rtc:rtp-hdrext:video:frame-type",
            RtmExt::ReferenceFrameTimestamp => {
                "uri:webrtc:rtc:rtp-hdrext:video:reference-frame-timestamp"
            }
            RtmExt::AacConfig => "uri:webrtc:rtc:rtp-hdrext:audio:aac-config",
        }
    }

    /// The extension a URI names, if it is one of ours.
    pub fn from_uri(uri: &str) -> Option<RtmExt> {
        RtmExt::ALL.into_iter().find(|e| e.uri() == uri)
    }

    /// The ID deployed RTM SDPs use (Tencent LEB and Volcengine agree on these numbers).
    pub fn default_id(self) -> u8 {
        match self {
            RtmExt::DecodingTimestamp => 18,
            RtmExt::CompositionTime => 19,
            RtmExt::FrameSeqRange => 21,
            RtmExt::FrameType => 22,
            RtmExt::ReferenceFrameTimestamp => 23,
            RtmExt::AacConfig => 27,
        }
    }

    /// Length of the value in bytes; `None` for the variable-length aac-config.
    pub fn fixed_len(self) -> Option<usize> {
        match self {
            RtmExt::DecodingTimestamp
            | RtmExt::CompositionTime
            | RtmExt::FrameSeqRange
            | RtmExt::ReferenceFrameTimestamp => Some(4),
            RtmExt::FrameType => Some(1),
            RtmExt::AacConfig => None,
        }
    }
}

/// Errors in the IDs given by negotiation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("extension id 0 is reserved for padding ({0:?})")]
    Zero(RtmExt),
    #[error("extension id {id} is used for both {a:?} and {b:?}")]
    Duplicate { id: u8, a: RtmExt, b: RtmExt },
}

/// The IDs a session negotiated for the RTM extensions; `None` = not negotiated (never sent,
/// ignored on receipt). IDs 1..=14 allow the compact one-byte form; larger IDs (such as the
/// deployed defaults 18..=27) need the two-byte form, which the packetizer then uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtensionIds {
    pub decoding_timestamp: Option<u8>,
    pub composition_time: Option<u8>,
    pub frame_seq_range: Option<u8>,
    pub frame_type: Option<u8>,
    pub reference_frame_timestamp: Option<u8>,
    pub aac_config: Option<u8>,
}

impl Default for ExtensionIds {
    /// The deployed defaults 18/19/21/22/23/27.
    fn default() -> Self {
        let mut ids = ExtensionIds::none();
        for e in RtmExt::ALL {
            ids.set(e, Some(e.default_id()));
        }
        ids
    }
}

impl ExtensionIds {
    /// No extension negotiated.
    pub fn none() -> Self {
        ExtensionIds {
            decoding_timestamp: None,
            composition_time: None,
            frame_seq_range: None,
            frame_type: None,
            reference_frame_timestamp: None,
            aac_config: None,
        }
    }

    /// Builds the IDs from negotiated `a=extmap` lines (`id`, URI); unknown URIs are ignored.
    pub fn from_extmap<'a>(
        extmap: impl IntoIterator<Item = (u8, &'a str)>,
    ) -> Result<Self, IdError> {
        let mut ids = ExtensionIds::none();
        for (id, uri) in extmap {
            if let Some(e) = RtmExt::from_uri(uri) {
                ids.set(e, Some(id));
            }
        }
        ids.validate()?;
        Ok(ids)
    }

    pub fn get(&self, e: RtmExt) -> Option<u8> {
        match e {
            RtmExt::DecodingTimestamp => self.decoding_timestamp,
            RtmExt::CompositionTime => self.composition_time,
            RtmExt::FrameSeqRange => self.frame_seq_range,
            RtmExt::FrameType => self.frame_type,
            RtmExt::ReferenceFrameTimestamp => self.reference_frame_timestamp,
            RtmExt::AacConfig => self.aac_config,
        }
    }

    pub fn set(&mut self, e: RtmExt, id: Option<u8>) {
        let slot = match e {
            RtmExt::DecodingTimestamp => &mut self.decoding_timestamp,
            RtmExt::CompositionTime => &mut self.composition_time,
            RtmExt::FrameSeqRange => &mut self.frame_seq_range,
            RtmExt::FrameType => &mut self.frame_type,
            RtmExt::ReferenceFrameTimestamp => &mut self.reference_frame_timestamp,
            RtmExt::AacConfig => &mut self.aac_config,
        };
        *slot = id;
    }

    /// Which extension `id` is negotiated for.
    pub fn lookup(&self, id: u8) -> Option<RtmExt> {
        RtmExt::ALL.into_iter().find(|&e| self.get(e) == Some(id))
    }

    /// Rejects ID 0 and an ID given to two extensions.
    pub fn validate(&self) -> Result<(), IdError> {
        for (i, a) in RtmExt::ALL.into_iter().enumerate() {
            let Some(id) = self.get(a) else { continue };
            if id == 0 {
                return Err(IdError::Zero(a));
            }
            for b in RtmExt::ALL.into_iter().skip(i + 1) {
                if self.get(b) == Some(id) {
                    return Err(IdError::Duplicate { id, a, b });
                }
            }
        }
        Ok(())
    }
}

/// frame-type value: what the frame is to a decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// I (IDR/IRAP): decoding may start here.
    Key,
    /// P: references earlier frames only.
    Inter,
    /// B: nothing references it; a player may skip it.
    B,
}

impl FrameType {
    /// The value byte (low two bits; the upper six are reserved, sent as zero).
    pub fn to_byte(self) -> u8 {
        match self {
            FrameType::Key => 0,
            FrameType::Inter => 1,
            FrameType::B => 2,
        }
    }

    pub fn from_kind(kind: FrameKind) -> Option<FrameType> {
        match kind {
            FrameKind::Key => Some(FrameType::Key),
            FrameKind::Inter => Some(FrameType::Inter),
            FrameKind::B => Some(FrameType::B),
            FrameKind::Audio => None,
        }
    }

    pub fn kind(self) -> FrameKind {
        match self {
            FrameType::Key => FrameKind::Key,
            FrameType::Inter => FrameKind::Inter,
            FrameType::B => FrameKind::B,
        }
    }
}

/// frame-seq-range value: the first and last RTP sequence number (low 16 bits) of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameSeqRange {
    pub first: u16,
    pub last: u16,
}

impl FrameSeqRange {
    /// Number of packets in the frame (1..=65536).
    pub fn count(&self) -> u32 {
        u32::from(self.last.wrapping_sub(self.first)) + 1
    }

    /// Whether `seq` lies in the range (modulo 2^16).
    pub fn contains(&self, seq: u16) -> bool {
        seq.wrapping_sub(self.first) <= self.last.wrapping_sub(self.first)
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let [a, b] = self.first.to_be_bytes();
        let [c, d] = self.last.to_be_bytes();
        [a, b, c, d]
    }
}

/// decoding-timestamp value bytes.
pub fn write_decoding_timestamp(dts: u32) -> [u8; 4] {
    dts.to_be_bytes()
}

/// composition-time value bytes.
pub fn write_composition_time(cts: i32) -> [u8; 4] {
    cts.to_be_bytes()
}

/// frame-seq-range value bytes.
pub fn write_frame_seq_range(range: FrameSeqRange) -> [u8; 4] {
    range.to_bytes()
}

/// frame-type value bytes.
pub fn write_frame_type(t: FrameType) -> [u8; 1] {
    [t.to_byte()]
}

/// reference-frame-timestamp value bytes.
pub fn write_reference_frame_timestamp(ts: u32) -> [u8; 4] {
    ts.to_be_bytes()
}

/// aac-config value bytes: the AudioSpecificConfig itself, checked for the 1..=255 range.
pub fn write_aac_config(asc: &[u8]) -> Result<&[u8], ValueError> {
    match asc.len() {
        0 => Err(ValueError::EmptyAacConfig),
        1..=255 => Ok(asc),
        len => Err(ValueError::WrongLength {
            ext: RtmExt::AacConfig,
            len,
            expected: 255,
        }),
    }
}

/// Errors in one extension value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{ext:?} value has {len} bytes, expected {expected}")]
    WrongLength {
        ext: RtmExt,
        len: usize,
        expected: usize,
    },
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    #[error("empty aac-config value")]
    EmptyAacConfig,
}

fn fixed<const N: usize>(ext: RtmExt, v: &[u8]) -> Result<[u8; N], ValueError> {
    v.try_into().map_err(|_| ValueError::WrongLength {
        ext,
        len: v.len(),
        expected: N,
    })
}

/// decoding-timestamp: `u32` decoding time on the track's RTP clock.
pub fn parse_decoding_timestamp(v: &[u8]) -> Result<u32, ValueError> {
    fixed::<4>(RtmExt::DecodingTimestamp, v).map(u32::from_be_bytes)
}

/// composition-time: `i32` presentation minus decoding time, RTP clock units.
pub fn parse_composition_time(v: &[u8]) -> Result<i32, ValueError> {
    fixed::<4>(RtmExt::CompositionTime, v).map(i32::from_be_bytes)
}

/// frame-seq-range: `u16` first, `u16` last sequence number.
pub fn parse_frame_seq_range(v: &[u8]) -> Result<FrameSeqRange, ValueError> {
    let b = fixed::<4>(RtmExt::FrameSeqRange, v)?;
    Ok(FrameSeqRange {
        first: u16::from_be_bytes([b[0], b[1]]),
        last: u16::from_be_bytes([b[2], b[3]]),
    })
}

/// frame-type: one byte, type in the low two bits (0 I, 1 P, 2 B; 3 is an error), upper bits
/// reserved and ignored.
pub fn parse_frame_type(v: &[u8]) -> Result<FrameType, ValueError> {
    let [b] = fixed::<1>(RtmExt::FrameType, v)?;
    match b & 0x03 {
        0 => Ok(FrameType::Key),
        1 => Ok(FrameType::Inter),
        2 => Ok(FrameType::B),
        _ => Err(ValueError::UnknownFrameType(b)),
    }
}

/// reference-frame-timestamp: `u32` RTP timestamp of the reference frame.
pub fn parse_reference_frame_timestamp(v: &[u8]) -> Result<u32, ValueError> {
    fixed::<4>(RtmExt::ReferenceFrameTimestamp, v).map(u32::from_be_bytes)
}

/// aac-config: the raw AudioSpecificConfig, 1..=255 bytes.
pub fn parse_aac_config(v: &[u8]) -> Result<&[u8], ValueError> {
    if v.is_empty() {
        Err(ValueError::EmptyAacConfig)
    } else {
        Ok(v)
    }
}

/// Errors parsing a packet's extension block into [`RtmExtensions`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("extension id {id} ({ext:?}): {source}")]
    Value {
        id: u8,
        ext: RtmExt,
        source: ValueError,
    },
    #[error("extension {0:?} appears twice in one packet")]
    Duplicate(RtmExt),
}

/// The RTM extension values one packet carries (`None` = absent or not negotiated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtmExtensions {
    pub decoding_timestamp: Option<u32>,
    pub composition_time: Option<i32>,
    pub frame_seq_range: Option<FrameSeqRange>,
    pub frame_type: Option<FrameType>,
    pub reference_frame_timestamp: Option<u32>,
    pub aac_config: Option<Bytes>,
}

impl RtmExtensions {
    /// Parses the elements of a block (`profile`, `data` after the block header) that `ids`
    /// negotiated; other elements are skipped. The (rare, small) aac-config value is copied.
    pub fn parse(profile: u16, data: &[u8], ids: &ExtensionIds) -> Result<Self, ExtError> {
        let mut out = RtmExtensions::default();
        for el in Elements::new(profile, data)? {
            let el = el?;
            out.add(el.id, el.value, ids)?;
        }
        Ok(out)
    }

    /// Interprets already-split extension elements `(id, value)`, e.g. the extension list of an
    /// `rtc-rtp` header; elements `ids` did not negotiate are skipped.
    pub fn from_elements<'a>(
        elements: impl IntoIterator<Item = (u8, &'a [u8])>,
        ids: &ExtensionIds,
    ) -> Result<Self, ExtError> {
        let mut out = RtmExtensions::default();
        for (id, value) in elements {
            out.add(id, value, ids)?;
        }
        Ok(out)
    }

    /// Adds one element's value.
    fn add(&mut self, id: u8, value: &[u8], ids: &ExtensionIds) -> Result<(), ExtError> {
        let out = self;
        let el = Element {
            id,
            value,
            offset: 0,
        };
        let Some(ext) = ids.lookup(el.id) else {
            return Ok(());
        };
        let err = |source| ExtError::Value {
            id: el.id,
            ext,
            source,
        };
        fn put<T>(slot: &mut Option<T>, v: T, ext: RtmExt) -> Result<(), ExtError> {
            if slot.is_some() {
                return Err(ExtError::Duplicate(ext));
            }
            *slot = Some(v);
            Ok(())
        }
        match ext {
            RtmExt::DecodingTimestamp => put(
                &mut out.decoding_timestamp,
                parse_decoding_timestamp(el.value).map_err(err)?,
                ext,
            )?,
            RtmExt::CompositionTime => put(
                &mut out.composition_time,
                parse_composition_time(el.value).map_err(err)?,
                ext,
            )?,
            RtmExt::FrameSeqRange => put(
                &mut out.frame_seq_range,
                parse_frame_seq_range(el.value).map_err(err)?,
                ext,
            )?,
            RtmExt::FrameType => put(
                &mut out.frame_type,
                parse_frame_type(el.value).map_err(err)?,
                ext,
            )?,
            RtmExt::ReferenceFrameTimestamp => put(
                &mut out.reference_frame_timestamp,
                parse_reference_frame_timestamp(el.value).map_err(err)?,
                ext,
            )?,
            RtmExt::AacConfig => put(
                &mut out.aac_config,
                Bytes::copy_from_slice(parse_aac_config(el.value).map_err(err)?),
                ext,
            )?,
        }
        Ok(())
    }

    /// Whether no RTM value is present.
    pub fn is_empty(&self) -> bool {
        *self == RtmExtensions::default()
    }

    /// Serializes these values as one RFC 8285 block (smallest form that fits), for tests and
    /// tools; the packetizers write their blocks directly.
    pub fn to_block(&self, ids: &ExtensionIds) -> Result<Vec<u8>, BlockError> {
        let dts = self.decoding_timestamp.map(write_decoding_timestamp);
        let cts = self.composition_time.map(write_composition_time);
        let range = self.frame_seq_range.map(write_frame_seq_range);
        let ft = self.frame_type.map(write_frame_type);
        let rf = self
            .reference_frame_timestamp
            .map(write_reference_frame_timestamp);
        let values: [(RtmExt, Option<&[u8]>); 6] = [
            (RtmExt::DecodingTimestamp, dts.as_ref().map(|v| &v[..])),
            (RtmExt::CompositionTime, cts.as_ref().map(|v| &v[..])),
            (RtmExt::FrameSeqRange, range.as_ref().map(|v| &v[..])),
            (RtmExt::FrameType, ft.as_ref().map(|v| &v[..])),
            (RtmExt::ReferenceFrameTimestamp, rf.as_ref().map(|v| &v[..])),
            (RtmExt::AacConfig, self.aac_config.as_deref()),
        ];
        let els: Vec<(u8, &[u8])> = values
            .into_iter()
            .filter_map(|(e, v)| Some((ids.get(e)?, v?)))
            .collect();
        let form = Form::for_elements(els.iter().map(|(id, v)| (*id, v.len())));
        let mut out = Vec::new();
        block::write_block(form, &els, &mut out, |_, _| {})?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ids_and_lookup() {
        let ids = ExtensionIds::default();
        assert_eq!(ids.decoding_timestamp, Some(18));
        assert_eq!(ids.aac_config, Some(27));
        assert_eq!(ids.lookup(21), Some(RtmExt::FrameSeqRange));
        assert_eq!(ids.lookup(20), None);
        ids.validate().unwrap();
        let mut bad = ids;
        bad.frame_type = Some(18);
        assert!(matches!(
            bad.validate(),
            Err(IdError::Duplicate { id: 18, .. })
        ));
    }

    #[test]
    fn from_extmap_uses_uris() {
        let ids = ExtensionIds::from_extmap([
            (3, RtmExt::DecodingTimestamp.uri()),
            (4, "urn:ietf:params:rtp-hdrext:sdes:mid"),
            (5, RtmExt::FrameSeqRange.uri()),
        ])
        .unwrap();
        assert_eq!(ids.decoding_timestamp, Some(3));
        assert_eq!(ids.frame_seq_range, Some(5));
        assert_eq!(ids.composition_time, None);
    }

    #[test]
    fn values_round_trip_through_a_block() {
        let v = RtmExtensions {
            decoding_timestamp: Some(0x0001_5F90),
            composition_time: Some(-3600),
            frame_seq_range: Some(FrameSeqRange {
                first: 65535,
                last: 2,
            }),
            frame_type: Some(FrameType::B),
            reference_frame_timestamp: Some(7),
            aac_config: Some(Bytes::from_static(&[0x12, 0x10])),
        };
        for ids in [
            ExtensionIds::default(),
            ExtensionIds::from_extmap(RtmExt::ALL.iter().map(|e| (*e as u8 + 1, e.uri()))).unwrap(),
        ] {
            let block = v.to_block(&ids).unwrap();
            let profile = u16::from_be_bytes([block[0], block[1]]);
            let back = RtmExtensions::parse(profile, &block[4..], &ids).unwrap();
            assert_eq!(back, v);
        }
        assert_eq!(v.frame_seq_range.unwrap().count(), 4);
        assert!(v.frame_seq_range.unwrap().contains(0));
        assert!(!v.frame_seq_range.unwrap().contains(3));
    }

    #[test]
    fn bad_values_are_typed_errors() {
        assert_eq!(
            parse_decoding_timestamp(&[1, 2, 3]),
            Err(ValueError::WrongLength {
                ext: RtmExt::DecodingTimestamp,
                len: 3,
                expected: 4
            })
        );
        assert_eq!(parse_frame_type(&[3]), Err(ValueError::UnknownFrameType(3)));
        assert_eq!(parse_frame_type(&[0x81]), Ok(FrameType::Inter));
        assert_eq!(parse_aac_config(&[]), Err(ValueError::EmptyAacConfig));
        let ids = ExtensionIds::default();
        // two-byte block with id 18 twice
        let data = [18, 4, 0, 0, 0, 1, 18, 4, 0, 0, 0, 2];
        assert_eq!(
            RtmExtensions::parse(0x1000, &data, &ids),
            Err(ExtError::Duplicate(RtmExt::DecodingTimestamp))
        );
    }
}
