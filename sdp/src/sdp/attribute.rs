//! Typed `a=` attributes of the WebRTC subset, each with its parser and canonical writer.
//!
//! Every typed attribute writes back exactly the text it parses from canonical input, so
//! `parse(write(x)) == x` holds for the whole model; attributes outside the subset are kept
//! verbatim in [`Attribute::Other`] so nothing a browser sent is silently lost.

use std::fmt;

use super::error::AttributeError;

/// Media direction (`a=sendrecv` …, RFC 8866 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "sendrecv" => Self::SendRecv,
            "sendonly" => Self::SendOnly,
            "recvonly" => Self::RecvOnly,
            "inactive" => Self::Inactive,
            _ => return None,
        })
    }

    /// The direction the answerer must use for an offer with this direction (RFC 8829 5.3.1).
    pub fn reversed(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            d => d,
        }
    }
}

/// DTLS role negotiation (`a=setup`, RFC 4145/8842).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    ActPass,
    Active,
    Passive,
    HoldConn,
}

impl Setup {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActPass => "actpass",
            Self::Active => "active",
            Self::Passive => "passive",
            Self::HoldConn => "holdconn",
        }
    }
}

/// Hash function of a DTLS certificate fingerprint (RFC 8122 §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashFunction {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Md5,
    /// Any other token, kept lower-case.
    Other(String),
}

impl HashFunction {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sha1 => "sha-1",
            Self::Sha224 => "sha-224",
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
            Self::Md5 => "md5",
            Self::Other(s) => s,
        }
    }

    pub fn from_name(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "sha-1" => Self::Sha1,
            "sha-224" => Self::Sha224,
            "sha-256" => Self::Sha256,
            "sha-384" => Self::Sha384,
            "sha-512" => Self::Sha512,
            "md5" => Self::Md5,
            other => Self::Other(other.to_string()),
        }
    }

    /// Digest length in bytes, when the function is known.
    pub fn digest_len(&self) -> Option<usize> {
        Some(match self {
            Self::Sha1 => 20,
            Self::Sha224 => 28,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
            Self::Md5 => 16,
            Self::Other(_) => return None,
        })
    }
}

/// A DTLS certificate fingerprint; the digest is held as bytes, written as upper-case hex
/// pairs separated by colons.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub hash: HashFunction,
    pub digest: Vec<u8>,
}

impl Fingerprint {
    /// Parses `"<hash> <AA:BB:…>"` (the attribute value).
    pub fn parse(value: &str) -> Result<Self, AttributeError> {
        let (hash, hex) = value
            .trim()
            .split_once(' ')
            .ok_or(AttributeError::Malformed)?;
        let hash = HashFunction::from_name(hash);
        let mut digest = Vec::with_capacity(hex.len() / 3 + 1);
        for pair in hex.trim().split(':') {
            if pair.len() != 2 {
                return Err(AttributeError::Malformed);
            }
            digest.push(u8::from_str_radix(pair, 16).map_err(|_| AttributeError::Malformed)?);
        }
        if hash.digest_len().is_some_and(|n| n != digest.len()) {
            return Err(AttributeError::Malformed);
        }
        Ok(Self { hash, digest })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        f.write_str(self.hash.as_str())?;
        // One write per byte triple instead of a formatting call per byte: this text is
        // built for every v0 packet.
        for (i, b) in self.digest.iter().enumerate() {
            let triple = [
                if i == 0 { b' ' } else { b':' },
                HEX[(b >> 4) as usize],
                HEX[(b & 0x0F) as usize],
            ];
            f.write_str(std::str::from_utf8(&triple).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

/// ICE candidate type (RFC 8839 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    Host,
    Srflx,
    Prflx,
    Relay,
}

impl CandidateType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Srflx => "srflx",
            Self::Prflx => "prflx",
            Self::Relay => "relay",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "host" => Self::Host,
            "srflx" => Self::Srflx,
            "prflx" => Self::Prflx,
            "relay" => Self::Relay,
            _ => return None,
        })
    }
}

