//! rtmlive's extended miniSDP (version byte `0x52`, ASCII `R`); specified in
//! `docs/minisdp.md`.
//!
//! An 11-byte fixed header followed by TLV items (`type u8`, `length u16 BE`, value) that
//! run to the end of the datagram. All integers are big-endian; bit positions are given as
//! masks (bit 7 = 0x80 = most significant). Types below 0x80 are *critical*: a decoder that
//! does not know one must reject the packet; types 0x80 and above are *optional* and are
//! skipped when unknown, which is how later additions (like the resumption ticket) stay
//! readable by older edges.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::model::*;
use super::v0::url_tail;
use super::wire::{self, Reader, put_str16, utf8, within_limit};
use super::{DecodeError, EXT_VERSION, EncodeError, URL_PREFIX};
use crate::ExtensionUri;
use crate::sdp::{CandidateType, Direction, Fingerprint, HashFunction};

/// Encoders refuse to produce a larger datagram (no IP fragmentation on any path).
pub const MAX_PACKET: usize = 1200;
/// Fixed header length.
pub const HEADER_LEN: usize = 11;

/// TLV types of the extended format.
pub mod tlv {
    pub const ICE_UFRAG: u8 = 0x01;
    pub const ICE_PWD: u8 = 0x02;
    pub const URL: u8 = 0x03;
    pub const FINGERPRINT: u8 = 0x04;
    pub const SVRSIG: u8 = 0x05;
    pub const AUTH: u8 = 0x06;
    pub const CANDIDATE: u8 = 0x07;
    pub const MEDIA: u8 = 0x08;
    /// Optional (≥ 0x80): decoders that do not implement 0-RTT skip it.
    pub const TICKET: u8 = 0x80;
}

/// Codec parameter keys (inside a codec's parameter block).
mod param {
    pub const AAC: u8 = 1;
    pub const H264: u8 = 2;
    pub const OPUS: u8 = 3;
    pub const APT: u8 = 4;
}

fn hash_id(h: &HashFunction) -> Option<u8> {
    Some(match h {
        HashFunction::Sha1 => 1,
        HashFunction::Sha224 => 2,
        HashFunction::Sha256 => 3,
        HashFunction::Sha384 => 4,
        HashFunction::Sha512 => 5,
        HashFunction::Md5 => 6,
        HashFunction::Other(_) => return None,
    })
}

fn hash_from_id(id: u8) -> Option<HashFunction> {
    Some(match id {
        1 => HashFunction::Sha1,
        2 => HashFunction::Sha224,
        3 => HashFunction::Sha256,
        4 => HashFunction::Sha384,
        5 => HashFunction::Sha512,
        6 => HashFunction::Md5,
        _ => return None,
    })
}

fn cand_type_bits(t: CandidateType) -> u8 {
    match t {
        CandidateType::Host => 0,
        CandidateType::Srflx => 1,
        CandidateType::Prflx => 2,
        CandidateType::Relay => 3,
    }
}

fn put_tlv(out: &mut Vec<u8>, t: u8, v: &[u8], field: &'static str) -> Result<(), EncodeError> {
    out.push(t);
    put_str16(out, v, field)
}

