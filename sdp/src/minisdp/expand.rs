//! miniSDP → SDP, so a standard WebRTC stack can consume a decoded packet.
//!
//! For v0 the output is byte-for-byte what the reference decoder writes (WIRE-FORMAT.md
//! A.11), which the golden tests check; values only the extended format carries (real
//! fmtp, more feedback, ice-lite, candidate types, RTX groups) are written when present.

use std::net::IpAddr;

use super::model::*;
use crate::sdp::{
    Attribute, Candidate, Connection, Fmtp, Media, MediaKind, Origin, RtcpFb, Rtpmap, Sdp, Setup,
    SsrcAttr,
};

const FIXED_VIDEO_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

impl MiniSdp {
    /// Expands to a full session description.
    pub fn to_sdp(&self) -> Sdp {
        let ipv6 = matches!(self.candidates.first().map(|c| c.ip), Some(IpAddr::V6(_)));
        let (addr_type, any) = if ipv6 {
            ("IP6", "::")
        } else {
            ("IP4", "0.0.0.0")
        };
        let mut sdp = Sdp {
            origin: Origin {
                session_id: if self.session_id_one { "1" } else { "0" }.into(),
                addr_type: addr_type.into(),
                address: if ipv6 { "::1" } else { "127.0.0.1" }.into(),
                ..Origin::default()
            },
            ..Sdp::default()
        };
        let mids: Vec<String> = self
            .media
            .iter()
            .enumerate()
            .map(|(i, m)| match self.mid_style {
                MidStyle::Kind => m.kind.mid_name().to_string(),
                MidStyle::Numeric => i.to_string(),
            })
            .collect();
        if self.ice_lite {
            sdp.attributes.push(Attribute::IceLite);
        }
        sdp.attributes.push(Attribute::Group {
            semantics: "BUNDLE".into(),
            mids: mids.clone(),
        });
        sdp.attributes.push(Attribute::Other {
            name: "msid-semantic".into(),
            value: Some(" WMS ".into()),
        });
        let protocol = if self.dtls_srtp {
            "UDP/TLS/RTP/SAVPF"
        } else {
            "RTP/AVPF"
        };
        for (media, mid) in self.media.iter().zip(mids) {
            sdp.media
                .push(self.expand_media(media, mid, protocol, addr_type, any));
        }
        sdp
    }

    fn expand_media(
        &self,
        media: &MiniMedia,
        mid: String,
        protocol: &str,
        addr_type: &str,
        any: &str,
    ) -> Media {
        let kind = match media.kind {
            MiniMediaKind::Audio => MediaKind::Audio,
            MiniMediaKind::Video => MediaKind::Video,
            MiniMediaKind::Data => MediaKind::Application,
        };
        let mut m = Media::new(kind, protocol);
        if media.kind == MiniMediaKind::Data {
            m.protocol = "UDP/DTLS/SCTP".into();
            m.formats.push("webrtc-datachannel".into());
        }
        m.formats
            .extend(media.codecs.iter().map(|c| c.pt.to_string()));
        m.connection = Some(Connection {
            net_type: "IN".into(),
            addr_type: addr_type.into(),
            address: any.into(),
        });
        let a = &mut m.attributes;
        a.push(Attribute::Rtcp {
            port: 9,
            address: Some(format!("IN {addr_type} {any}")),
        });
        for (i, c) in self
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.has_address())
        {
            let ip = c.ip.to_string();
            let related = c.typ != crate::sdp::CandidateType::Host;
            a.push(Attribute::Candidate(Candidate {
                foundation: if i == 0 {
                    "foundation".into()
                } else {
                    format!("foundation{i}")
                },
                component: 1,
                transport: "udp".into(),
                priority: 100u32.saturating_sub(i as u32),
                address: ip.clone(),
                port: c.port,
                typ: c.typ,
                raddr: related.then(|| ip.clone()),
                rport: related.then_some(c.port),
                extensions: vec![("generation".into(), "0".into())],
            }));
        }
        if !self.ice_ufrag.is_empty() {
            a.push(Attribute::IceUfrag(self.ice_ufrag.clone()));
        }
        if !self.ice_pwd.is_empty() {
            a.push(Attribute::IcePwd(self.ice_pwd.clone()));
        }
        if let Some(fp) = &self.fingerprint {
            a.push(Attribute::Fingerprint(fp.clone()));
        }
        a.push(Attribute::Setup(match self.role {
            DtlsRole::ActPass => Setup::ActPass,
            DtlsRole::Active => Setup::Active,
            DtlsRole::Passive => Setup::Passive,
        }));
        a.push(Attribute::Mid(mid));
        if media.kind == MiniMediaKind::Data {
            a.push(Attribute::Other {
                name: "sctp-port".into(),
                value: Some("5000".into()),
            });
            return m;
        }
        a.push(Attribute::Direction(self.direction));
        a.push(Attribute::RtcpMux);
        if media.kind == MiniMediaKind::Video {
            a.push(Attribute::RtcpRsize);
        }
        for e in &media.extensions {
            a.push(Attribute::Extmap(crate::sdp::Extmap {
                id: e.id.into(),
                direction: None,
                uri: e.uri.as_str().into(),
                attributes: None,
            }));
        }
        for c in &media.codecs {
            expand_codec(a, c, media.kind);
        }
        let label_codec = media
            .codecs
            .iter()
            .rev()
            .find(|c| c.name != CodecName::Rtx)
            .map_or("", |c| c.name.as_str());
        let has_fec = media.codecs.iter().any(|c| c.name == CodecName::FlexFec03);
        if has_fec && let [s1, s2] = media.ssrcs[..] {
            a.push(Attribute::SsrcGroup {
                semantics: "FEC-FR".into(),
                ssrcs: vec![s1, s2],
            });
        }
        for (p, r) in &media.rtx_groups {
            a.push(Attribute::SsrcGroup {
                semantics: "FID".into(),
                ssrcs: vec![*p, *r],
            });
        }
        let u = &self.ice_ufrag;
        for &ssrc in &media.ssrcs {
            let mut push = |attribute: &str, value: String| {
                a.push(Attribute::Ssrc(SsrcAttr {
                    ssrc,
                    attribute: attribute.into(),
                    value: Some(value),
                }))
            };
            push("cname", u.clone());
            push("label", format!("{u}_{label_codec}"));
            push("msid", format!("{u} {u}_{label_codec}"));
            push("mslabel", u.clone());
        }
        m
    }
}

