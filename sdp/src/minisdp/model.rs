//! The decoded form shared by both wire versions.
//!
//! One struct for v0 and the extended format so the server and the player write their
//! logic once; the encoders check that a value fits the chosen version and return an
//! [`EncodeError`](super::EncodeError) instead of writing something the peer would misread.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::ExtensionUri;
use crate::sdp::{CandidateType, Direction, Fingerprint};

/// Which wire layout a packet uses. The server answers in the version the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum WireVersion {
    /// The deployed reference format (version byte 0).
    V0,
    /// rtmlive's extended TLV format (version byte [`EXT_VERSION`](super::EXT_VERSION)).
    Ext,
}

/// Offer, answer, or error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SdpKind {
    Offer,
    Answer,
    /// An error reply: look at [`MiniSdp::status`]; v0 writes these with the offer bits.
    Error,
}

/// Result code carried by answers, error replies and stop packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Status(pub u16);

impl Status {
    pub const OK: Self = Self(0);
    pub const FORMAT_ERROR: Self = Self(100);
    pub const PARAMETER_ERROR: Self = Self(101);
    pub const STREAM_INFO_ERROR: Self = Self(102);
    pub const AUTH_ERROR: Self = Self(103);
    pub const STREAM_NOT_FOUND: Self = Self(104);

    pub fn is_ok(self) -> bool {
        self.0 == 0
    }
}

/// DTLS role as the header carries it (`a=setup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DtlsRole {
    ActPass,
    Active,
    Passive,
}

/// How the mids are reconstructed (v0 flags A bit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum MidStyle {
    /// `0`, `1`, … in packet order.
    Numeric,
    /// `audio`, `video`, `data`.
    Kind,
}

/// The optional push/pull indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PushPull {
    Push,
    Pull,
}

/// One ICE candidate reduced to what the edge needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MiniCandidate {
    /// Unspecified (`0.0.0.0`) when the sender only knew a port (an mDNS candidate in v0).
    pub ip: IpAddr,
    pub port: u16,
    /// v0 cannot carry it and decodes as `Srflx` (the reference's template).
    pub typ: CandidateType,
}

impl MiniCandidate {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    pub fn has_address(&self) -> bool {
        !self.ip.is_unspecified()
    }
}

/// Media kind of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum MiniMediaKind {
    Audio,
    Video,
    Data,
}

impl MiniMediaKind {
    /// The `audio`/`video`/`data` mid of [`MidStyle::Kind`].
    pub fn mid_name(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Data => "data",
        }
    }
}

/// Codecs the tables can name (WIRE-FORMAT.md A.6; `Rtx` is extended-format only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum CodecName {
    Opus,
    Mp4aLatm,
    Mp4aAdts,
    H264,
    H265,
    FlexFec03,
    Rtx,
}

impl CodecName {
    /// The rtpmap encoding name (case-sensitive in v0).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opus => "opus",
            Self::Mp4aLatm => "MP4A-LATM",
            Self::Mp4aAdts => "MP4A-ADTS",
            Self::H264 => "H264",
            Self::H265 => "H265",
            Self::FlexFec03 => "flexfec-03",
            Self::Rtx => "rtx",
        }
    }

    /// Table id (same numbers in both versions).
    pub fn id(self) -> u8 {
        match self {
            Self::Opus => 0,
            Self::Mp4aLatm => 1,
            Self::Mp4aAdts => 2,
            Self::H264 => 3,
            Self::H265 => 4,
            Self::FlexFec03 => 5,
            Self::Rtx => 6,
        }
    }

    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::Opus,
            1 => Self::Mp4aLatm,
            2 => Self::Mp4aAdts,
            3 => Self::H264,
            4 => Self::H265,
            5 => Self::FlexFec03,
            6 => Self::Rtx,
            _ => return None,
        })
    }

    /// Exact (case-sensitive) rtpmap name lookup, like the reference.
    pub fn from_rtpmap(name: &str) -> Option<Self> {
        [
            Self::Opus,
            Self::Mp4aLatm,
            Self::Mp4aAdts,
            Self::H264,
            Self::H265,
            Self::FlexFec03,
            Self::Rtx,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }

    pub fn is_aac(self) -> bool {
        matches!(self, Self::Mp4aLatm | Self::Mp4aAdts)
    }
}

