//! miniSDP v0: the deployed reference layout (WIRE-FORMAT.md part A), bit for bit.
//!
//! Bitfields are written with explicit masks in the positions GCC gave the reference's
//! packed structs on x86-64 (first-declared field in the least significant bits).
//! Deliberate differences from the reference, all on the side of safety:
//! uninitialised bits are masked on input (AAC flags bits 4–15, reserved bits), every
//! length is bounds-checked, IPv6 candidates are written with `ip_type = 1`, and values the
//! layout cannot hold are rejected with an [`EncodeError`] instead of corrupting the packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::model::*;
use super::wire::{self, Reader, put_str16, utf8, within_limit};
use super::{DecodeError, EncodeError, URL_PREFIX};
use crate::ExtensionUri;
use crate::sdp::{CandidateType, Direction, Fingerprint};

/// Largest packet the reference accepts.
pub const MAX_PACKET: usize = 1400;
/// Largest full URL (with `webrtc://`).
pub const MAX_URL: usize = 1200;
/// Fixed header length.
pub const HEADER_LEN: usize = 29;

fn role_bits(r: DtlsRole) -> u8 {
    match r {
        DtlsRole::ActPass => 0,
        DtlsRole::Active => 1,
        DtlsRole::Passive => 2,
    }
}

fn direction_bits(d: Direction) -> Result<u8, EncodeError> {
    Ok(match d {
        Direction::SendOnly => 0,
        Direction::RecvOnly => 1,
        Direction::SendRecv => 2,
        Direction::Inactive => return Err(EncodeError::Unrepresentable("direction inactive")),
    })
}

fn kind_mask(k: MiniMediaKind) -> u8 {
    match k {
        MiniMediaKind::Data => 1,
        MiniMediaKind::Audio => 2,
        MiniMediaKind::Video => 4,
    }
}

fn kind_type(k: MiniMediaKind) -> u8 {
    match k {
        MiniMediaKind::Audio => 0,
        MiniMediaKind::Video => 1,
        MiniMediaKind::Data => 2,
    }
}

/// Writes `m` as a v0 packet.
pub fn encode(m: &MiniSdp) -> Result<Vec<u8>, EncodeError> {
    let tail = url_tail(&m.url)?;
    if m.candidates.len() > 1 {
        return Err(EncodeError::TooMany {
            field: "candidates",
            count: m.candidates.len(),
            max: 1,
        });
    }
    check_auth(&m.auth)?;
    match (m.kind, m.status.is_ok()) {
        (SdpKind::Offer, false) => {
            return Err(EncodeError::Unrepresentable(
                "v0 offer with a non-zero status",
            ));
        }
        (SdpKind::Error, true) => {
            return Err(EncodeError::Unrepresentable("v0 error reply with status 0"));
        }
        _ => {}
    }
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(&[0xFF, b'S', b'D', b'P', 0]);
    out.extend_from_slice(&m.status.0.to_be_bytes());

    let cand = m.candidates.first();
    let ipv6 = matches!(cand.map(|c| c.ip), Some(IpAddr::V6(_)));
    let mut flags_a = u8::from(!m.session_id_one)
        | u8::from(!m.aac_fmtp) << 1
        | u8::from(m.mid_style == MidStyle::Kind) << 2
        | role_bits(m.role) << 3
        | u8::from(cand.is_some()) << 5
        | u8::from(m.dtls_srtp) << 6;
    if ipv6 {
        flags_a |= 0x80;
    }
    out.push(flags_a);
    out.extend_from_slice(&cand.map_or(0, |c| c.port).to_be_bytes());
    let mut ip = [0u8; 16];
    match cand.map(|c| c.ip) {
        Some(IpAddr::V4(v4)) => ip[..4].copy_from_slice(&v4.octets()),
        Some(IpAddr::V6(v6)) => ip.copy_from_slice(&v6.octets()),
        None => {}
    }
    out.extend_from_slice(&ip);
    out.extend_from_slice(&m.seq.to_be_bytes());

    let mut mask = 0u8;
    for media in &m.media {
        let bit = kind_mask(media.kind);
        if mask & bit != 0 {
            return Err(EncodeError::DuplicateMediaKind(media.kind));
        }
        mask |= bit;
    }
    let sdp_type = match m.kind {
        SdpKind::Offer | SdpKind::Error => 0,
        SdpKind::Answer => 1,
    };
    out.push(u8::from(!m.imm_send) | mask << 1 | direction_bits(m.direction)? << 4 | sdp_type << 6);

    for media in &m.media {
        encode_media(&mut out, media, m.aac_fmtp)?;
    }

    put_str16(&mut out, m.ice_ufrag.as_bytes(), "ice-ufrag")?;
    put_str16(&mut out, m.ice_pwd.as_bytes(), "ice-pwd")?;
    out.extend_from_slice(&(tail.len() as u32).to_be_bytes());
    out.extend_from_slice(tail.as_bytes());
    let fp = m
        .fingerprint
        .as_ref()
        .map(Fingerprint::to_string)
        .unwrap_or_default();
    put_str16(&mut out, fp.as_bytes(), "fingerprint")?;
    put_str16(&mut out, m.svrsig.as_bytes(), "svrsig")?;
    put_auth(&mut out, &m.auth);
    if let Some(pp) = m.push_pull {
        out.push(u8::from(pp == PushPull::Push));
    }
    within_limit(out, MAX_PACKET)
}

