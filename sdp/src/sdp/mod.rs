//! Typed SDP (RFC 8866) for the WebRTC subset, with a lenient parser and a CRLF writer.
//!
//! The model is a faithful, ordered list of lines: typed where rtmlive needs to reason
//! about a value (ICE, DTLS, codecs, extensions, SSRCs, direction), verbatim
//! ([`Attribute::Other`], [`Sdp::extra_lines`]) where it does not. That keeps a round trip
//! through the model lossless for everything a browser sends, while the accessors below
//! give the server the questions it actually asks ("which PT is H.264 packetization-mode 1?",
//! "which id did the offer give the DTS extension?").

pub mod answer;
mod attribute;
mod error;
mod parse;
mod write;

pub use attribute::{
    Attribute, Candidate, CandidateType, Direction, Extmap, Fingerprint, Fmtp, HashFunction,
    RtcpFb, Rtpmap, Setup, SsrcAttr,
};
pub use error::{AttributeError, ParseError, ParseErrorKind};

use crate::ExtensionUri;

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub username: String,
    /// Kept as text: browsers send 64-bit values and the v0 format tests the exact string `1`.
    pub session_id: String,
    pub session_version: String,
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

impl Default for Origin {
    fn default() -> Self {
        Self {
            username: "-".into(),
            session_id: "0".into(),
            session_version: "0".into(),
            net_type: "IN".into(),
            addr_type: "IP4".into(),
            address: "127.0.0.1".into(),
        }
    }
}

/// `c=<nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

impl Connection {
    /// `IN IP4 0.0.0.0`, the placeholder every WebRTC m-section carries.
    pub fn ip4_any() -> Self {
        Self {
            net_type: "IN".into(),
            addr_type: "IP4".into(),
            address: "0.0.0.0".into(),
        }
    }
}

/// The media kind of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
    Application,
    Other(String),
}

impl MediaKind {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Application => "application",
            Self::Other(s) => s,
        }
    }

    pub fn from_name(s: &str) -> Self {
        match s {
            "audio" => Self::Audio,
            "video" => Self::Video,
            "application" => Self::Application,
            o => Self::Other(o.to_string()),
        }
    }
}

/// One media section (`m=` line and everything up to the next one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Media {
    pub kind: MediaKind,
    pub port: u16,
    pub port_count: Option<u16>,
    pub protocol: String,
    /// Format tokens of the m-line (payload types for RTP, `webrtc-datachannel` for SCTP).
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    /// Lines other than `c=`/`a=` inside the section (`i=`, `b=`, `k=`), verbatim.
    pub extra_lines: Vec<(char, String)>,
    pub attributes: Vec<Attribute>,
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sdp {
    pub version: u32,
    pub origin: Origin,
    pub session_name: String,
    /// `t=` value (WebRTC always uses `0 0`).
    pub timing: String,
    pub connection: Option<Connection>,
    /// Session lines other than v/o/s/t/c/a (`i=`, `u=`, `e=`, `p=`, `b=`, `z=`, `k=`, `r=`),
    /// verbatim and in order.
    pub extra_lines: Vec<(char, String)>,
    pub attributes: Vec<Attribute>,
    pub media: Vec<Media>,
}

impl Default for Sdp {
    fn default() -> Self {
        Self {
            version: 0,
            origin: Origin::default(),
            session_name: "-".into(),
            timing: "0 0".into(),
            connection: None,
            extra_lines: Vec::new(),
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }
}

/// A codec of an m-section: its `rtpmap` plus the `fmtp` and `rtcp-fb` lines for its PT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecView<'a> {
    pub pt: u8,
    pub name: &'a str,
    pub clock_rate: u32,
    pub channels: Option<u16>,
    pub fmtp: Option<&'a Fmtp>,
    /// `rtcp-fb` lines for this PT and for `*`.
    pub feedback: Vec<&'a RtcpFb>,
}

impl CodecView<'_> {
    /// True if an `rtcp-fb` line of this kind (and parameter, `None` = no parameter) exists.
    pub fn has_feedback(&self, kind: &str, param: Option<&str>) -> bool {
        self.feedback
            .iter()
            .any(|f| f.kind == kind && f.param.as_deref() == param)
    }

    /// Value of an fmtp parameter.
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        self.fmtp.and_then(|f| f.get(key))
    }
}

fn first<'a, T>(attrs: &'a [Attribute], f: impl Fn(&'a Attribute) -> Option<T>) -> Option<T> {
    attrs.iter().find_map(f)
}

impl Media {
    /// A new section with no attributes.
    pub fn new(kind: MediaKind, protocol: &str) -> Self {
        Self {
            kind,
            port: 9,
            port_count: None,
            protocol: protocol.into(),
            formats: Vec::new(),
            connection: None,
            extra_lines: Vec::new(),
            attributes: Vec::new(),
        }
    }

    pub fn mid(&self) -> Option<&str> {
        first(&self.attributes, |a| match a {
            Attribute::Mid(m) => Some(m.as_str()),
            _ => None,
        })
    }

    /// The section's direction; `sendrecv` when absent (RFC 8866 §6.7).
    pub fn direction(&self) -> Option<Direction> {
        first(&self.attributes, |a| match a {
            Attribute::Direction(d) => Some(*d),
            _ => None,
        })
    }

    pub fn ice_ufrag(&self) -> Option<&str> {
        first(&self.attributes, |a| match a {
            Attribute::IceUfrag(u) => Some(u.as_str()),
            _ => None,
        })
    }