/// Clock rates by 4-bit index (MPEG-4 sampling-frequency index, plus 90000 at 15).
pub const FREQUENCIES: [u32; 16] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350, 0, 0, 90_000,
];

/// The 4-bit index of a clock rate (index 14 is never produced).
pub fn frequency_index(hz: u32) -> Option<u8> {
    FREQUENCIES
        .iter()
        .take(14)
        .position(|f| *f == hz)
        .map(|i| i as u8)
        .or((hz == 90_000).then_some(15))
}

/// RTCP feedback a codec accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Feedback {
    pub nack: bool,
    /// Extended format only.
    pub nack_pli: bool,
    /// Extended format only.
    pub ccm_fir: bool,
    pub goog_remb: bool,
    pub transport_cc: bool,
}

/// The AAC fmtp items (RFC 6416 / RFC 3640 style parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct AacParams {
    pub object: u8,
    pub ps: bool,
    pub sbr: bool,
    pub stereo: bool,
    pub cpresent: bool,
    /// AudioSpecificConfig bytes (`config=` is their hex text).
    pub config: Vec<u8>,
}

/// H.264 fmtp items (extended format only; v0 expands a fixed `42e01f`, mode 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct H264Params {
    pub profile_level_id: [u8; 3],
    pub packetization_mode: u8,
    pub level_asymmetry_allowed: bool,
}

/// Opus fmtp items (extended format only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct OpusParams {
    /// 0 = absent.
    pub minptime: u8,
    pub useinbandfec: bool,
    pub stereo: bool,
}

/// One codec of a section.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MiniCodec {
    pub name: CodecName,
    /// RTP payload type, 0–127.
    pub pt: u8,
    pub clock_rate: u32,
    /// Channel count (v0: 0–3; extended: 0–15). 0 for video.
    pub channels: u8,
    pub feedback: Feedback,
    /// fmtp `bframe-enabled`.
    pub bframe: bool,
    pub aac: Option<AacParams>,
    pub h264: Option<H264Params>,
    pub opus: Option<OpusParams>,
    /// RTX `apt` (extended format only).
    pub apt: Option<u8>,
}

impl MiniCodec {
    /// A codec with no feedback and no parameters.
    pub fn new(name: CodecName, pt: u8, clock_rate: u32, channels: u8) -> Self {
        Self {
            name,
            pt,
            clock_rate,
            channels,
            feedback: Feedback::default(),
            bframe: false,
            aac: None,
            h264: None,
            opus: None,
            apt: None,
        }
    }
}

/// One `a=extmap` the tables can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MiniExtension {
    pub id: u8,
    pub uri: ExtensionUri,
}

/// One media section.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MiniMedia {
    pub kind: MiniMediaKind,
    /// Distinct non-zero SSRCs (v0: at most 2).
    pub ssrcs: Vec<u32>,
    /// `a=ssrc-group:FID <primary> <rtx>` pairs (extended format only).
    pub rtx_groups: Vec<(u32, u32)>,
    pub codecs: Vec<MiniCodec>,
    pub extensions: Vec<MiniExtension>,
}

impl MiniMedia {
    pub fn new(kind: MiniMediaKind) -> Self {
        Self {
            kind,
            ssrcs: Vec::new(),
            rtx_groups: Vec::new(),
            codecs: Vec::new(),
            extensions: Vec::new(),
        }
    }

    /// The id this section gives a header extension.
    pub fn extension_id(&self, uri: ExtensionUri) -> Option<u8> {
        self.extensions.iter().find(|e| e.uri == uri).map(|e| e.id)
    }

    /// Codecs of one name, in packet order.
    pub fn codecs_named(&self, name: CodecName) -> impl Iterator<Item = &MiniCodec> {
        self.codecs.iter().filter(move |c| c.name == name)
    }
}

