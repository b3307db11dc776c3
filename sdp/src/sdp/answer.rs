//! Building the server's answer to a WebRTC offer (JSEP, RFC 8829 §5.3), for an ICE-lite
//! edge that mostly sends.
//!
//! The rules the edge needs, and nothing more: one codec per section chosen by the server's
//! preference among what the offer lists (matched by name, clock rate and required fmtp
//! values, answered with the offer's PT), the offer's extmap ids for the URIs the server
//! implements, `a=ice-lite`, `a=setup:passive` (or `active` if the offerer insists on
//! passive), our fingerprint and candidates, and `ssrc`/`msid` for every track we send.
//! Sections we cannot serve are rejected with port 0 as JSEP requires.

use super::{
    Attribute, Candidate, Connection, Direction, Extmap, Fingerprint, Fmtp, Media, MediaKind,
    Origin, RtcpFb, Rtpmap, Sdp, Setup, SsrcAttr,
};
use crate::ExtensionUri;

/// A codec the server can serve, with the fmtp values an offered codec must have to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecPreference {
    /// Encoding name, compared case-insensitively (`H264`, `opus`, `MP4A-LATM`…).
    pub name: String,
    pub clock_rate: u32,
    /// Required channel count (`None` = any).
    pub channels: Option<u16>,
    /// fmtp parameters that must be present with exactly these values.
    pub required_fmtp: Vec<(String, String)>,
    /// fmtp to put in the answer; `None` copies the offer's fmtp for the chosen PT.
    pub answer_fmtp: Option<String>,
}

impl CodecPreference {
    /// H.264 with packetization-mode 1 and the given profile-level-id (e.g. `42e01f`).
    pub fn h264(profile_level_id: &str) -> Self {
        Self {
            name: "H264".into(),
            clock_rate: 90_000,
            channels: None,
            required_fmtp: vec![
                ("packetization-mode".into(), "1".into()),
                ("profile-level-id".into(), profile_level_id.into()),
            ],
            answer_fmtp: None,
        }
    }

    /// H.265 at 90 kHz, any fmtp.
    pub fn h265() -> Self {
        Self::by_name("H265", 90_000, None)
    }

    /// Opus 48 kHz stereo.
    pub fn opus() -> Self {
        Self::by_name("opus", 48_000, Some(2))
    }

    /// Name and clock rate only.
    pub fn by_name(name: &str, clock_rate: u32, channels: Option<u16>) -> Self {
        Self {
            name: name.into(),
            clock_rate,
            channels,
            required_fmtp: Vec::new(),
            answer_fmtp: None,
        }
    }

    fn matches(&self, c: &super::CodecView<'_>) -> bool {
        c.name.eq_ignore_ascii_case(&self.name)
            && c.clock_rate == self.clock_rate
            && self.channels.is_none_or(|ch| c.channels.unwrap_or(1) == ch)
            && self.required_fmtp.iter().all(|(k, v)| {
                c.fmtp_param(k)
                    .is_some_and(|have| have.eq_ignore_ascii_case(v))
            })
    }
}

/// What the server offers for one media kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackParams {
    /// Codecs in the server's order of preference.
    pub codecs: Vec<CodecPreference>,
    /// What the server wants to do: `SendOnly` for playback, `RecvOnly` for ingest.
    pub direction: Direction,
    /// SSRC the server sends with (used when the answer direction sends).
    pub ssrc: u32,
    /// RTX SSRC; an `rtx` codec with `apt` = chosen PT is answered only when the offer has one.
    pub rtx_ssrc: Option<u32>,
    /// `a=msid` track id.
    pub track_id: String,
}

/// Everything the answer needs from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerParams {
    pub ice_ufrag: String,
    pub ice_pwd: String,
    pub fingerprint: Fingerprint,
    pub candidates: Vec<Candidate>,
    pub ice_lite: bool,
    /// `o=` session id.
    pub session_id: u64,
    /// `cname` and `msid` stream id of the tracks we send.
    pub cname: String,
    pub stream_id: String,
    pub audio: Option<TrackParams>,
    pub video: Option<TrackParams>,
    /// Header extensions the server implements; the offer's ids for these are kept.
    pub extensions: Vec<ExtensionUri>,
}