/// `a=candidate` (RFC 8839 §5.1). The address is text because browsers send mDNS names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub foundation: String,
    pub component: u16,
    pub transport: String,
    pub priority: u32,
    pub address: String,
    pub port: u16,
    pub typ: CandidateType,
    pub raddr: Option<String>,
    pub rport: Option<u16>,
    /// Remaining `name value` pairs in order (generation, network-id, tcptype, …).
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    pub fn parse(value: &str) -> Result<Self, AttributeError> {
        let mut t = value.split_ascii_whitespace();
        let mut next = || t.next().ok_or(AttributeError::Malformed);
        let foundation = next()?.to_string();
        let component = next()?.parse().map_err(|_| AttributeError::Malformed)?;
        let transport = next()?.to_string();
        let priority = next()?.parse().map_err(|_| AttributeError::Malformed)?;
        let address = next()?.to_string();
        let port = next()?.parse().map_err(|_| AttributeError::Malformed)?;
        if next()? != "typ" {
            return Err(AttributeError::Malformed);
        }
        let typ = CandidateType::from_name(next()?).ok_or(AttributeError::Malformed)?;
        let mut c = Candidate {
            foundation,
            component,
            transport,
            priority,
            address,
            port,
            typ,
            raddr: None,
            rport: None,
            extensions: Vec::new(),
        };
        while let Ok(name) = next() {
            let val = next()?;
            match name {
                "raddr" if c.raddr.is_none() => c.raddr = Some(val.to_string()),
                "rport" if c.rport.is_none() => {
                    c.rport = Some(val.parse().map_err(|_| AttributeError::Malformed)?)
                }
                _ => c.extensions.push((name.to_string(), val.to_string())),
            }
        }
        Ok(c)
    }

    /// The address as an IP, when it is a literal (not an mDNS name).
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.address.parse().ok()
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.typ.as_str()
        )?;
        if let Some(a) = &self.raddr {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.rport {
            write!(f, " rport {p}")?;
        }
        for (k, v) in &self.extensions {
            write!(f, " {k} {v}")?;
        }
        Ok(())
    }
}

/// `a=rtpmap:<pt> <name>/<clock>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rtpmap {
    pub pt: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// `a=fmtp:<pt> <params>`; the parameter text is kept as sent (it is codec-specific).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fmtp {
    pub pt: u8,
    pub params: String,
}

impl Fmtp {
    /// `key=value` pairs split at `;` (whitespace trimmed); a bare token has no value.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.params.split(';').filter_map(|p| {
            let p = p.trim();
            if p.is_empty() {
                return None;
            }
            Some(match p.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (p, None),
            })
        })
    }

    /// Value of one parameter (case-sensitive key).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs().find(|(k, _)| *k == key).and_then(|(_, v)| v)
    }
}

/// `a=rtcp-fb:<pt|*> <type> [<param>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtcpFb {
    /// `None` is the wildcard `*`.
    pub pt: Option<u8>,
    pub kind: String,
    pub param: Option<String>,
}

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Extmap {
    pub id: u16,
    pub direction: Option<Direction>,
    pub uri: String,
    pub attributes: Option<String>,
}

impl Extmap {
    /// The URI as a known [`crate::ExtensionUri`].
    pub fn known(&self) -> Option<crate::ExtensionUri> {
        crate::ExtensionUri::from_uri(&self.uri)
    }
}

/// `a=ssrc:<ssrc> <attribute>[:<value>]` (RFC 5576).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SsrcAttr {
    pub ssrc: u32,
    pub attribute: String,
    pub value: Option<String>,
}

