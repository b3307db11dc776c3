//! Errors of the miniSDP codecs.

/// Why a datagram was not a valid miniSDP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a miniSDP packet (no FF \"SDP\"/\"STP\" header)")]
    NotMiniSdp,
    #[error("unsupported miniSDP version {0:#04x}")]
    UnsupportedVersion(u8),
    #[error("packet truncated while reading {field} at offset {offset}")]
    Truncated { field: &'static str, offset: usize },
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    /// A text field holds CR, LF or NUL. Text fields end up as lines of an SDP (and in logs), so a
    /// line break inside one would let a 1-packet offer inject SDP attributes.
    #[error("{field} contains a line break or NUL")]
    LineBreak { field: &'static str },
    #[error("invalid direction value {0}")]
    InvalidDirection(u8),
    #[error("invalid {field} value {value}")]
    InvalidValue { field: &'static str, value: u32 },
    #[error("two media sections of kind {0:?}")]
    DuplicateMediaKind(super::MiniMediaKind),
    #[error("AAC config is not hex text")]
    InvalidAacConfig,
    #[error("invalid DTLS fingerprint")]
    InvalidFingerprint,
    #[error("unknown critical TLV type {0:#04x}")]
    UnknownCriticalTlv(u8),
    #[error("TLV type {0:#04x} appears twice")]
    DuplicateTlv(u8),
    #[error("TLV type {tlv:#04x} has invalid length {len}")]
    InvalidTlvLength { tlv: u8, len: usize },
    #[error("packet larger than {0} bytes")]
    TooLarge(usize),
}

/// Why a description cannot be written in the requested version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("URL must start with webrtc://")]
    UrlScheme,
    #[error("{field} is longer than {max} bytes")]
    TooLong { field: &'static str, max: usize },
    #[error("packet would be {size} bytes (limit {limit})")]
    PacketTooLarge { size: usize, limit: usize },
    #[error("v0 carries at most one media section of each kind ({0:?} repeats)")]
    DuplicateMediaKind(super::MiniMediaKind),
    #[error("too many {field}: {count} (max {max})")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{0} cannot be represented in this version")]
    Unrepresentable(&'static str),
}

/// Why an SDP could not be compressed to miniSDP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressError {
    #[error("two m-sections with mid {0:?}")]
    DuplicateMid(String),
    #[error("v0 carries at most one m-section of each kind")]
    DuplicateMediaKind,
    #[error("invalid fmtp value for {0}")]
    InvalidFmtp(&'static str),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}