/// Why no answer could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("offer m-section {0} has no a=mid")]
    MissingMid(usize),
    #[error("offer has no ICE credentials")]
    MissingIceCredentials,
    #[error("offer has no DTLS fingerprint")]
    MissingFingerprint,
    #[error("no m-section of the offer could be accepted")]
    NothingAccepted,
}

/// RTCP feedback the edge implements and therefore answers when offered.
const SUPPORTED_FEEDBACK: [(&str, Option<&str>); 5] = [
    ("nack", None),
    ("nack", Some("pli")),
    ("ccm", Some("fir")),
    ("goog-remb", None),
    ("transport-cc", None),
];

/// Builds the answer to `offer`.
pub fn build_answer(offer: &Sdp, params: &AnswerParams) -> Result<Sdp, AnswerError> {
    if offer.ice_ufrag().is_none() || offer.ice_pwd().is_none() {
        return Err(AnswerError::MissingIceCredentials);
    }
    if offer.fingerprint().is_none() {
        return Err(AnswerError::MissingFingerprint);
    }
    let setup = match offer.setup() {
        Some(Setup::Passive) => Setup::Active,
        _ => Setup::Passive,
    };
    let mut answer = Sdp {
        origin: Origin {
            session_id: params.session_id.to_string(),
            session_version: "2".into(),
            ..Origin::default()
        },
        ..Sdp::default()
    };
    let mut bundle = Vec::new();
    for (i, om) in offer.media.iter().enumerate() {
        let mid = om.mid().ok_or(AnswerError::MissingMid(i))?.to_string();
        let track = match om.kind {
            MediaKind::Audio => params.audio.as_ref(),
            MediaKind::Video => params.video.as_ref(),
            _ => None,
        };
        match track.and_then(|t| answer_section(om, &mid, t, params, setup)) {
            Some(m) => {
                bundle.push(mid);
                answer.media.push(m);
            }
            None => answer.media.push(rejected(om, mid)),
        }
    }
    if bundle.is_empty() {
        return Err(AnswerError::NothingAccepted);
    }
    if params.ice_lite {
        answer.attributes.push(Attribute::IceLite);
    }
    answer.attributes.push(Attribute::Group {
        semantics: "BUNDLE".into(),
        mids: bundle,
    });
    if offer.attributes.contains(&Attribute::ExtmapAllowMixed) {
        answer.attributes.push(Attribute::ExtmapAllowMixed);
    }
    answer.attributes.push(Attribute::Other {
        name: "msid-semantic".into(),
        value: Some(format!(" WMS {}", params.stream_id)),
    });
    Ok(answer)
}

fn rejected(om: &Media, mid: String) -> Media {
    let mut m = Media::new(om.kind.clone(), &om.protocol);
    m.port = 0;
    m.formats = om.formats.iter().take(1).cloned().collect();
    m.connection = Some(Connection::ip4_any());
    m.attributes = vec![
        Attribute::Mid(mid),
        Attribute::Direction(Direction::Inactive),
    ];
    m
}