/// One SDP attribute line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// `a=group:<semantics> <mid>…` (BUNDLE, LS, …).
    Group {
        semantics: String,
        mids: Vec<String>,
    },
    Mid(String),
    IceUfrag(String),
    IcePwd(String),
    IceOptions(Vec<String>),
    IceLite,
    Candidate(Candidate),
    EndOfCandidates,
    Fingerprint(Fingerprint),
    Setup(Setup),
    Direction(Direction),
    Rtpmap(Rtpmap),
    Fmtp(Fmtp),
    RtcpFb(RtcpFb),
    Extmap(Extmap),
    ExtmapAllowMixed,
    Ssrc(SsrcAttr),
    SsrcGroup {
        semantics: String,
        ssrcs: Vec<u32>,
    },
    /// `a=msid:<stream> [<track>]` (RFC 8830).
    Msid {
        stream: String,
        track: Option<String>,
    },
    RtcpMux,
    RtcpMuxOnly,
    RtcpRsize,
    /// `a=rtcp:<port> [<nettype> <addrtype> <addr>]`; the address part is kept as text.
    Rtcp {
        port: u16,
        address: Option<String>,
    },
    /// Anything else, verbatim (`a=name` or `a=name:value`).
    Other {
        name: String,
        value: Option<String>,
    },
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, AttributeError> {
    s.trim().parse().map_err(|_| AttributeError::Malformed)
}

impl Attribute {
    /// Parses the text after `a=`.
    pub fn parse(text: &str) -> Result<Self, AttributeError> {
        let (name, value) = match text.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (text, None),
        };
        let need = || value.ok_or(AttributeError::MissingValue);
        Ok(match name {
            "group" => {
                let mut t = need()?.split_ascii_whitespace();
                let semantics = t.next().ok_or(AttributeError::Malformed)?.to_string();
                Self::Group {
                    semantics,
                    mids: t.map(str::to_string).collect(),
                }
            }
            "mid" => Self::Mid(need()?.trim().to_string()),
            "ice-ufrag" => Self::IceUfrag(need()?.trim().to_string()),
            "ice-pwd" => Self::IcePwd(need()?.trim().to_string()),
            "ice-options" => Self::IceOptions(
                need()?
                    .split_ascii_whitespace()
                    .map(str::to_string)
                    .collect(),
            ),
            "ice-lite" if value.is_none() => Self::IceLite,
            "candidate" => Self::Candidate(Candidate::parse(need()?)?),
            "end-of-candidates" if value.is_none() => Self::EndOfCandidates,
            "fingerprint" => Self::Fingerprint(Fingerprint::parse(need()?)?),
            "setup" => Self::Setup(match need()?.trim() {
                "actpass" => Setup::ActPass,
                "active" => Setup::Active,
                "passive" => Setup::Passive,
                "holdconn" => Setup::HoldConn,
                _ => return Err(AttributeError::Malformed),
            }),
            "sendrecv" | "sendonly" | "recvonly" | "inactive" if value.is_none() => {
                Self::Direction(Direction::from_name(name).ok_or(AttributeError::Malformed)?)
            }
            "rtpmap" => {
                let (pt, rest) = need()?.split_once(' ').ok_or(AttributeError::Malformed)?;
                let mut parts = rest.trim().split('/');
                let encoding = parts.next().unwrap_or_default().to_string();
                let clock_rate = num(parts.next().ok_or(AttributeError::Malformed)?)?;
                let channels = parts.next().map(num).transpose()?;
                if encoding.is_empty() || parts.next().is_some() {
                    return Err(AttributeError::Malformed);
                }
                Self::Rtpmap(Rtpmap {
                    pt: pt_num(pt)?,
                    encoding,
                    clock_rate,
                    channels,
                })
            }
            "fmtp" => {
                let v = need()?;
                let (pt, params) = v.split_once(' ').ok_or(AttributeError::Malformed)?;
                Self::Fmtp(Fmtp {
                    pt: pt_num(pt)?,
                    params: params.trim().to_string(),
                })
            }
            "rtcp-fb" => {
                let mut t = need()?.split_ascii_whitespace();
                let pt = match t.next().ok_or(AttributeError::Malformed)? {
                    "*" => None,
                    p => Some(pt_num(p)?),
                };
                let kind = t.next().ok_or(AttributeError::Malformed)?.to_string();
                let rest: Vec<&str> = t.collect();
                let param = (!rest.is_empty()).then(|| rest.join(" "));
                Self::RtcpFb(RtcpFb { pt, kind, param })
            }
            "extmap" => {
                let v = need()?;
                let (idd, rest) = v.split_once(' ').ok_or(AttributeError::Malformed)?;
                let (id, direction) = match idd.split_once('/') {
                    Some((i, d)) => (
                        num(i)?,
                        Some(Direction::from_name(d).ok_or(AttributeError::Malformed)?),
                    ),
                    None => (num(idd)?, None),
                };
                if !(1..=255).contains(&id) {
                    return Err(AttributeError::Malformed);
                }
                let rest = rest.trim();
                let (uri, attributes) = match rest.split_once(' ') {
                    Some((u, a)) => (u.to_string(), Some(a.trim().to_string())),
                    None => (rest.to_string(), None),
                };
                if uri.is_empty() {
                    return Err(AttributeError::Malformed);
                }
                Self::Extmap(Extmap {
                    id,
                    direction,
                    uri,
                    attributes,
                })
            }
            "extmap-allow-mixed" if value.is_none() => Self::ExtmapAllowMixed,
            "ssrc" => {
                let v = need()?;
                let (ssrc, rest) = match v.split_once(' ') {
                    Some((s, r)) => (s, r.trim()),
                    None => return Err(AttributeError::Malformed),
                };
                let (attribute, value) = match rest.split_once(':') {
                    Some((a, v)) => (a.to_string(), Some(v.to_string())),
                    None => (rest.to_string(), None),
                };
                if attribute.is_empty() {
                    return Err(AttributeError::Malformed);
                }
                Self::Ssrc(SsrcAttr {
                    ssrc: num(ssrc)?,
                    attribute,
                    value,
                })
            }
            "ssrc-group" => {
                let mut t = need()?.split_ascii_whitespace();
                let semantics = t.next().ok_or(AttributeError::Malformed)?.to_string();
                let ssrcs = t.map(num).collect::<Result<_, _>>()?;
                Self::SsrcGroup { semantics, ssrcs }
            }
            "msid" => {
                let mut t = need()?.split_ascii_whitespace();
                let stream = t.next().ok_or(AttributeError::Malformed)?.to_string();
                let track = t.next().map(str::to_string);
                if t.next().is_some() {
                    return Err(AttributeError::Malformed);
                }
                Self::Msid { stream, track }
            }
            "rtcp-mux" if value.is_none() => Self::RtcpMux,
            "rtcp-mux-only" if value.is_none() => Self::RtcpMuxOnly,
            "rtcp-rsize" if value.is_none() => Self::RtcpRsize,
            "rtcp" => {
                let v = need()?.trim();
                let (port, address) = match v.split_once(' ') {
                    Some((p, a)) => (p, Some(a.trim().to_string())),
                    None => (v, None),
                };
                Self::Rtcp {
                    port: num(port)?,
                    address,
                }
            }
            _ => {
                if name.is_empty() {
                    return Err(AttributeError::Malformed);
                }
                Self::Other {
                    name: name.to_string(),
                    value: value.map(str::to_string),
                }
            }
        })
    }
}

