//! Offer → answer + session parameters: the one code path behind miniSDP and WHEP.
//!
//! Whichever way a viewer signals, its offer ends up as an [`Sdp`] and is answered here, so the
//! session behaves identically after signaling. The codecs answered follow what the stream is
//! known to carry; for a stream whose origin has not delivered its sequence headers yet (the
//! async origin fetch), the edge answers with the codecs it would most likely need and the
//! exact decoder configuration travels in-band (parameter sets, the aac-config extension).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt as _;
use rtm_sdp::ExtensionUri;
use rtm_sdp::sdp::answer::{AnswerError, AnswerParams, CodecPreference, TrackParams as SdpTrack};
use rtm_sdp::sdp::{
    Candidate, CandidateType, Direction, Fingerprint as SdpFingerprint, HashFunction, MediaKind,
    Sdp, Setup,
};
use thiserror::Error;

use crate::hub::Stream;
use crate::media::{Codec, TrackKind};
use crate::transport::dtls::{DtlsIdentity, DtlsRole, Fingerprint};
use crate::transport::ice_lite::IceConfig;
use crate::transport::receiver::ReceiverConfig;
use crate::transport::rtcp::NtpClock;
use crate::transport::{ExtensionPolicy, ReceiveParams, ReceiveTrack, SessionParams, TrackParams};

/// RTM extensions the edge writes (their ids come from the offer).
pub const SUPPORTED_EXTENSIONS: [ExtensionUri; 6] = [
    ExtensionUri::DecodingTimestamp,
    ExtensionUri::CompositionTime,
    ExtensionUri::FrameSeqRange,
    ExtensionUri::FrameType,
    ExtensionUri::ReferenceFrameTimestamp,
    ExtensionUri::AacConfig,
];

/// What the edge knows about itself when it answers.
#[derive(Clone)]
pub struct LocalDescription {
    pub identity: Arc<DtlsIdentity>,
    /// Host candidates advertised in every answer (the media port, or a relay in front of it).
    pub candidates: Vec<SocketAddr>,
    pub ntp: NtpClock,
    pub ice_connect_timeout: Duration,
    pub ice_consent_timeout: Duration,
    pub dtls_timeout: Duration,
}

/// Why an offer could not be answered.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NegotiateError {
    #[error("offer has no DTLS fingerprint usable with this edge (sha-256 required)")]
    Fingerprint,
    #[error("offer has no ICE credentials")]
    IceCredentials,
    #[error("offer does not ask to receive media")]
    Direction,
    #[error(transparent)]
    Answer(#[from] AnswerError),
    #[error("no codec of the offer can carry this stream")]
    NoCodec,
    #[error("offer does not send media")]
    NotSending,
}

/// The outcome of a successful negotiation.
pub struct Negotiation {
    /// The answer SDP (WHEP sends it as text; miniSDP compresses it).
    pub answer: Sdp,
    /// Everything the transport session needs.
    pub session: SessionParams,
    pub local_ufrag: String,
}