/// Writes `m` in the extended format.
pub fn encode(m: &MiniSdp) -> Result<Vec<u8>, EncodeError> {
    let tail = url_tail(&m.url)?;
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&[0xFF, b'S', b'D', b'P', EXT_VERSION]);
    let kind = match m.kind {
        SdpKind::Offer => 0,
        SdpKind::Answer => 1,
        SdpKind::Error => 2,
    };
    let direction = match m.direction {
        Direction::SendOnly => 0,
        Direction::RecvOnly => 1,
        Direction::SendRecv => 2,
        Direction::Inactive => 3,
    };
    let role = match m.role {
        DtlsRole::ActPass => 0,
        DtlsRole::Active => 1,
        DtlsRole::Passive => 2,
    };
    out.push(
        kind << 6 | direction << 4 | role << 2 | u8::from(m.dtls_srtp) << 1 | u8::from(m.imm_send),
    );
    out.push(
        u8::from(m.ice_lite) << 7
            | u8::from(m.push_pull.is_some()) << 6
            | u8::from(m.push_pull == Some(PushPull::Push)) << 5
            | u8::from(m.mid_style == MidStyle::Kind) << 4
            | u8::from(m.session_id_one) << 3
            | u8::from(m.aac_fmtp) << 2,
    );
    out.extend_from_slice(&m.status.0.to_be_bytes());
    out.extend_from_slice(&m.seq.to_be_bytes());

    if !m.ice_ufrag.is_empty() {
        put_tlv(
            &mut out,
            tlv::ICE_UFRAG,
            m.ice_ufrag.as_bytes(),
            "ice-ufrag",
        )?;
    }
    if !m.ice_pwd.is_empty() {
        put_tlv(&mut out, tlv::ICE_PWD, m.ice_pwd.as_bytes(), "ice-pwd")?;
    }
    put_tlv(&mut out, tlv::URL, tail.as_bytes(), "url")?;
    if let Some(fp) = &m.fingerprint {
        let id = hash_id(&fp.hash).ok_or(EncodeError::Unrepresentable("fingerprint hash"))?;
        if fp.hash.digest_len() != Some(fp.digest.len()) {
            return Err(EncodeError::Unrepresentable("fingerprint digest length"));
        }
        let mut v = Vec::with_capacity(1 + fp.digest.len());
        v.push(id);
        v.extend_from_slice(&fp.digest);
        put_tlv(&mut out, tlv::FINGERPRINT, &v, "fingerprint")?;
    }
    if !m.svrsig.is_empty() {
        put_tlv(&mut out, tlv::SVRSIG, m.svrsig.as_bytes(), "svrsig")?;
    }
    if !m.auth.is_empty() {
        put_tlv(&mut out, tlv::AUTH, &m.auth, "auth")?;
    }
    for c in &m.candidates {
        let mut v = Vec::with_capacity(19);
        let v6 = matches!(c.ip, IpAddr::V6(_));
        v.push(u8::from(v6) << 7 | cand_type_bits(c.typ));
        v.extend_from_slice(&c.port.to_be_bytes());
        match c.ip {
            IpAddr::V4(a) => v.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => v.extend_from_slice(&a.octets()),
        }
        put_tlv(&mut out, tlv::CANDIDATE, &v, "candidate")?;
    }
    for media in &m.media {
        let v = encode_media(media)?;
        put_tlv(&mut out, tlv::MEDIA, &v, "media")?;
    }
    if let Some(t) = &m.ticket {
        put_tlv(&mut out, tlv::TICKET, t, "ticket")?;
    }
    within_limit(out, MAX_PACKET)
}

fn count(n: usize, field: &'static str) -> Result<u8, EncodeError> {
    u8::try_from(n).map_err(|_| EncodeError::TooMany {
        field,
        count: n,
        max: 255,
    })
}

