//! SDP → miniSDP.
//!
//! For v0 this follows the reference encoder rule for rule (WIRE-FORMAT.md A.4–A.8) so the
//! golden vectors come out byte-identical: sections walked in byte order of their mid, the
//! last section wins for the session-wide values, unknown codecs and extmaps dropped. Where
//! the reference corrupts or aborts, this returns an error or drops only the offending
//! item (see `docs/minisdp.md`, "Differences from the reference"). For the extended
//! format the section order, all literal-IP candidates and the extra fmtp are kept.

use std::net::IpAddr;

use super::model::*;
use super::{CompressError, WireVersion};
use crate::sdp::{Attribute, CandidateType, CodecView, Direction, Media, MediaKind, Sdp, Setup};

/// The packet attributes that are not part of the SDP text (the `attrs_in` of the vectors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressOptions {
    pub version: WireVersion,
    pub kind: SdpKind,
    /// Full URL with `webrtc://`.
    pub url: String,
    pub seq: u16,
    pub status: Status,
    pub svrsig: String,
    pub imm_send: bool,
    /// v0 "AAC fmtp supported" switch (default on).
    pub aac_fmtp: bool,
    pub push_pull: Option<PushPull>,
    pub auth: Vec<u8>,
    pub ticket: Option<Vec<u8>>,
    /// Which codecs to keep (extended format; v0 keeps what its table can name).
    pub codecs: CodecSet,
    /// Keep at most this many candidates (extended format; v0 carries one).
    pub max_candidates: usize,
}

/// Codec selection for the extended format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodecSet {
    /// Everything the codec table can name.
    #[default]
    All,
    /// What an rtmlive edge can send: H.264 with packetization-mode 1, H.265, Opus, AAC,
    /// and RTX for those; drops packetization-mode 0, FlexFEC and orphaned RTX. Chrome's
    /// offer shrinks by ~100 bytes.
    Playable,
}

impl CompressOptions {
    pub fn new(version: WireVersion, kind: SdpKind, url: &str) -> Self {
        Self {
            version,
            kind,
            url: url.into(),
            seq: 0,
            status: Status::OK,
            svrsig: String::new(),
            imm_send: false,
            aac_fmtp: true,
            push_pull: None,
            auth: Vec::new(),
            ticket: None,
            codecs: CodecSet::All,
            max_candidates: 8,
        }
    }
}

fn int_flag(c: &CodecView<'_>, key: &'static str) -> Result<bool, CompressError> {
    match c.fmtp_param(key) {
        None => Ok(false),
        Some(v) => v
            .parse::<i64>()
            .map(|n| n != 0)
            .map_err(|_| CompressError::InvalidFmtp(key)),
    }
}

impl MiniSdp {
    /// Compresses `sdp` with the packet attributes in `opts`.
    pub fn from_sdp(sdp: &Sdp, opts: &CompressOptions) -> Result<Self, CompressError> {
        let v0 = opts.version == WireVersion::V0;
        let mut m = MiniSdp::new(opts.version, opts.kind, &opts.url);
        m.seq = opts.seq;
        m.status = opts.status;
        m.svrsig = opts.svrsig.clone();
        m.imm_send = opts.imm_send;
        m.aac_fmtp = opts.aac_fmtp;
        m.push_pull = opts.push_pull;
        m.auth = opts.auth.clone();
        m.ticket = opts.ticket.clone();
        if opts.kind == SdpKind::Error {
            m.dtls_srtp = false;
            m.session_id_one = true;
            return Ok(m);
        }
        m.session_id_one = sdp.origin.session_id == "1";
        m.ice_lite = !v0 && sdp.is_ice_lite();

        // Live sections (port 0 = rejected), in the order the version wants.
        let mut sections: Vec<&Media> = sdp.media.iter().filter(|s| s.port != 0).collect();
        if v0 {
            sections.sort_by(|a, b| a.mid().unwrap_or("").cmp(b.mid().unwrap_or("")));
        }
        for w in sections.windows(2) {
            if let [a, b] = w
                && let (Some(x), Some(y)) = (a.mid(), b.mid())
                && x == y
            {
                return Err(CompressError::DuplicateMid(x.to_string()));
            }
        }

        m.dtls_srtp = sections.iter().any(|s| s.protocol == "UDP/TLS/RTP/SAVPF");
        m.mid_style = if sections
            .iter()
            .any(|s| matches!(s.mid(), Some("audio" | "video")))
        {
            MidStyle::Kind
        } else {
            MidStyle::Numeric
        };

        if v0 {
            session_values_v0(&mut m, sdp, &sections);
        } else {
            session_values_ext(&mut m, sdp, &sections);
            m.candidates.truncate(opts.max_candidates);
        }

        for s in &sections {
            let kind = match s.kind {
                MediaKind::Audio => MiniMediaKind::Audio,
                MediaKind::Video => MiniMediaKind::Video,
                MediaKind::Application => MiniMediaKind::Data,
                MediaKind::Other(_) => continue,
            };
            if v0 && m.media.iter().any(|x| x.kind == kind) {
                return Err(CompressError::DuplicateMediaKind);
            }
            m.media.push(compress_media(s, kind, opts)?);
        }
        Ok(m)
    }
}