fn pt_num(s: &str) -> Result<u8, AttributeError> {
    let pt: u8 = num(s)?;
    if pt > 127 {
        return Err(AttributeError::Malformed);
    }
    Ok(pt)
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Group { semantics, mids } => {
                write!(f, "group:{semantics}")?;
                for m in mids {
                    write!(f, " {m}")?;
                }
                Ok(())
            }
            Self::Mid(m) => write!(f, "mid:{m}"),
            Self::IceUfrag(u) => write!(f, "ice-ufrag:{u}"),
            Self::IcePwd(p) => write!(f, "ice-pwd:{p}"),
            Self::IceOptions(o) => write!(f, "ice-options:{}", o.join(" ")),
            Self::IceLite => f.write_str("ice-lite"),
            Self::Candidate(c) => write!(f, "candidate:{c}"),
            Self::EndOfCandidates => f.write_str("end-of-candidates"),
            Self::Fingerprint(fp) => write!(f, "fingerprint:{fp}"),
            Self::Setup(s) => write!(f, "setup:{}", s.as_str()),
            Self::Direction(d) => f.write_str(d.as_str()),
            Self::Rtpmap(r) => {
                write!(f, "rtpmap:{} {}/{}", r.pt, r.encoding, r.clock_rate)?;
                if let Some(c) = r.channels {
                    write!(f, "/{c}")?;
                }
                Ok(())
            }
            Self::Fmtp(p) => write!(f, "fmtp:{} {}", p.pt, p.params),
            Self::RtcpFb(fb) => {
                match fb.pt {
                    Some(pt) => write!(f, "rtcp-fb:{pt} {}", fb.kind)?,
                    None => write!(f, "rtcp-fb:* {}", fb.kind)?,
                }
                if let Some(p) = &fb.param {
                    write!(f, " {p}")?;
                }
                Ok(())
            }
            Self::Extmap(e) => {
                write!(f, "extmap:{}", e.id)?;
                if let Some(d) = e.direction {
                    write!(f, "/{}", d.as_str())?;
                }
                write!(f, " {}", e.uri)?;
                if let Some(a) = &e.attributes {
                    write!(f, " {a}")?;
                }
                Ok(())
            }
            Self::ExtmapAllowMixed => f.write_str("extmap-allow-mixed"),
            Self::Ssrc(s) => {
                write!(f, "ssrc:{} {}", s.ssrc, s.attribute)?;
                if let Some(v) = &s.value {
                    write!(f, ":{v}")?;
                }
                Ok(())
            }
            Self::SsrcGroup { semantics, ssrcs } => {
                write!(f, "ssrc-group:{semantics}")?;
                for s in ssrcs {
                    write!(f, " {s}")?;
                }
                Ok(())
            }
            Self::Msid { stream, track } => {
                write!(f, "msid:{stream}")?;
                if let Some(t) = track {
                    write!(f, " {t}")?;
                }
                Ok(())
            }
            Self::RtcpMux => f.write_str("rtcp-mux"),
            Self::RtcpMuxOnly => f.write_str("rtcp-mux-only"),
            Self::RtcpRsize => f.write_str("rtcp-rsize"),
            Self::Rtcp { port, address } => {
                write!(f, "rtcp:{port}")?;
                if let Some(a) = address {
                    write!(f, " {a}")?;
                }
                Ok(())
            }
            Self::Other { name, value } => {
                f.write_str(name)?;
                if let Some(v) = value {
                    write!(f, ":{v}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_attributes_round_trip() {
        for line in [
            "group:BUNDLE 0 1",
            "group:BUNDLE",
            "candidate:1467250027 1 udp 2122260223 192.168.1.23 54321 typ host generation 0 network-id 1",
            "candidate:foundation 1 udp 100 203.0.113.10 8000 typ srflx raddr 203.0.113.10 rport 8000 generation 0",
            "fingerprint:sha-256 5C:1F:8E:0A:73:B2:49:D6:11:C4:9A:2E:7F:30:68:BD:E5:02:AF:94:3C:71:D8:26:5B:E9:0F:84:A3:17:6C:C2",
            "rtpmap:111 opus/48000/2",
            "rtpmap:96 VP8/90000",
            "fmtp:63 111/111",
            "rtcp-fb:96 nack pli",
            "rtcp-fb:* transport-cc",
            "extmap:3/sendonly urn:x attr",
            "ssrc:16777216 msid:live_stream01 aac",
            "ssrc:1 cname:x",
            "ssrc-group:FID 1 2",
            "msid:s t",
            "rtcp:9 IN IP4 0.0.0.0",
            "msid-semantic: WMS ",
            "ice-lite",
            "x-google-flag:conference",
        ] {
            let a = Attribute::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(a.to_string(), line);
        }
    }

    #[test]
    fn malformed_typed_attributes_are_errors() {
        for line in [
            "rtpmap:200 x/9000",
            "rtpmap:96 VP8",
            "fingerprint:sha-256 5C:1F",
            "candidate:1 1 udp 1 1.2.3.4",
            "setup:maybe",
            "extmap:0 urn:x",
            "ssrc:abc cname:x",
        ] {
            assert!(Attribute::parse(line).is_err(), "{line}");
        }
    }
}