fn expand_codec(a: &mut Vec<Attribute>, c: &MiniCodec, kind: MiniMediaKind) {
    let audio = kind == MiniMediaKind::Audio;
    a.push(Attribute::Rtpmap(Rtpmap {
        pt: c.pt,
        encoding: c.name.as_str().into(),
        clock_rate: c.clock_rate,
        channels: (audio && c.channels > 0).then_some(c.channels.into()),
    }));
    if c.name == CodecName::Rtx {
        if let Some(apt) = c.apt {
            a.push(Attribute::Fmtp(Fmtp {
                pt: c.pt,
                params: format!("apt={apt}"),
            }));
        }
        return;
    }
    let fb = &c.feedback;
    for (on, kind, param) in [
        (fb.ccm_fir, "ccm", Some("fir")),
        (fb.goog_remb, "goog-remb", None),
        (fb.nack, "nack", None),
        (fb.nack_pli, "nack", Some("pli")),
        (fb.transport_cc, "transport-cc", None),
    ] {
        if on {
            a.push(Attribute::RtcpFb(RtcpFb {
                pt: Some(c.pt),
                kind: kind.into(),
                param: param.map(str::to_string),
            }));
        }
    }
    let params = if let Some(aac) = &c.aac {
        // Keys in byte order, as the reference writes them.
        let mut p = format!(
            "PS-enabled={};SBR-enabled={}",
            u8::from(aac.ps),
            u8::from(aac.sbr)
        );
        if !aac.config.is_empty() {
            p.push_str(&format!(";config={}", hex::encode(&aac.config)));
        }
        p.push_str(&format!(";cpresent={}", u8::from(aac.cpresent)));
        if aac.object != 0 {
            p.push_str(&format!(";object={}", aac.object));
        }
        p.push_str(&format!(";stereo={}", u8::from(aac.stereo)));
        Some(p)
    } else if !audio {
        let mut p = String::new();
        if c.bframe {
            p.push_str("bframe-enabled=1;");
        }
        match &c.h264 {
            Some(h) => p.push_str(&format!(
                "level-asymmetry-allowed={};packetization-mode={};profile-level-id={}",
                u8::from(h.level_asymmetry_allowed),
                h.packetization_mode,
                hex::encode(h.profile_level_id)
            )),
            None => p.push_str(FIXED_VIDEO_FMTP),
        }
        Some(p)
    } else if c.name == CodecName::FlexFec03 {
        None
    } else {
        match &c.opus {
            Some(o) => {
                let mut p = Vec::new();
                if o.minptime != 0 {
                    p.push(format!("minptime={}", o.minptime));
                }
                p.push(format!("stereo={}", u8::from(o.stereo)));
                p.push(format!("useinbandfec={}", u8::from(o.useinbandfec)));
                Some(p.join(";"))
            }
            None => Some("stereo=1".into()),
        }
    };
    if let Some(params) = params {
        a.push(Attribute::Fmtp(Fmtp { pt: c.pt, params }));
    }
}