fn role_of(s: Option<Setup>) -> DtlsRole {
    match s {
        Some(Setup::Active) => DtlsRole::Active,
        Some(Setup::Passive) => DtlsRole::Passive,
        _ => DtlsRole::ActPass,
    }
}

/// The reference's "last section in mid order wins" rules (A.4), plus a fallback to
/// session-level ICE/fingerprint lines (Firefox) that the reference drops.
fn session_values_v0(m: &mut MiniSdp, sdp: &Sdp, sections: &[&Media]) {
    let mut ip: Option<IpAddr> = None;
    let mut port = 0u16;
    let mut has_candidate = false;
    for s in sections {
        m.direction = match s.direction() {
            Some(Direction::Inactive) | None => Direction::SendOnly,
            Some(d) => d,
        };
        m.role = role_of(s.setup());
        m.ice_ufrag = s.ice_ufrag().unwrap_or_default().to_string();
        m.ice_pwd = s.ice_pwd().unwrap_or_default().to_string();
        if let Some(fp) = s.fingerprint() {
            m.fingerprint = Some(fp.clone());
        }
        if let Some(c) = s.candidates().last()
            && !c.address.is_empty()
            && c.port != 0
        {
            port = c.port;
            has_candidate = true;
            if let Some(a) = c.ip() {
                ip = Some(a);
            }
        }
    }
    if m.ice_ufrag.is_empty() {
        m.ice_ufrag = sdp.ice_ufrag().unwrap_or_default().to_string();
    }
    if m.ice_pwd.is_empty() {
        m.ice_pwd = sdp.ice_pwd().unwrap_or_default().to_string();
    }
    if m.fingerprint.is_none() {
        m.fingerprint = sdp.fingerprint().cloned();
    }
    if sections.is_empty() {
        m.role = role_of(sdp.setup());
    }
    if has_candidate {
        m.candidates.push(MiniCandidate {
            ip: ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            port,
            typ: CandidateType::Srflx,
        });
    }
}

fn session_values_ext(m: &mut MiniSdp, sdp: &Sdp, sections: &[&Media]) {
    m.direction = sections
        .iter()
        .filter(|s| s.kind != MediaKind::Application)
        .find_map(|s| s.direction())
        .unwrap_or(Direction::SendRecv);
    m.role = role_of(sdp.setup());
    m.ice_ufrag = sdp.ice_ufrag().unwrap_or_default().to_string();
    m.ice_pwd = sdp.ice_pwd().unwrap_or_default().to_string();
    m.fingerprint = sdp.fingerprint().cloned();
    for c in sections.iter().flat_map(|s| s.candidates()) {
        let Some(ip) = c.ip() else { continue };
        if !c.transport.eq_ignore_ascii_case("udp") || c.component != 1 {
            continue;
        }
        let mc = MiniCandidate {
            ip,
            port: c.port,
            typ: c.typ,
        };
        if !m
            .candidates
            .iter()
            .any(|x| x.ip == mc.ip && x.port == mc.port)
        {
            m.candidates.push(mc);
        }
    }
}