fn answer_direction(offered: Direction, ours: Direction) -> Direction {
    let sends = |d: Direction| matches!(d, Direction::SendRecv | Direction::SendOnly);
    let recvs = |d: Direction| matches!(d, Direction::SendRecv | Direction::RecvOnly);
    match (sends(ours) && recvs(offered), recvs(ours) && sends(offered)) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

fn answer_section(
    om: &Media,
    mid: &str,
    track: &TrackParams,
    params: &AnswerParams,
    setup: Setup,
) -> Option<Media> {
    let offered = om.codecs_in_preference_order();
    let (pref, chosen) = track
        .codecs
        .iter()
        .find_map(|p| offered.iter().find(|c| p.matches(c)).map(|c| (p, c)))?;
    let direction = answer_direction(
        om.direction().unwrap_or(Direction::SendRecv),
        track.direction,
    );
    let rtx = track.rtx_ssrc.and_then(|_| {
        offered.iter().find(|c| {
            c.name.eq_ignore_ascii_case("rtx")
                && c.fmtp_param("apt") == Some(&chosen.pt.to_string())
        })
    });

    let mut m = Media::new(om.kind.clone(), &om.protocol);
    m.formats.push(chosen.pt.to_string());
    if let Some(r) = rtx {
        m.formats.push(r.pt.to_string());
    }
    m.connection = Some(Connection::ip4_any());
    let a = &mut m.attributes;
    a.push(Attribute::Rtcp {
        port: 9,
        address: Some("IN IP4 0.0.0.0".into()),
    });
    a.extend(params.candidates.iter().cloned().map(Attribute::Candidate));
    if !params.candidates.is_empty() {
        a.push(Attribute::EndOfCandidates);
    }
    a.push(Attribute::IceUfrag(params.ice_ufrag.clone()));
    a.push(Attribute::IcePwd(params.ice_pwd.clone()));
    a.push(Attribute::Fingerprint(params.fingerprint.clone()));
    a.push(Attribute::Setup(setup));
    a.push(Attribute::Mid(mid.to_string()));
    for e in om.extmaps() {
        if e.known().is_some_and(|u| params.extensions.contains(&u)) {
            a.push(Attribute::Extmap(Extmap {
                id: e.id,
                direction: None,
                uri: e.uri.clone(),
                attributes: None,
            }));
        }
    }
    a.push(Attribute::Direction(direction));
    if om.has(&Attribute::RtcpMux) || om.has(&Attribute::RtcpMuxOnly) {
        a.push(Attribute::RtcpMux);
    }
    if om.has(&Attribute::RtcpRsize) {
        a.push(Attribute::RtcpRsize);
    }
    a.push(Attribute::Rtpmap(Rtpmap {
        pt: chosen.pt,
        encoding: chosen.name.to_string(),
        clock_rate: chosen.clock_rate,
        channels: chosen.channels,
    }));
    for (kind, param) in SUPPORTED_FEEDBACK {
        if chosen.has_feedback(kind, param) {
            a.push(Attribute::RtcpFb(RtcpFb {
                pt: Some(chosen.pt),
                kind: kind.into(),
                param: param.map(str::to_string),
            }));
        }
    }
    let fmtp = pref
        .answer_fmtp
        .clone()
        .or_else(|| chosen.fmtp.map(|f| f.params.clone()));
    if let Some(params) = fmtp.filter(|p| !p.is_empty()) {
        a.push(Attribute::Fmtp(Fmtp {
            pt: chosen.pt,
            params,
        }));
    }
    if let Some(r) = rtx {
        a.push(Attribute::Rtpmap(Rtpmap {
            pt: r.pt,
            encoding: r.name.to_string(),
            clock_rate: r.clock_rate,
            channels: None,
        }));
        a.push(Attribute::Fmtp(Fmtp {
            pt: r.pt,
            params: format!("apt={}", chosen.pt),
        }));
    }
    if matches!(direction, Direction::SendOnly | Direction::SendRecv) {
        let mut ssrcs = vec![track.ssrc];
        if let (Some(_), Some(rs)) = (rtx, track.rtx_ssrc) {
            ssrcs.push(rs);
            a.push(Attribute::SsrcGroup {
                semantics: "FID".into(),
                ssrcs: ssrcs.clone(),
            });
        }
        a.push(Attribute::Msid {
            stream: params.stream_id.clone(),
            track: Some(track.track_id.clone()),
        });
        for s in ssrcs {
            a.push(Attribute::Ssrc(SsrcAttr {
                ssrc: s,
                attribute: "cname".into(),
                value: Some(params.cname.clone()),
            }));
            a.push(Attribute::Ssrc(SsrcAttr {
                ssrc: s,
                attribute: "msid".into(),
                value: Some(format!("{} {}", params.stream_id, track.track_id)),
            }));
        }
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:Xq3B\r\na=ice-pwd:r9a7lQ0cT1uVbK2mZ8pWf6sN\r\n\
a=fingerprint:sha-256 5C:1F:8E:0A:73:B2:49:D6:11:C4:9A:2E:7F:30:68:BD:E5:02:AF:94:3C:71:D8:26:5B:E9:0F:84:A3:17:6C:C2\r\n\
a=setup:actpass\r\na=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:27 uri:webrtc:rtc:rtp-hdrext:audio:aac-config\r\na=recvonly\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102 103\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
a=extmap:18 http://www.webrtc.org/experiments/rtp-hdrext/decoding-timestamp\r\na=extmap:13 urn:3gpp:video-orientation\r\n\
a=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\na=rtcp-fb:102 ccm fir\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n";

    fn params() -> AnswerParams {
        AnswerParams {
            ice_ufrag: "srv1".into(),
            ice_pwd: "0123456789abcdef01234567".into(),
            fingerprint: Fingerprint {
                hash: super::super::HashFunction::Sha256,
                digest: vec![7; 32],
            },
            candidates: vec![
                Candidate::parse("1 1 udp 2130706431 203.0.113.10 8000 typ host").unwrap(),
            ],
            ice_lite: true,
            session_id: 42,
            cname: "rtm".into(),
            stream_id: "live".into(),
            audio: Some(TrackParams {
                codecs: vec![CodecPreference::opus()],
                direction: Direction::SendOnly,
                ssrc: 1111,
                rtx_ssrc: None,
                track_id: "a0".into(),
            }),
            video: Some(TrackParams {
                codecs: vec![CodecPreference::h264("42e01f")],
                direction: Direction::SendOnly,
                ssrc: 2222,
                rtx_ssrc: Some(3333),
                track_id: "v0".into(),
            }),
            extensions: vec![ExtensionUri::DecodingTimestamp, ExtensionUri::AacConfig],
        }
    }

    #[test]
    fn answers_recvonly_offer() {
        let offer = Sdp::parse(OFFER).unwrap();
        let ans = build_answer(&offer, &params()).unwrap();
        let text = ans.to_string();
        let back = Sdp::parse(&text).unwrap();
        assert_eq!(back, ans);
        assert!(ans.is_ice_lite());
        assert_eq!(ans.bundle().unwrap(), ["0", "1"]);
        let v = &ans.media[1];
        assert_eq!(v.formats, ["102", "103"]);
        assert_eq!(v.direction(), Some(Direction::SendOnly));
        assert_eq!(v.setup(), Some(Setup::Passive));
        assert_eq!(v.extension_id(ExtensionUri::DecodingTimestamp), Some(18));
        assert_eq!(v.extmaps().count(), 1);
        assert_eq!(v.ssrcs(), [2222, 3333]);
        assert!(text.contains("a=ssrc-group:FID 2222 3333\r\n"));
        assert!(text.contains("a=rtcp-fb:102 nack pli\r\n"));
        let a = &ans.media[0];
        assert_eq!(a.formats, ["111"]);
        assert_eq!(a.extension_id(ExtensionUri::AacConfig), Some(27));
        assert_eq!(a.ssrcs(), [1111]);
    }

    #[test]
    fn rejects_unservable_sections() {
        let offer = Sdp::parse(OFFER).unwrap();
        let mut p = params();
        p.video.as_mut().unwrap().codecs = vec![CodecPreference::h265()];
        let ans = build_answer(&offer, &p).unwrap();
        assert_eq!(ans.media[1].port, 0);
        assert_eq!(ans.bundle().unwrap(), ["0"]);
        p.audio = None;
        assert_eq!(build_answer(&offer, &p), Err(AnswerError::NothingAccepted));
    }
}