/// A random ICE string of `len` letters and digits: valid ice-chars (RFC 8839), and without
/// the `+` and `/` of that set, because a local ufrag is also the session's id in URLs (admin
/// kick, WHEP/WHIP resources): a `/` there made a session impossible to address.
pub fn random_ice_string(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// The offer's H.264 formats, best first for a stream of H.264 `profile_idc` (`None`: not
/// known yet). Browsers offer each profile twice, with packetization-mode 1 and 0; mode 1 is
/// required because the packetizer fragments (FU-A) every NAL unit larger than a packet, so a
/// mode-0 format must never win by coming first. Among mode-1 formats the one of the stream's
/// own profile keeps the answer truthful (Chromium offers 42001f, 42e01f, 4d001f, f4001f:
/// answering 42001f for a Main stream plays, but a decoder may pick its implementation by
/// the profile). Offers without fmtp (older players) still match the last, name-only entry.
fn h264_preferences(offer: &Sdp, profile_idc: Option<u8>) -> Vec<CodecPreference> {
    let mut prefs = Vec::new();
    if let Some(profile_idc) = profile_idc {
        let matching = offer
            .media
            .iter()
            .filter(|m| m.kind == MediaKind::Video && m.port != 0)
            .flat_map(|m| m.codecs_in_preference_order())
            .filter(|c| {
                c.name.eq_ignore_ascii_case("H264")
                    && c.clock_rate == 90_000
                    && c.fmtp_param("packetization-mode") == Some("1")
            })
            .find_map(|c| {
                let plid = c.fmtp_param("profile-level-id")?;
                let idc = u8::from_str_radix(plid.get(..2)?, 16).ok()?;
                (idc == profile_idc).then(|| plid.to_owned())
            });
        if let Some(plid) = matching {
            prefs.push(CodecPreference::h264(&plid));
        }
    }
    prefs.push(CodecPreference {
        required_fmtp: vec![("packetization-mode".into(), "1".into())],
        ..CodecPreference::by_name("H264", 90_000, None)
    });
    prefs.push(CodecPreference::by_name("H264", 90_000, None));
    prefs
}

fn video_preferences(stream: &Stream, offer: &Sdp) -> Vec<CodecPreference> {
    match stream.video_config() {
        Some(c) if c.codec == Codec::H265 => vec![CodecPreference::h265()],
        Some(c) => h264_preferences(offer, Some(c.profile)),
        // Unknown yet (origin still connecting): H.264 is what nearly every origin carries.
        None => {
            let mut prefs = h264_preferences(offer, None);
            prefs.push(CodecPreference::h265());
            prefs
        }
    }
}

fn audio_preferences(stream: &Stream) -> Vec<CodecPreference> {
    match stream.audio_config() {
        Some(a) if a.codec == Codec::Opus => vec![CodecPreference::opus()],
        Some(a) => vec![CodecPreference::by_name("MP4A-LATM", a.sample_rate, None)],
        None => [44_100, 48_000, 32_000, 22_050, 16_000]
            .into_iter()
            .map(|rate| CodecPreference::by_name("MP4A-LATM", rate, None))
            .chain([CodecPreference::opus()])
            .collect(),
    }
}

/// Whether some section of `offer` has one of `dirs` (no direction attribute = sendrecv).
fn any_section_is(offer: &Sdp, dirs: [Direction; 2]) -> bool {
    offer
        .media
        .iter()
        .any(|m| dirs.contains(&m.direction().unwrap_or(Direction::SendRecv)))
}

/// Answers `offer` for a viewer of `stream`. `local_ufrag` routes the session's first STUN
/// packet (see [`crate::transport::shard::ufrag_for_shard`]).
pub fn negotiate(
    local: &LocalDescription,
    offer: &Sdp,
    stream: &Stream,
    local_ufrag: String,
) -> Result<Negotiation, NegotiateError> {
    let (remote_fingerprint, remote_ufrag) = remote_credentials(offer)?;
    if !any_section_is(offer, [Direction::RecvOnly, Direction::SendRecv]) {
        return Err(NegotiateError::Direction);
    }

    let mut rng = rand::rng();
    let local_pwd = random_ice_string(24);
    let video_ssrc: u32 = rng.random();
    let audio_ssrc: u32 = rng.random();
    let cname = random_ice_string(16);
    let candidates = local_candidates(local);
    let params = AnswerParams {
        ice_ufrag: local_ufrag.clone(),
        ice_pwd: local_pwd.clone(),
        fingerprint: SdpFingerprint {
            hash: HashFunction::Sha256,
            digest: local.identity.fingerprint().0.to_vec(),
        },
        candidates,
        ice_lite: true,
        session_id: rng.random::<u32>().into(),
        cname: cname.clone(),
        stream_id: cname,
        audio: Some(SdpTrack {
            codecs: audio_preferences(stream),
            direction: Direction::SendOnly,
            ssrc: audio_ssrc,
            rtx_ssrc: None,
            track_id: "audio".into(),
        }),
        video: Some(SdpTrack {
            codecs: video_preferences(stream, offer),
            direction: Direction::SendOnly,
            ssrc: video_ssrc,
            rtx_ssrc: None,
            track_id: "video".into(),
        }),
        extensions: SUPPORTED_EXTENSIONS.to_vec(),
    };
    let answer = rtm_sdp::sdp::answer::build_answer(offer, &params)?;

    let mut tracks = Vec::new();
    for m in answer.media.iter().filter(|m| m.port != 0) {
        let (kind, ssrc) = match m.kind {
            MediaKind::Audio => (TrackKind::Audio, audio_ssrc),
            MediaKind::Video => (TrackKind::Video, video_ssrc),
            _ => continue,
        };
        let Some(codec) = m.codecs_in_preference_order().into_iter().next() else {
            continue;
        };
        tracks.push(TrackParams {
            kind,
            ssrc,
            payload_type: codec.pt,
            clock_rate: codec.clock_rate,
        });
    }
    if tracks.is_empty() {
        return Err(NegotiateError::NoCodec);
    }
    let mut session = session_params(
        local,
        &local_ufrag,
        local_pwd,
        remote_ufrag,
        remote_fingerprint,
        tracks,
    );
    session.extensions = extension_policy(&answer);
    Ok(Negotiation {
        answer,
        session,
        local_ufrag,
    })
}

/// Answers a publisher's (WHIP) offer: the edge receives H.264 (packetization-mode 1) and Opus,
/// answers `recvonly`, and NACK/PLI feedback and RTX when offered. The session gets a receive
/// side ([`ReceiveParams`]) and no send tracks.
pub fn negotiate_publish(
    local: &LocalDescription,
    offer: &Sdp,
    local_ufrag: String,
) -> Result<Negotiation, NegotiateError> {
    let (remote_fingerprint, remote_ufrag) = remote_credentials(offer)?;
    if !any_section_is(offer, [Direction::SendOnly, Direction::SendRecv]) {
        return Err(NegotiateError::NotSending);
    }
    // An offerer that insists on being the DTLS server (ffmpeg's default) gets an active edge.
    let dtls_role = if offer.setup() == Some(Setup::Passive) {
        DtlsRole::Client
    } else {
        DtlsRole::Server
    };
    let mut rng = rand::rng();
    let local_pwd = random_ice_string(24);
    let cname = random_ice_string(16);
    let mut h264 = CodecPreference::by_name("H264", 90_000, None);
    h264.required_fmtp = vec![("packetization-mode".into(), "1".into())];
    let params = AnswerParams {
        ice_ufrag: local_ufrag.clone(),
        ice_pwd: local_pwd.clone(),
        fingerprint: SdpFingerprint {
            hash: HashFunction::Sha256,
            digest: local.identity.fingerprint().0.to_vec(),
        },
        candidates: local_candidates(local),
        ice_lite: true,
        session_id: rng.random::<u32>().into(),
        cname: cname.clone(),
        stream_id: cname,
        audio: Some(SdpTrack {
            codecs: vec![CodecPreference::opus()],
            direction: Direction::RecvOnly,
            ssrc: rng.random(),
            rtx_ssrc: None,
            track_id: "audio".into(),
        }),
        video: Some(SdpTrack {
            codecs: vec![h264],
            direction: Direction::RecvOnly,
            ssrc: rng.random(),
            // Answers the offer's RTX (retransmissions arrive on it; the session unwraps them).
            rtx_ssrc: Some(rng.random()),
            track_id: "video".into(),
        }),
        extensions: Vec::new(),
    };
    let answer = rtm_sdp::sdp::answer::build_answer(offer, &params)?;
    let mut receive = Vec::new();
    for m in answer.media.iter().filter(|m| m.port != 0) {
        let kind = match m.kind {
            MediaKind::Audio => TrackKind::Audio,
            MediaKind::Video => TrackKind::Video,
            _ => continue,
        };
        let codecs = m.codecs_in_preference_order();
        let Some(codec) = codecs.iter().find(|c| !c.name.eq_ignore_ascii_case("rtx")) else {
            continue;
        };
        let rtx = codecs.iter().find(|c| {
            c.name.eq_ignore_ascii_case("rtx") && c.fmtp_param("apt") == Some(&codec.pt.to_string())
        });
        receive.push(ReceiveTrack {
            kind,
            payload_type: codec.pt,
            rtx_payload_type: rtx.map(|r| r.pt),
            clock_rate: codec.clock_rate,
        });
    }
    if receive.is_empty() {
        return Err(NegotiateError::NoCodec);
    }
    let mut session = session_params(
        local,
        &local_ufrag,
        local_pwd,
        remote_ufrag,
        remote_fingerprint,
        Vec::new(),
    );
    session.dtls_role = dtls_role;
    session.receive = Some(ReceiveParams {
        tracks: receive,
        rtcp_ssrc: rng.random(),
        config: ReceiverConfig::default(),
    });
    Ok(Negotiation {
        answer,
        session,
        local_ufrag,
    })
}

/// The offer's DTLS fingerprint (SHA-256 only) and ICE ufrag.
fn remote_credentials(offer: &Sdp) -> Result<(Fingerprint, String), NegotiateError> {
    let fp = offer.fingerprint().ok_or(NegotiateError::Fingerprint)?;
    if fp.hash != HashFunction::Sha256 {
        return Err(NegotiateError::Fingerprint);
    }
    let remote_fingerprint = Fingerprint(
        fp.digest
            .as_slice()
            .try_into()
            .map_err(|_| NegotiateError::Fingerprint)?,
    );
    let remote_ufrag = offer
        .ice_ufrag()
        .ok_or(NegotiateError::IceCredentials)?
        .to_owned();
    Ok((remote_fingerprint, remote_ufrag))
}

/// The edge's host candidates, as answer attributes.
fn local_candidates(local: &LocalDescription) -> Vec<Candidate> {
    local
        .candidates
        .iter()
        .enumerate()
        .map(|(i, addr)| Candidate {
            foundation: format!("{}", i + 1),
            component: 1,
            transport: "udp".into(),
            priority: 2_130_706_431 - i as u32,
            address: addr.ip().to_string(),
            port: addr.port(),
            typ: CandidateType::Host,
            raddr: None,
            rport: None,
            extensions: Vec::new(),
        })
        .collect()
}

fn session_params(
    local: &LocalDescription,
    local_ufrag: &str,
    local_pwd: String,
    remote_ufrag: String,
    remote_fingerprint: Fingerprint,
    tracks: Vec<TrackParams>,
) -> SessionParams {
    let mut ice = IceConfig::new(local_ufrag.to_owned(), local_pwd, remote_ufrag);
    ice.connect_timeout = local.ice_connect_timeout;
    ice.consent_timeout = local.ice_consent_timeout;
    let mut session = SessionParams::new(
        ice,
        remote_fingerprint,
        tracks,
        local.identity.clone(),
        local.ntp,
    );
    session.dtls_timeout = local.dtls_timeout;
    session
}

/// The stream's id of each RTM extension (what the publisher writes into the shared packets).
fn stream_id(uri: ExtensionUri) -> Option<u8> {
    use crate::rtp::ext::RtmExt;
    let e = match uri {
        ExtensionUri::DecodingTimestamp => RtmExt::DecodingTimestamp,
        ExtensionUri::CompositionTime => RtmExt::CompositionTime,
        ExtensionUri::FrameSeqRange => RtmExt::FrameSeqRange,
        ExtensionUri::FrameType => RtmExt::FrameType,
        ExtensionUri::ReferenceFrameTimestamp => RtmExt::ReferenceFrameTimestamp,
        ExtensionUri::AacConfig => RtmExt::AacConfig,
        _ => return None,
    };
    Some(e.default_id())
}

/// Which of the stream's extensions the viewer accepted, under which ids: the answer keeps the
/// offer's ids for the extensions the edge implements (BUNDLE shares one id space).
fn extension_policy(answer: &Sdp) -> ExtensionPolicy {
    let mut pairs: Vec<(u8, u8)> = Vec::new();
    for m in answer.media.iter().filter(|m| m.port != 0) {
        for uri in SUPPORTED_EXTENSIONS {
            if let (Some(from), Some(to)) = (stream_id(uri), m.extension_id(uri))
                && let Ok(to) = u8::try_from(to)
                && !pairs.iter().any(|&(f, _)| f == from)
            {
                pairs.push((from, to));
            }
        }
    }
    ExtensionPolicy::from_pairs(&pairs)
}

/// `app/stream` from a stream URL (`webrtc://host/app/stream?query`, `rtm://…`, or a path).
/// The last two path segments name the stream, so URLs with a longer prefix path still work.
pub fn stream_key(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    // Drop the authority (host[:port]) when a scheme was present or the URL has no leading '/'.
    let path = if url.contains("://") {
        rest.split_once('/').map(|(_, p)| p)?
    } else {
        rest.trim_start_matches('/')
    };
    let path = path.split(['?', '#']).next()?;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let [.., app, stream] = segs.as_slice() else {
        return None;
    };
    let stream = stream.strip_suffix(".flv").unwrap_or(stream);
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && !s.bytes().all(|b| b == b'.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    };
    (valid(app) && valid(stream)).then(|| format!("{app}/{stream}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ice_strings_are_url_safe() {
        for _ in 0..200 {
            let s = random_ice_string(24);
            assert_eq!(s.len(), 24);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()), "{s}");
        }
    }

    /// Chromium 156's H.264 formats, reordered so a packetization-mode 0 format comes first.
    const BROWSER_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 104 102 116\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:VujA\r\na=ice-pwd:ZWbAamS4RchY1RcoEd/oIizS\r\n\
a=fingerprint:sha-256 44:C2:CE:4A:E5:BE:79:E0:61:1E:55:15:85:94:02:73:30:E8:42:45:9E:36:47:AF:15:43:AA:56:29:0A:0F:39\r\n\
a=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:104 H264/90000\r\n\
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:116 H264/90000\r\n\
a=fmtp:116 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n";

    fn chosen_h264_pt(offer: &Sdp, profile_idc: Option<u8>) -> u8 {
        let params = AnswerParams {
            ice_ufrag: "ufrag".into(),
            ice_pwd: "0123456789012345678901".into(),
            fingerprint: SdpFingerprint {
                hash: HashFunction::Sha256,
                digest: vec![0; 32],
            },
            candidates: Vec::new(),
            ice_lite: true,
            session_id: 1,
            cname: "c".into(),
            stream_id: "s".into(),
            audio: None,
            video: Some(SdpTrack {
                codecs: h264_preferences(offer, profile_idc),
                direction: Direction::SendOnly,
                ssrc: 1,
                rtx_ssrc: None,
                track_id: "video".into(),
            }),
            extensions: Vec::new(),
        };
        let answer = rtm_sdp::sdp::answer::build_answer(offer, &params).expect("answer");
        let video = answer.media.first().expect("video section");
        video.codecs_in_preference_order()[0].pt
    }

    #[test]
    fn h264_answer_prefers_the_streams_profile_and_never_packetization_mode_0() {
        let offer = Sdp::parse(BROWSER_OFFER).expect("offer parses");
        // Main (77 = 0x4d) stream: the Main format.
        assert_eq!(chosen_h264_pt(&offer, Some(0x4d)), 116);
        // High (100) is not offered: the first mode-1 format, not the mode-0 one listed first.
        assert_eq!(chosen_h264_pt(&offer, Some(100)), 102);
        assert_eq!(chosen_h264_pt(&offer, None), 102);
        // A player that sends no fmtp at all still gets H.264.
        let bare = Sdp::parse(
            &BROWSER_OFFER
                .lines()
                .filter(|l| !l.starts_with("a=fmtp"))
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        )
        .expect("offer parses");
        assert_eq!(chosen_h264_pt(&bare, Some(0x4d)), 104);
    }

    #[test]
    fn stream_keys() {
        assert_eq!(
            stream_key("webrtc://live.example.com/live/stream01").as_deref(),
            Some("live/stream01")
        );
        assert_eq!(
            stream_key("webrtc://h:8000/a/b/live/demo?token=x").as_deref(),
            Some("live/demo")
        );
        assert_eq!(stream_key("/live/demo.flv").as_deref(), Some("live/demo"));
        assert_eq!(stream_key("webrtc://host/onlyone"), None);
        assert_eq!(stream_key("webrtc://host/live/../x"), None);
        assert_eq!(stream_key("webrtc://host/li ve/x"), None);
    }
}