fn compress_media(
    s: &Media,
    kind: MiniMediaKind,
    opts: &CompressOptions,
) -> Result<MiniMedia, CompressError> {
    let v0 = opts.version == WireVersion::V0;
    let mut media = MiniMedia::new(kind);
    if kind == MiniMediaKind::Data {
        return Ok(media);
    }
    media.ssrcs = s.ssrcs();
    if v0 {
        media.ssrcs.truncate(2);
    } else {
        for a in &s.attributes {
            if let Attribute::SsrcGroup { semantics, ssrcs } = a
                && semantics == "FID"
                && let [p, r] = ssrcs[..]
            {
                media.rtx_groups.push((p, r));
            }
        }
    }
    media.ssrcs.retain(|s| *s != 0);

    let mut codecs = s.codecs();
    codecs.sort_by_key(|c| c.pt);
    for c in &codecs {
        let Some(name) = CodecName::from_rtpmap(c.name) else {
            continue;
        };
        if v0 && name == CodecName::Rtx {
            continue;
        }
        let Some(_) = frequency_index(c.clock_rate) else {
            continue;
        };
        let channels = c.channels.unwrap_or(0);
        if channels > if v0 { 3 } else { 15 } {
            continue;
        }
        let mut mc = MiniCodec::new(name, c.pt, c.clock_rate, channels as u8);
        mc.feedback = Feedback {
            nack: c.has_feedback("nack", None),
            goog_remb: c.has_feedback("goog-remb", None),
            transport_cc: c.has_feedback("transport-cc", None),
            nack_pli: !v0 && c.has_feedback("nack", Some("pli")),
            ccm_fir: !v0 && c.has_feedback("ccm", Some("fir")),
        };
        mc.bframe = int_flag(c, "bframe-enabled")? || int_flag(c, "BFrame-enabled")?;
        if name.is_aac() && opts.aac_fmtp {
            let object = match c.fmtp_param("object") {
                None => 0,
                Some(o) => o
                    .parse::<u8>()
                    .map_err(|_| CompressError::InvalidFmtp("object"))?,
            };
            let config = match c.fmtp_param("config") {
                None => Vec::new(),
                Some(t) => hex::decode(t).map_err(|_| CompressError::InvalidFmtp("config"))?,
            };
            mc.aac = Some(AacParams {
                object,
                ps: int_flag(c, "PS-enabled")?,
                sbr: int_flag(c, "SBR-enabled")?,
                stereo: int_flag(c, "stereo")?,
                cpresent: int_flag(c, "cpresent")?,
                config,
            });
        }
        if !v0 {
            match name {
                CodecName::H264 => {
                    mc.h264 = c
                        .fmtp_param("profile-level-id")
                        .and_then(|p| hex::decode(p).ok())
                        .and_then(|b| <[u8; 3]>::try_from(b).ok())
                        .map(|profile_level_id| H264Params {
                            profile_level_id,
                            packetization_mode: c
                                .fmtp_param("packetization-mode")
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0),
                            level_asymmetry_allowed: c.fmtp_param("level-asymmetry-allowed")
                                == Some("1"),
                        });
                }
                CodecName::Opus if c.fmtp.is_some() => {
                    mc.opus = Some(OpusParams {
                        minptime: c
                            .fmtp_param("minptime")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0),
                        useinbandfec: int_flag(c, "useinbandfec")?,
                        stereo: int_flag(c, "stereo")?,
                    });
                }
                CodecName::Rtx => {
                    match c
                        .fmtp_param("apt")
                        .and_then(|v| v.parse::<u8>().ok())
                        .filter(|p| *p < 128)
                    {
                        Some(apt) => mc.apt = Some(apt),
                        None => continue,
                    }
                }
                _ => {}
            }
        }
        media.codecs.push(mc);
    }

    if !v0 && opts.codecs == CodecSet::Playable {
        media.codecs.retain(|c| match c.name {
            CodecName::H264 => c.h264.is_none_or(|h| h.packetization_mode == 1),
            CodecName::FlexFec03 => false,
            _ => true,
        });
        let kept: Vec<u8> = media
            .codecs
            .iter()
            .filter(|c| c.name != CodecName::Rtx)
            .map(|c| c.pt)
            .collect();
        media
            .codecs
            .retain(|c| c.name != CodecName::Rtx || c.apt.is_some_and(|a| kept.contains(&a)));
    }

    let mut exts: Vec<_> = s
        .extmaps()
        .filter_map(|e| {
            let uri = e.known()?;
            if v0 && uri.v0_index().is_none() {
                return None;
            }
            Some(MiniExtension {
                id: u8::try_from(e.id).ok()?,
                uri,
            })
        })
        .collect();
    exts.sort_by_key(|e| e.id);
    media.extensions = exts;
    Ok(media)
}
