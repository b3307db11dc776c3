//! RTP header-extension URIs (RFC 8285 `a=extmap`) known to rtmlive.
//!
//! One enum is shared by the SDP layer, both miniSDP wire formats and the RTP layer, so
//! that "which id carries the DTS" is answered by one lookup in every part of the server.
//! The numeric tables of the two miniSDP versions live here too, next to the URIs they
//! index, so a new URI is added in exactly one place.

/// A header-extension URI that rtmlive understands or that the miniSDP tables can carry.
///
/// The set is closed on purpose: anything else is kept as plain text in the SDP model
/// ([`crate::sdp::Extmap::uri`]) and dropped by the miniSDP compressors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtensionUri {
    /// `http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time`
    AbsSendTime,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/playout-delay`
    PlayoutDelay,
    /// `http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01`
    TransportWideCc,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/meta-data-01`
    MetaData01,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/meta-data-02`
    MetaData02,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/meta-data-03`
    MetaData03,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/decoding-timestamp`: the frame DTS.
    DecodingTimestamp,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/video-composition-time`: CTS, v0 spelling.
    VideoCompositionTime,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/video-frame-type`
    VideoFrameType,
    /// `uri:webrtc:rtc:rtp-hdrext:video:CompositionTime` (camel case, v0 table index 9).
    CompositionTimeLegacy,
    /// `uri:webrtc:rtc:rtp-hdrext:video:compositiontime`: CTS as deployed (default id 19).
    CompositionTime,
    /// `uri:webrtc:rtc:rtp-hdrext:video:frame-seq-range` (default id 21).
    FrameSeqRange,
    /// `uri:webrtc:rtc:rtp-hdrext:video:frame-type` (default id 22).
    FrameType,
    /// `uri:webrtc:rtc:rtp-hdrext:video:reference-frame-timestamp` (default id 23).
    ReferenceFrameTimestamp,
    /// `uri:webrtc:rtc:rtp-hdrext:audio:aac-config` (default id 27).
    AacConfig,
    /// `urn:ietf:params:rtp-hdrext:sdes:mid`
    SdesMid,
    /// `urn:ietf:params:rtp-hdrext:ssrc-audio-level`
    AudioLevel,
    /// `urn:ietf:params:rtp-hdrext:toffset`
    TransmissionOffset,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time`
    AbsCaptureTime,
    /// `urn:3gpp:video-orientation`
    VideoOrientation,
    /// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`
    RtpStreamId,
    /// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`
    RepairedRtpStreamId,
}

/// Every variant, in extended-table index order (index = position).
const EXT_TABLE: [ExtensionUri; 22] = [
    ExtensionUri::AbsSendTime,
    ExtensionUri::PlayoutDelay,
    ExtensionUri::TransportWideCc,
    ExtensionUri::MetaData01,
    ExtensionUri::MetaData02,
    ExtensionUri::MetaData03,
    ExtensionUri::DecodingTimestamp,
    ExtensionUri::VideoCompositionTime,
    ExtensionUri::VideoFrameType,
    ExtensionUri::CompositionTimeLegacy,
    ExtensionUri::CompositionTime,
    ExtensionUri::FrameSeqRange,
    ExtensionUri::FrameType,
    ExtensionUri::ReferenceFrameTimestamp,
    ExtensionUri::AacConfig,
    ExtensionUri::SdesMid,
    ExtensionUri::AudioLevel,
    ExtensionUri::TransmissionOffset,
    ExtensionUri::AbsCaptureTime,
    ExtensionUri::VideoOrientation,
    ExtensionUri::RtpStreamId,
    ExtensionUri::RepairedRtpStreamId,
];

/// Number of entries of the v0 table (indexes 0..=9 of [`EXT_TABLE`]).
const V0_TABLE_LEN: usize = 10;

impl ExtensionUri {
    /// All known URIs, in extended-table order.
    pub const ALL: &'static [ExtensionUri] = &EXT_TABLE;