fn encode_media(media: &MiniMedia) -> Result<Vec<u8>, EncodeError> {
    let mut v = Vec::with_capacity(64);
    let kind = match media.kind {
        MiniMediaKind::Audio => 0,
        MiniMediaKind::Video => 1,
        MiniMediaKind::Data => 2,
    };
    v.push(kind << 6);
    v.push(count(media.ssrcs.len(), "SSRCs")?);
    v.push(count(media.rtx_groups.len(), "RTX groups")?);
    v.push(count(media.codecs.len(), "codecs")?);
    v.push(count(media.extensions.len(), "extensions")?);
    for s in &media.ssrcs {
        v.extend_from_slice(&s.to_be_bytes());
    }
    for (p, r) in &media.rtx_groups {
        v.extend_from_slice(&p.to_be_bytes());
        v.extend_from_slice(&r.to_be_bytes());
    }
    for c in &media.codecs {
        if c.pt > 127 {
            return Err(EncodeError::Unrepresentable("payload type > 127"));
        }
        if c.channels > 15 {
            return Err(EncodeError::Unrepresentable("more than 15 channels"));
        }
        let freq =
            frequency_index(c.clock_rate).ok_or(EncodeError::Unrepresentable("clock rate"))?;
        let fb = &c.feedback;
        v.push(c.name.id());
        v.push(c.pt);
        v.push(freq << 4 | c.channels);
        v.push(
            u8::from(fb.nack) << 7
                | u8::from(fb.nack_pli) << 6
                | u8::from(fb.ccm_fir) << 5
                | u8::from(fb.goog_remb) << 4
                | u8::from(fb.transport_cc) << 3
                | u8::from(c.bframe) << 2,
        );
        let mut params = Vec::new();
        if let Some(a) = &c.aac {
            params.push(param::AAC);
            params.push(count(2 + a.config.len(), "AAC config bytes")?);
            params.push(a.object);
            params.push(
                u8::from(a.ps) << 3
                    | u8::from(a.sbr) << 2
                    | u8::from(a.stereo) << 1
                    | u8::from(a.cpresent),
            );
            params.extend_from_slice(&a.config);
        }
        if let Some(h) = &c.h264 {
            params.extend_from_slice(&[param::H264, 5]);
            params.extend_from_slice(&h.profile_level_id);
            params.push(h.packetization_mode);
            params.push(u8::from(h.level_asymmetry_allowed));
        }
        if let Some(o) = &c.opus {
            params.extend_from_slice(&[
                param::OPUS,
                2,
                o.minptime,
                u8::from(o.useinbandfec) | u8::from(o.stereo) << 1,
            ]);
        }
        if let Some(apt) = c.apt {
            params.extend_from_slice(&[param::APT, 1, apt]);
        }
        v.push(count(params.len(), "codec parameter bytes")?);
        v.extend_from_slice(&params);
    }
    for e in &media.extensions {
        if e.id == 0 {
            return Err(EncodeError::Unrepresentable("extension id 0"));
        }
        v.push(e.id);
        v.push(e.uri.ext_index());
    }
    Ok(v)
}