/// A decoded offer, answer or error reply of either version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MiniSdp {
    pub version: WireVersion,
    pub kind: SdpKind,
    pub status: Status,
    /// Retransmission de-duplication number; an answer echoes the offer's.
    pub seq: u16,
    pub direction: Direction,
    pub role: DtlsRole,
    /// Media protocol is `UDP/TLS/RTP/SAVPF` (DTLS-SRTP). Not packet encryption.
    pub dtls_srtp: bool,
    /// 0-RTT / immediate send requested (v0 stores this inverted).
    pub imm_send: bool,
    /// `a=ice-lite` (extended format only).
    pub ice_lite: bool,
    pub push_pull: Option<PushPull>,
    /// v0 "AAC fmtp supported" switch: when set, every AAC codec carries [`AacParams`].
    pub aac_fmtp: bool,
    /// The `o=` session id was exactly `1`.
    pub session_id_one: bool,
    pub mid_style: MidStyle,
    /// v0: at most one.
    pub candidates: Vec<MiniCandidate>,
    pub ice_ufrag: String,
    pub ice_pwd: String,
    /// Full stream URL, starting with `webrtc://`.
    pub url: String,
    pub fingerprint: Option<Fingerprint>,
    /// Server signature, echoed in stop packets (raw wire value).
    pub svrsig: String,
    /// Opaque signed auth token (v0: empty or exactly 16 bytes, sent as 16 zero bytes when empty).
    pub auth: Vec<u8>,
    /// 0-RTT resumption ticket (extended format only).
    pub ticket: Option<Vec<u8>>,
    pub media: Vec<MiniMedia>,
}

impl MiniSdp {
    /// An empty description of `kind` with the v0 defaults (pull not stated, imm_send off).
    pub fn new(version: WireVersion, kind: SdpKind, url: &str) -> Self {
        Self {
            version,
            kind,
            status: Status::OK,
            seq: 0,
            direction: Direction::SendOnly,
            role: DtlsRole::ActPass,
            dtls_srtp: true,
            imm_send: false,
            ice_lite: false,
            push_pull: None,
            aac_fmtp: true,
            session_id_one: false,
            mid_style: MidStyle::Numeric,
            candidates: Vec::new(),
            ice_ufrag: String::new(),
            ice_pwd: String::new(),
            url: url.to_string(),
            fingerprint: None,
            svrsig: String::new(),
            auth: Vec::new(),
            ticket: None,
            media: Vec::new(),
        }
    }

    /// The error reply the reference sends (status + seq + URL, nothing else).
    pub fn error_reply(version: WireVersion, status: Status, seq: u16, url: &str) -> Self {
        Self {
            status,
            seq,
            dtls_srtp: false,
            session_id_one: true,
            ..Self::new(version, SdpKind::Error, url)
        }
    }

    pub fn audio(&self) -> Option<&MiniMedia> {
        self.media.iter().find(|m| m.kind == MiniMediaKind::Audio)
    }

    pub fn video(&self) -> Option<&MiniMedia> {
        self.media.iter().find(|m| m.kind == MiniMediaKind::Video)
    }

    /// Candidate addresses that are usable (not unspecified).
    pub fn candidate_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.candidates
            .iter()
            .filter(|c| c.has_address())
            .map(MiniCandidate::addr)
    }

    /// The string the v0 decoder hands to the application as svrsig:
    /// `<candidate ip>:<ice ufrag>:<wire svrsig>`; a client echoes it in its stop packet.
    pub fn reference_svrsig(&self) -> String {
        let ip = self
            .candidates
            .first()
            .map(|c| c.ip)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        format!("{ip}:{}:{}", self.ice_ufrag, self.svrsig)
    }
}

/// A stop-stream packet (`FF "STP"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StopPacket {
    pub version: WireVersion,
    pub status: Status,
    pub seq: u16,
    /// Full `ip:server-ufrag:client-ufrag` string from the answer.
    pub svrsig: String,
    /// v0: empty (16 zero bytes on the wire) or 16 bytes; extended: opaque token.
    pub auth: Vec<u8>,
}

/// Any miniSDP packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Packet {
    Sdp(MiniSdp),
    Stop(StopPacket),
}