    pub fn ice_pwd(&self) -> Option<&str> {
        first(&self.attributes, |a| match a {
            Attribute::IcePwd(u) => Some(u.as_str()),
            _ => None,
        })
    }

    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        first(&self.attributes, |a| match a {
            Attribute::Fingerprint(f) => Some(f),
            _ => None,
        })
    }

    pub fn setup(&self) -> Option<Setup> {
        first(&self.attributes, |a| match a {
            Attribute::Setup(s) => Some(*s),
            _ => None,
        })
    }

    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Candidate(c) => Some(c),
            _ => None,
        })
    }

    pub fn extmaps(&self) -> impl Iterator<Item = &Extmap> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Extmap(e) => Some(e),
            _ => None,
        })
    }

    /// The id the section gives a known extension URI.
    pub fn extension_id(&self, uri: ExtensionUri) -> Option<u16> {
        self.extmaps()
            .find(|e| e.known() == Some(uri))
            .map(|e| e.id)
    }

    /// Distinct SSRCs in order of first appearance (`a=ssrc` lines).
    pub fn ssrcs(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for a in &self.attributes {
            if let Attribute::Ssrc(s) = a
                && !out.contains(&s.ssrc)
            {
                out.push(s.ssrc);
            }
        }
        out
    }

    pub fn has(&self, attr: &Attribute) -> bool {
        self.attributes.contains(attr)
    }

    /// Codecs in `rtpmap` order (the order of preference an offerer writes them in is the
    /// m-line order; see [`Self::codecs_in_preference_order`]).
    pub fn codecs(&self) -> Vec<CodecView<'_>> {
        self.attributes
            .iter()
            .filter_map(|a| match a {
                Attribute::Rtpmap(r) => Some(r),
                _ => None,
            })
            .map(|r| self.codec_view(r))
            .collect()
    }

    /// Codecs in m-line format order (the offerer's preference).
    pub fn codecs_in_preference_order(&self) -> Vec<CodecView<'_>> {
        let mut codecs = self.codecs();
        let rank = |pt: u8| {
            self.formats
                .iter()
                .position(|f| f.parse::<u8>().ok() == Some(pt))
                .unwrap_or(usize::MAX)
        };
        codecs.sort_by_key(|c| rank(c.pt));
        codecs
    }

    fn codec_view<'a>(&'a self, r: &'a Rtpmap) -> CodecView<'a> {
        let fmtp = first(&self.attributes, |a| match a {
            Attribute::Fmtp(f) if f.pt == r.pt => Some(f),
            _ => None,
        });
        let feedback = self
            .attributes
            .iter()
            .filter_map(|a| match a {
                Attribute::RtcpFb(fb) if fb.pt.is_none() || fb.pt == Some(r.pt) => Some(fb),
                _ => None,
            })
            .collect();
        CodecView {
            pt: r.pt,
            name: &r.encoding,
            clock_rate: r.clock_rate,
            channels: r.channels,
            fmtp,
            feedback,
        }
    }
}

impl Sdp {
    /// Parses SDP text (CRLF or LF line ends). See [`parse`](Self::parse) errors in
    /// [`ParseErrorKind`].
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        parse::parse(text)
    }

    /// Session-level attribute lookup helper.
    fn session_attr<'a, T>(&'a self, f: impl Fn(&'a Attribute) -> Option<T>) -> Option<T> {
        first(&self.attributes, f)
    }

    /// The BUNDLE group's mids, if any.
    pub fn bundle(&self) -> Option<&[String]> {
        self.session_attr(|a| match a {
            Attribute::Group { semantics, mids } if semantics == "BUNDLE" => Some(mids.as_slice()),
            _ => None,
        })
    }

    pub fn is_ice_lite(&self) -> bool {
        self.attributes.contains(&Attribute::IceLite)
    }

    /// ICE ufrag: media level first (Chrome), then session level (Firefox).
    pub fn ice_ufrag(&self) -> Option<&str> {
        self.media.iter().find_map(Media::ice_ufrag).or_else(|| {
            self.session_attr(|a| match a {
                Attribute::IceUfrag(u) => Some(u.as_str()),
                _ => None,
            })
        })
    }

    /// ICE password: media level first, then session level.
    pub fn ice_pwd(&self) -> Option<&str> {
        self.media.iter().find_map(Media::ice_pwd).or_else(|| {
            self.session_attr(|a| match a {
                Attribute::IcePwd(u) => Some(u.as_str()),
                _ => None,
            })
        })
    }

    /// DTLS fingerprint: media level first, then session level (Firefox's style).
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.media.iter().find_map(Media::fingerprint).or_else(|| {
            self.session_attr(|a| match a {
                Attribute::Fingerprint(f) => Some(f),
                _ => None,
            })
        })
    }

    /// DTLS setup role: media level first, then session level.
    pub fn setup(&self) -> Option<Setup> {
        self.media.iter().find_map(Media::setup).or_else(|| {
            self.session_attr(|a| match a {
                Attribute::Setup(s) => Some(*s),
                _ => None,
            })
        })
    }

    /// All candidates of all sections, in order.
    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.media.iter().flat_map(Media::candidates)
    }

    /// First section of a kind.
    pub fn media_of(&self, kind: &MediaKind) -> Option<&Media> {
        self.media.iter().find(|m| &m.kind == kind)
    }

    /// Serializes with CRLF line ends.
    pub fn to_sdp_string(&self) -> String {
        self.to_string()
    }
}

impl std::str::FromStr for Sdp {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