/// The URL without `webrtc://`, after the length checks both versions share.
pub(super) fn url_tail(url: &str) -> Result<&str, EncodeError> {
    if url.len() > MAX_URL {
        return Err(EncodeError::TooLong {
            field: "url",
            max: MAX_URL,
        });
    }
    url.strip_prefix(URL_PREFIX).ok_or(EncodeError::UrlScheme)
}

fn encode_media(out: &mut Vec<u8>, media: &MiniMedia, aac_fmtp: bool) -> Result<(), EncodeError> {
    if media.ssrcs.len() > 2 {
        return Err(EncodeError::TooMany {
            field: "SSRCs",
            count: media.ssrcs.len(),
            max: 2,
        });
    }
    if media.codecs.len() > 63 {
        return Err(EncodeError::TooMany {
            field: "codecs",
            count: media.codecs.len(),
            max: 63,
        });
    }
    if media.extensions.len() > 255 {
        return Err(EncodeError::TooMany {
            field: "extensions",
            count: media.extensions.len(),
            max: 255,
        });
    }
    out.extend_from_slice(&media.ssrcs.first().copied().unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&media.ssrcs.get(1).copied().unwrap_or(0).to_be_bytes());
    out.push(kind_type(media.kind) | (media.codecs.len() as u8) << 2);
    for c in &media.codecs {
        if c.name == CodecName::Rtx {
            return Err(EncodeError::Unrepresentable("rtx codec"));
        }
        if c.pt > 127 {
            return Err(EncodeError::Unrepresentable("payload type > 127"));
        }
        if c.channels > 3 {
            return Err(EncodeError::Unrepresentable("more than 3 channels"));
        }
        let freq =
            frequency_index(c.clock_rate).ok_or(EncodeError::Unrepresentable("clock rate"))?;
        let fb = &c.feedback;
        out.push(freq | c.name.id() << 4);
        out.push(c.pt << 1);
        out.push(
            u8::from(c.bframe) << 3
                | u8::from(fb.goog_remb) << 4
                | u8::from(fb.transport_cc) << 5
                | u8::from(c.name == CodecName::FlexFec03) << 6
                | u8::from(fb.nack) << 7,
        );
        out.push(c.channels << 6);
        if c.name.is_aac() && aac_fmtp {
            let aac = c.aac.clone().unwrap_or_default();
            let text = hex::encode(&aac.config);
            if text.len() > 255 {
                return Err(EncodeError::TooLong {
                    field: "AAC config",
                    max: 255,
                });
            }
            out.push(aac.object);
            out.push(text.len() as u8);
            let flags = u16::from(aac.ps)
                | u16::from(aac.sbr) << 1
                | u16::from(aac.stereo) << 2
                | u16::from(aac.cpresent) << 3;
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
    out.push(media.extensions.len() as u8);
    for e in &media.extensions {
        let idx = e
            .uri
            .v0_index()
            .ok_or(EncodeError::Unrepresentable("extension URI"))?;
        out.push(e.id);
        out.push(idx);
    }
    Ok(())
}

/// Parses a v0 "SDP" packet (the caller has checked the 4-byte magic).
pub fn decode(buf: &[u8]) -> Result<MiniSdp, DecodeError> {
    if buf.len() > super::MAX_DATAGRAM {
        return Err(DecodeError::TooLarge(super::MAX_DATAGRAM));
    }
    let mut r = Reader::new(buf);
    r.bytes(5, "header")?; // FF "SDP" + version: checked by the dispatcher
    let status = Status(r.u16("status")?);
    let flags_a = r.u8("flags A")?;
    let port = r.u16("port")?;
    let ip_bytes = r.bytes(16, "candidate ip")?;
    let seq = r.u16("seq")?;
    let flags_b = r.u8("flags B")?;

    let role = match (flags_a >> 3) & 3 {
        1 => DtlsRole::Active,
        2 => DtlsRole::Passive,
        _ => DtlsRole::ActPass,
    };
    let ip = if flags_a & 0x80 != 0 {
        let mut a = [0u8; 16];
        a.copy_from_slice(ip_bytes);
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(
            ip_bytes[0],
            ip_bytes[1],
            ip_bytes[2],
            ip_bytes[3],
        ))
    };
    let has_candidate = flags_a & 0x20 != 0;
    let candidates = if has_candidate || !ip.is_unspecified() {
        vec![MiniCandidate {
            ip,
            port,
            typ: CandidateType::Srflx,
        }]
    } else {
        Vec::new()
    };
    let direction = match (flags_b >> 4) & 3 {
        0 => Direction::SendOnly,
        1 => Direction::RecvOnly,
        2 => Direction::SendRecv,
        v => return Err(DecodeError::InvalidDirection(v)),
    };
    let kind = match flags_b >> 6 {
        0 if status.is_ok() => SdpKind::Offer,
        1 => SdpKind::Answer,
        _ => SdpKind::Error,
    };
    let aac_fmtp = flags_a & 0x02 == 0;
    let mask = (flags_b >> 1) & 7;

    let mut media = Vec::new();
    for _ in 0..mask.count_ones() {
        let m = decode_media(&mut r, aac_fmtp)?;
        if media.iter().any(|x: &MiniMedia| x.kind == m.kind) {
            return Err(DecodeError::DuplicateMediaKind(m.kind));
        }
        media.push(m);
    }
    let ice_ufrag = utf8(r.str16("ice-ufrag")?, "ice-ufrag")?;
    let ice_pwd = utf8(r.str16("ice-pwd")?, "ice-pwd")?;
    let url = format!("{URL_PREFIX}{}", utf8(r.str32("url")?, "url")?);
    let fp_text = utf8(r.str16("fingerprint")?, "fingerprint")?;
    let fingerprint = if fp_text.is_empty() {
        None
    } else {
        Some(Fingerprint::parse(&fp_text).map_err(|_| DecodeError::InvalidFingerprint)?)
    };
    let svrsig = utf8(r.str16("svrsig")?, "svrsig")?;
    let auth = read_auth(&mut r)?;
    let push_pull = if r.remaining() > 0 {
        Some(if r.u8("push")? & 1 == 1 {
            PushPull::Push
        } else {
            PushPull::Pull
        })
    } else {
        None
    };

    Ok(MiniSdp {
        version: WireVersion::V0,
        kind,
        status,
        seq,
        direction,
        role,
        dtls_srtp: flags_a & 0x40 != 0,
        imm_send: flags_b & 1 == 0,
        ice_lite: false,
        push_pull,
        aac_fmtp,
        session_id_one: flags_a & 1 == 0,
        mid_style: if flags_a & 0x04 != 0 {
            MidStyle::Kind
        } else {
            MidStyle::Numeric
        },
        candidates,
        ice_ufrag,
        ice_pwd,
        url,
        fingerprint,
        svrsig,
        auth,
        ticket: None,
        media,
    })
}

fn decode_media(r: &mut Reader<'_>, aac_fmtp: bool) -> Result<MiniMedia, DecodeError> {
    let ssrc1 = r.u32("ssrc1")?;
    let ssrc2 = r.u32("ssrc2")?;
    let tc = r.u8("media type")?;
    let kind = match tc & 3 {
        0 => MiniMediaKind::Audio,
        1 => MiniMediaKind::Video,
        2 => MiniMediaKind::Data,
        v => {
            return Err(DecodeError::InvalidValue {
                field: "media type",
                value: v.into(),
            });
        }
    };
    let mut media = MiniMedia::new(kind);
    media
        .ssrcs
        .extend([ssrc1, ssrc2].into_iter().filter(|s| *s != 0));
    if media.ssrcs.len() == 2 && ssrc1 == ssrc2 {
        media.ssrcs.pop();
    }
    for _ in 0..(tc >> 2) {
        let d = r.bytes(4, "codec")?;
        let id = d[0] >> 4;
        let name = CodecName::from_id(id).filter(|n| *n != CodecName::Rtx);
        let aac = if matches!(id, 1 | 2) && aac_fmtp {
            let object = r.u8("AAC object")?;
            let len = r.u8("AAC config length")? as usize;
            let flags = r.bytes(2, "AAC flags")?;
            // Only bits 0-3 of the little-endian word are defined; the reference leaves
            // the rest uninitialised.
            let f = flags[0] & 0x0F;
            let text = r.bytes(len, "AAC config")?;
            let config = hex::decode(text).map_err(|_| DecodeError::InvalidAacConfig)?;
            Some(AacParams {
                object,
                ps: f & 1 != 0,
                sbr: f & 2 != 0,
                stereo: f & 4 != 0,
                cpresent: f & 8 != 0,
                config,
            })
        } else {
            None
        };
        let Some(name) = name else { continue };
        media.codecs.push(MiniCodec {
            name,
            pt: d[1] >> 1,
            clock_rate: FREQUENCIES[(d[0] & 0x0F) as usize],
            channels: d[3] >> 6,
            feedback: Feedback {
                nack: d[2] & 0x80 != 0,
                goog_remb: d[2] & 0x10 != 0,
                transport_cc: d[2] & 0x20 != 0,
                ..Feedback::default()
            },
            bframe: d[2] & 0x08 != 0,
            aac,
            h264: None,
            opus: None,
            apt: None,
        });
    }
    let n = r.u8("extension count")?;
    for _ in 0..n {
        let e = r.bytes(2, "extension")?;
        // Id 0 is not a valid extmap id (RFC 8285); skip it like an unknown URI.
        if let Some(uri) = ExtensionUri::from_v0_index(e[1]).filter(|_| e[0] != 0) {
            media.extensions.push(MiniExtension { id: e[0], uri });
        }
    }
    Ok(media)
}

/// Writes a v0 stop packet.
pub fn encode_stop(s: &StopPacket) -> Result<Vec<u8>, EncodeError> {
    check_auth(&s.auth)?;
    wire::encode_stop(s, 0, MAX_PACKET, |out| {
        put_auth(out, &s.auth);
        Ok(())
    })
}

/// Parses a v0 stop packet (magic already checked).
pub fn decode_stop(buf: &[u8]) -> Result<StopPacket, DecodeError> {
    wire::decode_stop(buf, WireVersion::V0, read_auth)
}

/// v0 has a fixed 16-byte auth field, all zeros when there is no token: any other length
/// cannot be written.
fn check_auth(auth: &[u8]) -> Result<(), EncodeError> {
    if !auth.is_empty() && auth.len() != 16 {
        return Err(EncodeError::Unrepresentable(
            "auth token other than 16 bytes",
        ));
    }
    Ok(())
}

/// Writes the 16-byte auth field ([`check_auth`] has passed): zeros stand for no token.
fn put_auth(out: &mut Vec<u8>, auth: &[u8]) {
    if auth.is_empty() {
        out.extend_from_slice(&[0; 16]);
    } else {
        out.extend_from_slice(auth);
    }
}

/// Reads the 16-byte auth field; all zeros decode to no token.
fn read_auth(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let auth = r.bytes(16, "auth")?;
    Ok(if auth.iter().all(|b| *b == 0) {
        Vec::new()
    } else {
        auth.to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_codec_bytes() {
        // WIRE-FORMAT.md A.6 examples.
        let mut opus = MiniCodec::new(CodecName::Opus, 111, 48_000, 2);
        opus.feedback.nack = true;
        opus.feedback.transport_cc = true;
        let mut media = MiniMedia::new(MiniMediaKind::Audio);
        media.codecs.push(opus);
        let mut out = Vec::new();
        encode_media(&mut out, &media, true).unwrap();
        assert_eq!(&out[9..13], &[0x03, 0xDE, 0xA0, 0x80]);
    }

    #[test]
    fn masks_uninitialised_aac_flags() {
        let mut m = MiniSdp::new(WireVersion::V0, SdpKind::Answer, "webrtc://a/b");
        let mut c = MiniCodec::new(CodecName::Mp4aLatm, 98, 48_000, 2);
        c.aac = Some(AacParams {
            object: 2,
            stereo: true,
            config: vec![0x12, 0x10],
            ..Default::default()
        });
        let mut media = MiniMedia::new(MiniMediaKind::Audio);
        media.codecs.push(c);
        m.media.push(media);
        let mut bytes = encode(&m).unwrap();
        // flags word at header + 9 media bytes + 4 codec bytes + object + len
        let at = HEADER_LEN + 9 + 4 + 2;
        assert_eq!(&bytes[at..at + 2], &[0x04, 0x00]);
        bytes[at] = 0x9F & 0xF4; // garbage above bit 3 plus the real stereo bit
        bytes[at + 1] = 0xBE;
        assert_eq!(decode(&bytes).unwrap(), m);
    }

    #[test]
    fn rejects_unrepresentable() {
        let mut m = MiniSdp::new(WireVersion::V0, SdpKind::Offer, "http://x");
        assert_eq!(encode(&m), Err(EncodeError::UrlScheme));
        m.url = format!("webrtc://{}", "a".repeat(1200));
        assert!(matches!(encode(&m), Err(EncodeError::TooLong { .. })));
        m.url = "webrtc://a/b".into();
        m.media = vec![
            MiniMedia::new(MiniMediaKind::Video),
            MiniMedia::new(MiniMediaKind::Video),
        ];
        assert_eq!(
            encode(&m),
            Err(EncodeError::DuplicateMediaKind(MiniMediaKind::Video))
        );
        m.media.clear();
        m.svrsig = "x".repeat(1400);
        assert!(matches!(
            encode(&m),
            Err(EncodeError::PacketTooLarge { .. })
        ));
    }

    #[test]
    fn direction_three_is_an_error_not_an_overrun() {
        let m = MiniSdp::new(WireVersion::V0, SdpKind::Offer, "webrtc://a/b");
        let mut bytes = encode(&m).unwrap();
        bytes[28] |= 0x30;
        assert_eq!(decode(&bytes), Err(DecodeError::InvalidDirection(3)));
    }
}