    /// The URI text as it appears in `a=extmap`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AbsSendTime => "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            Self::PlayoutDelay => "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
            Self::TransportWideCc => {
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
            }
            Self::MetaData01 => "http://www.webrtc.org/experiments/rtp-hdrext/meta-data-01",
            Self::MetaData02 => "http://www.webrtc.org/experiments/rtp-hdrext/meta-data-02",
            Self::MetaData03 => "http://www.webrtc.org/experiments/rtp-hdrext/meta-data-03",
            Self::DecodingTimestamp => {
                "http://www.webrtc.org/experiments/rtp-hdrext/decoding-timestamp"
            }
            Self::VideoCompositionTime => {
                "http://www.webrtc.org/experiments/rtp-hdrext/video-composition-time"
            }
            Self::VideoFrameType => "http://www.webrtc.org/experiments/rtp-hdrext/video-frame-type",
            Self::CompositionTimeLegacy => "uri:webrtc:rtc:rtp-hdrext:video:CompositionTime",
            Self::CompositionTime => "uri:webrtc:rtc:rtp-hdrext:video:compositiontime",
            Self::FrameSeqRange => "uri:webrtc:rtc:rtp-hdrext:video:frame-seq-range",
            Self::FrameType => "uri:webrtc:rtc:rtp-hdrext:video:frame-type",
            Self::ReferenceFrameTimestamp => {
                "uri:webrtc:rtc:rtp-hdrext:video:reference-frame-timestamp"
            }
            Self::AacConfig => "uri:webrtc:rtc:rtp-hdrext:audio:aac-config",
            Self::SdesMid => "urn:ietf:params:rtp-hdrext:sdes:mid",
            Self::AudioLevel => "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            Self::TransmissionOffset => "urn:ietf:params:rtp-hdrext:toffset",
            Self::AbsCaptureTime => "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
            Self::VideoOrientation => "urn:3gpp:video-orientation",
            Self::RtpStreamId => "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            Self::RepairedRtpStreamId => "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        }
    }

    /// Looks a URI up. Matching is exact and case-sensitive (like the v0 reference), after
    /// trimming surrounding whitespace; the two CompositionTime spellings are distinct
    /// variants so each round-trips to its own text. Use [`Self::is_composition_time`] to
    /// treat them alike.
    pub fn from_uri(uri: &str) -> Option<Self> {
        let uri = uri.trim();
        EXT_TABLE.iter().copied().find(|u| u.as_str() == uri)
    }

    /// Index in the v0 wire table (WIRE-FORMAT.md A.8), if v0 can carry this URI.
    pub fn v0_index(self) -> Option<u8> {
        let i = self.ext_index() as usize;
        (i < V0_TABLE_LEN).then_some(i as u8)
    }

    /// URI for a v0 table index; `None` for indexes the reference decoder skips (≥ 10).
    pub fn from_v0_index(index: u8) -> Option<Self> {
        let i = index as usize;
        if i < V0_TABLE_LEN {
            EXT_TABLE.get(i).copied()
        } else {
            None
        }
    }

    /// Index in the extended-format table (a superset of v0: indexes 0–9 are identical).
    pub fn ext_index(self) -> u8 {
        // The table is a permutation of all variants, so the search always succeeds;
        // the fallback is unreachable but keeps this total without a panic path.
        EXT_TABLE.iter().position(|u| *u == self).unwrap_or(0) as u8
    }

    /// URI for an extended-table index; `None` for indexes this build does not know.
    pub fn from_ext_index(index: u8) -> Option<Self> {
        EXT_TABLE.get(index as usize).copied()
    }

    /// True for every spelling of the composition-time (CTS) extension.
    pub fn is_composition_time(self) -> bool {
        matches!(
            self,
            Self::CompositionTime | Self::CompositionTimeLegacy | Self::VideoCompositionTime
        )
    }

    /// The id deployed RTM systems use for this URI (rtm-design.md); a default for
    /// answers when the offer proposed none, never a constant to rely on.
    pub fn default_id(self) -> Option<u8> {
        match self {
            Self::DecodingTimestamp => Some(18),
            Self::CompositionTime => Some(19),
            Self::FrameSeqRange => Some(21),
            Self::FrameType => Some(22),
            Self::ReferenceFrameTimestamp => Some(23),
            Self::AacConfig => Some(27),
            _ => None,
        }
    }
}

impl std::fmt::Display for ExtensionUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip() {
        for (i, u) in ExtensionUri::ALL.iter().enumerate() {
            assert_eq!(u.ext_index() as usize, i);
            assert_eq!(ExtensionUri::from_ext_index(i as u8), Some(*u));
            assert_eq!(ExtensionUri::from_uri(u.as_str()), Some(*u));
        }
        assert_eq!(
            ExtensionUri::from_v0_index(9),
            Some(ExtensionUri::CompositionTimeLegacy)
        );
        assert_eq!(ExtensionUri::from_v0_index(10), None);
        assert_eq!(ExtensionUri::FrameSeqRange.v0_index(), None);
        assert_eq!(ExtensionUri::DecodingTimestamp.v0_index(), Some(6));
    }

    #[test]
    fn lookup_is_case_sensitive() {
        assert_eq!(
            ExtensionUri::from_uri("uri:webrtc:rtc:rtp-hdrext:video:compositiontime"),
            Some(ExtensionUri::CompositionTime)
        );
        assert_eq!(ExtensionUri::from_uri("URN:3GPP:VIDEO-ORIENTATION"), None);
    }
}