/// Parses an extended-format "SDP" packet (magic and version already checked).
pub fn decode(buf: &[u8]) -> Result<MiniSdp, DecodeError> {
    if buf.len() > super::MAX_DATAGRAM {
        return Err(DecodeError::TooLarge(super::MAX_DATAGRAM));
    }
    let mut r = Reader::new(buf);
    r.bytes(5, "header")?;
    let f0 = r.u8("flags 0")?;
    let f1 = r.u8("flags 1")?;
    let status = Status(r.u16("status")?);
    let seq = r.u16("seq")?;
    let kind = match f0 >> 6 {
        0 => SdpKind::Offer,
        1 => SdpKind::Answer,
        2 => SdpKind::Error,
        v => {
            return Err(DecodeError::InvalidValue {
                field: "kind",
                value: v.into(),
            });
        }
    };
    let direction = match (f0 >> 4) & 3 {
        0 => Direction::SendOnly,
        1 => Direction::RecvOnly,
        2 => Direction::SendRecv,
        _ => Direction::Inactive,
    };
    let role = match (f0 >> 2) & 3 {
        0 => DtlsRole::ActPass,
        1 => DtlsRole::Active,
        2 => DtlsRole::Passive,
        v => {
            return Err(DecodeError::InvalidValue {
                field: "role",
                value: v.into(),
            });
        }
    };
    let mut m = MiniSdp {
        version: WireVersion::Ext,
        kind,
        status,
        seq,
        direction,
        role,
        dtls_srtp: f0 & 0x02 != 0,
        imm_send: f0 & 0x01 != 0,
        ice_lite: f1 & 0x80 != 0,
        push_pull: (f1 & 0x40 != 0).then_some(if f1 & 0x20 != 0 {
            PushPull::Push
        } else {
            PushPull::Pull
        }),
        aac_fmtp: f1 & 0x04 != 0,
        session_id_one: f1 & 0x08 != 0,
        mid_style: if f1 & 0x10 != 0 {
            MidStyle::Kind
        } else {
            MidStyle::Numeric
        },
        candidates: Vec::new(),
        ice_ufrag: String::new(),
        ice_pwd: String::new(),
        url: String::new(),
        fingerprint: None,
        svrsig: String::new(),
        auth: Vec::new(),
        ticket: None,
        media: Vec::new(),
    };
    let mut seen: u32 = 0;
    while r.remaining() > 0 {
        let t = r.u8("TLV type")?;
        let v = r.str16("TLV value")?;
        let singleton = matches!(
            t,
            tlv::ICE_UFRAG | tlv::ICE_PWD | tlv::URL | tlv::FINGERPRINT | tlv::SVRSIG | tlv::AUTH
        ) || t == tlv::TICKET;
        if singleton {
            let bit = 1u32 << (t & 0x1F);
            if seen & bit != 0 {
                return Err(DecodeError::DuplicateTlv(t));
            }
            seen |= bit;
        }
        match t {
            tlv::ICE_UFRAG => m.ice_ufrag = utf8(v, "ice-ufrag")?,
            tlv::ICE_PWD => m.ice_pwd = utf8(v, "ice-pwd")?,
            tlv::URL => m.url = format!("{URL_PREFIX}{}", utf8(v, "url")?),
            tlv::FINGERPRINT => {
                let (&id, digest) = v.split_first().ok_or(DecodeError::InvalidFingerprint)?;
                let hash = hash_from_id(id).ok_or(DecodeError::InvalidFingerprint)?;
                if hash.digest_len() != Some(digest.len()) {
                    return Err(DecodeError::InvalidFingerprint);
                }
                m.fingerprint = Some(Fingerprint {
                    hash,
                    digest: digest.to_vec(),
                });
            }
            tlv::SVRSIG => m.svrsig = utf8(v, "svrsig")?,
            tlv::AUTH => m.auth = v.to_vec(),
            tlv::CANDIDATE => m.candidates.push(decode_candidate(v)?),
            tlv::MEDIA => m.media.push(decode_media(v)?),
            tlv::TICKET => m.ticket = Some(v.to_vec()),
            t if t < 0x80 => return Err(DecodeError::UnknownCriticalTlv(t)),
            _ => {}
        }
    }
    if seen & (1 << tlv::URL) == 0 {
        return Err(DecodeError::Truncated {
            field: "url TLV",
            offset: r.pos(),
        });
    }
    Ok(m)
}

fn decode_candidate(v: &[u8]) -> Result<MiniCandidate, DecodeError> {
    let bad = DecodeError::InvalidTlvLength {
        tlv: tlv::CANDIDATE,
        len: v.len(),
    };
    let (&flags, rest) = v.split_first().ok_or(bad.clone())?;
    let typ = match flags & 3 {
        0 => CandidateType::Host,
        1 => CandidateType::Srflx,
        2 => CandidateType::Prflx,
        _ => CandidateType::Relay,
    };
    let v6 = flags & 0x80 != 0;
    let (port, ip) = match (v6, rest.len()) {
        (false, 6) => {
            let ip = IpAddr::V4(Ipv4Addr::new(rest[2], rest[3], rest[4], rest[5]));
            (u16::from_be_bytes([rest[0], rest[1]]), ip)
        }
        (true, 18) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&rest[2..]);
            (
                u16::from_be_bytes([rest[0], rest[1]]),
                IpAddr::V6(Ipv6Addr::from(a)),
            )
        }
        _ => return Err(bad),
    };
    Ok(MiniCandidate { ip, port, typ })
}

fn decode_media(v: &[u8]) -> Result<MiniMedia, DecodeError> {
    let mut r = Reader::new(v);
    let kind = match r.u8("media kind")? >> 6 {
        0 => MiniMediaKind::Audio,
        1 => MiniMediaKind::Video,
        2 => MiniMediaKind::Data,
        k => {
            return Err(DecodeError::InvalidValue {
                field: "media kind",
                value: k.into(),
            });
        }
    };
    let mut media = MiniMedia::new(kind);
    let n_ssrc = r.u8("SSRC count")?;
    let n_rtx = r.u8("RTX group count")?;
    let n_codec = r.u8("codec count")?;
    let n_ext = r.u8("extension count")?;
    for _ in 0..n_ssrc {
        media.ssrcs.push(r.u32("ssrc")?);
    }
    for _ in 0..n_rtx {
        media.rtx_groups.push((r.u32("ssrc")?, r.u32("rtx ssrc")?));
    }
    for _ in 0..n_codec {
        let id = r.u8("codec id")?;
        let pt = r.u8("payload type")?;
        let fc = r.u8("frequency")?;
        let fb = r.u8("feedback")?;
        let plen = r.u8("parameter length")? as usize;
        let params = r.bytes(plen, "codec parameters")?;
        if pt > 127 {
            return Err(DecodeError::InvalidValue {
                field: "payload type",
                value: pt.into(),
            });
        }
        let name = CodecName::from_id(id).ok_or(DecodeError::InvalidValue {
            field: "codec id",
            value: id.into(),
        })?;
        let mut c = MiniCodec::new(name, pt, FREQUENCIES[(fc >> 4) as usize], fc & 0x0F);
        c.feedback = Feedback {
            nack: fb & 0x80 != 0,
            nack_pli: fb & 0x40 != 0,
            ccm_fir: fb & 0x20 != 0,
            goog_remb: fb & 0x10 != 0,
            transport_cc: fb & 0x08 != 0,
        };
        c.bframe = fb & 0x04 != 0;
        decode_params(&mut c, params)?;
        media.codecs.push(c);
    }
    for _ in 0..n_ext {
        let e = r.bytes(2, "extension")?;
        // Unknown indexes come from newer senders: skip them, the id stays unused.
        if let Some(uri) = ExtensionUri::from_ext_index(e[1]).filter(|_| e[0] != 0) {
            media.extensions.push(MiniExtension { id: e[0], uri });
        }
    }
    Ok(media)
}

fn decode_params(c: &mut MiniCodec, params: &[u8]) -> Result<(), DecodeError> {
    let mut r = Reader::new(params);
    let invalid = |key: u8| DecodeError::InvalidValue {
        field: "codec parameter",
        value: key.into(),
    };
    while r.remaining() > 0 {
        let key = r.u8("parameter key")?;
        let len = r.u8("parameter length")? as usize;
        let v = r.bytes(len, "parameter value")?;
        match key {
            param::AAC => {
                let [object, flags, config @ ..] = v else {
                    return Err(invalid(key));
                };
                c.aac = Some(AacParams {
                    object: *object,
                    ps: flags & 8 != 0,
                    sbr: flags & 4 != 0,
                    stereo: flags & 2 != 0,
                    cpresent: flags & 1 != 0,
                    config: config.to_vec(),
                });
            }
            param::H264 => {
                let [a, b, cc, mode, flags] = v else {
                    return Err(invalid(key));
                };
                c.h264 = Some(H264Params {
                    profile_level_id: [*a, *b, *cc],
                    packetization_mode: *mode,
                    level_asymmetry_allowed: flags & 1 != 0,
                });
            }
            param::OPUS => {
                let [minptime, flags] = v else {
                    return Err(invalid(key));
                };
                c.opus = Some(OpusParams {
                    minptime: *minptime,
                    useinbandfec: flags & 1 != 0,
                    stereo: flags & 2 != 0,
                });
            }
            param::APT => {
                let [apt] = v else { return Err(invalid(key)) };
                c.apt = Some(*apt & 0x7F);
            }
            _ => {} // unknown parameter keys are skipped (forward compatibility)
        }
    }
    Ok(())
}

/// Writes an extended-format stop packet: header, status, seq, `str16` svrsig, `str16` auth.
pub fn encode_stop(s: &StopPacket) -> Result<Vec<u8>, EncodeError> {
    wire::encode_stop(s, EXT_VERSION, MAX_PACKET, |out| {
        put_str16(out, &s.auth, "auth")
    })
}

/// Parses an extended-format stop packet (magic and version already checked).
pub fn decode_stop(buf: &[u8]) -> Result<StopPacket, DecodeError> {
    wire::decode_stop(buf, WireVersion::Ext, |r| Ok(r.str16("auth")?.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the layout documented in docs/minisdp.md §3 byte by byte.
    #[test]
    fn documented_layout() {
        let mut m = MiniSdp::new(WireVersion::Ext, SdpKind::Offer, "webrtc://h/a");
        m.seq = 0x0102;
        m.direction = Direction::RecvOnly;
        m.imm_send = true;
        m.push_pull = Some(PushPull::Pull);
        m.ice_ufrag = "uf".into();
        m.fingerprint = Some(Fingerprint {
            hash: HashFunction::Sha1,
            digest: vec![0xAA; 20],
        });
        m.candidates.push(MiniCandidate {
            ip: "192.0.2.1".parse().unwrap(),
            port: 0x1F40,
            typ: CandidateType::Srflx,
        });
        let mut v = MiniMedia::new(MiniMediaKind::Video);
        v.ssrcs.push(0x0A0B0C0D);
        let mut c = MiniCodec::new(CodecName::H264, 102, 90_000, 0);
        c.feedback.nack = true;
        c.feedback.transport_cc = true;
        c.apt = Some(5);
        v.codecs.push(c);
        v.extensions.push(MiniExtension {
            id: 21,
            uri: ExtensionUri::FrameSeqRange,
        });
        m.media.push(v);
        let mut expect = vec![0xFF, b'S', b'D', b'P', 0x52];
        // kind 0 | recvonly 1<<4 | actpass 0 | dtls_srtp 0x02 | imm_send 0x01
        expect.push(0x10 | 0x02 | 0x01);
        // push/pull stated 0x40, pull, numeric mids, aac switch 0x04
        expect.push(0x40 | 0x04);
        expect.extend_from_slice(&[0x00, 0x00, 0x01, 0x02]);
        expect.extend_from_slice(&[0x01, 0x00, 0x02, b'u', b'f']);
        expect.extend_from_slice(&[0x03, 0x00, 0x03, b'h', b'/', b'a']);
        expect.extend_from_slice(&[0x04, 0x00, 21, 1]);
        expect.extend_from_slice(&[0xAA; 20]);
        expect.extend_from_slice(&[0x07, 0x00, 0x07, 0x01, 0x1F, 0x40, 192, 0, 2, 1]);
        expect.extend_from_slice(&[0x08, 0x00, 5 + 4 + 5 + 3 + 2]);
        expect.extend_from_slice(&[0x40, 1, 0, 1, 1, 0x0A, 0x0B, 0x0C, 0x0D]);
        // H264, PT 102, 90 kHz (index 15) / 0 channels, nack|transport-cc, params: APT 5
        expect.extend_from_slice(&[3, 102, 0xF0, 0x80 | 0x08, 3, 4, 1, 5]);
        expect.extend_from_slice(&[21, 11]);
        assert_eq!(encode(&m).unwrap(), expect);
        assert_eq!(decode(&expect).unwrap(), m);
    }

    #[test]
    fn unknown_optional_tlv_is_skipped_unknown_critical_rejected() {
        let m = MiniSdp::new(WireVersion::Ext, SdpKind::Answer, "webrtc://h/a");
        let mut b = encode(&m).unwrap();
        b.extend_from_slice(&[0x9A, 0x00, 0x01, 0x00]);
        assert_eq!(decode(&b).unwrap(), m);
        b.extend_from_slice(&[0x3A, 0x00, 0x00]);
        assert_eq!(decode(&b), Err(DecodeError::UnknownCriticalTlv(0x3A)));
        let mut dup = encode(&m).unwrap();
        dup.extend_from_slice(&[tlv::URL, 0x00, 0x01, b'x']);
        assert_eq!(decode(&dup), Err(DecodeError::DuplicateTlv(tlv::URL)));
    }
}
