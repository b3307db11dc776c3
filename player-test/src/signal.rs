//! Signaling: the offer player-test sends and what it takes from the answer, for both miniSDP
//! over UDP (RTM) and WHEP over HTTP. Both paths build the same SDP offer with `rtm-sdp`'s
//! model; RTM compresses it to one datagram, WHEP posts it as text. Answers of both paths are
//! read through the same SDP accessors, so the session cannot tell how it started.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rtm_sdp::Sdp;
use rtm_sdp::minisdp::{self, CompressOptions, MiniSdp, SdpKind, WireVersion};
use rtm_sdp::sdp::{HashFunction, MediaKind};
use rtmlive::media::Codec;
use rtmlive::rtp::ExtensionIds;
use rtmlive::rtp::ext::RtmExt;
use tokio::net::UdpSocket;

use crate::client::dtls::{DtlsClient, Fingerprint};
use crate::http;
use crate::measure::{Stage, StageClock};
use crate::rtp_in::{RtpInput, TrackMap};
use crate::session::{LocalParams, RemoteParams};
use crate::url::MiniSdpVersion;

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("offer: {0}")]
    Offer(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("server refused the offer with status {0}")]
    Refused(u16),
    #[error("malformed answer: {0}")]
    Answer(String),
    #[error("HTTP {0}")]
    HttpStatus(u16),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Payload types offered. AAC is offered at the two common sample rates because the stream's
/// rate is unknown when the offer leaves (the edge answers before the origin responds).
const PT_OPUS: u8 = 111;
const PT_AAC_44: u8 = 97;
const PT_AAC_48: u8 = 98;
const PT_H264: u8 = 102;
const PT_H265: u8 = 104;

/// The recvonly offer, as SDP text. `rtm_extensions` adds the RTM private extensions (RTM
/// sessions); `v0_only` keeps only extensions the v0 table can carry.
pub fn offer_sdp(local: &LocalParams, rtm_extensions: bool, v0_only: bool) -> String {
    let fp = local.certificate.fingerprint.to_sdp_hex();
    let mut s = String::new();
    let _ = write!(
        s,
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n"
    );
    let common = |s: &mut String, mid: u8| {
        let _ = write!(
            s,
            "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n\
             a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\na=mid:{mid}\r\n",
            local.ice_ufrag, local.ice_pwd
        );
    };
    let extmaps = |s: &mut String, video: bool| {
        if !rtm_extensions {
            return;
        }
        for e in RtmExt::ALL {
            let for_video = e != RtmExt::AacConfig;
            let for_audio = matches!(e, RtmExt::DecodingTimestamp | RtmExt::AacConfig);
            if (video && !for_video) || (!video && !for_audio) {
                continue;
            }
            let representable = rtm_sdp::ExtensionUri::from_uri(e.uri())
                .is_some_and(|u| !v0_only || u.v0_index().is_some());
            if representable {
                let _ = write!(s, "a=extmap:{} {}\r\n", e.default_id(), e.uri());
            }
        }
    };
    let _ = write!(
        s,
        "m=audio 9 UDP/TLS/RTP/SAVPF {PT_OPUS} {PT_AAC_44} {PT_AAC_48}\r\n"
    );
    common(&mut s, 0);
    extmaps(&mut s, false);
    let _ = write!(
        s,
        "a=recvonly\r\na=rtcp-mux\r\n\
         a=rtpmap:{PT_OPUS} opus/48000/2\r\na=rtcp-fb:{PT_OPUS} nack\r\na=fmtp:{PT_OPUS} minptime=10;useinbandfec=1\r\n\
         a=rtpmap:{PT_AAC_44} MP4A-LATM/44100/2\r\na=rtcp-fb:{PT_AAC_44} nack\r\n\
         a=rtpmap:{PT_AAC_48} MP4A-LATM/48000/2\r\na=rtcp-fb:{PT_AAC_48} nack\r\n"
    );
    let _ = write!(s, "m=video 9 UDP/TLS/RTP/SAVPF {PT_H264} {PT_H265}\r\n");
    common(&mut s, 1);
    extmaps(&mut s, true);
    let _ = write!(
        s,
        "a=recvonly\r\na=rtcp-mux\r\n\
         a=rtpmap:{PT_H264} H264/90000\r\na=rtcp-fb:{PT_H264} nack\r\na=rtcp-fb:{PT_H264} nack pli\r\n\
         a=fmtp:{PT_H264} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
         a=rtpmap:{PT_H265} H265/90000\r\na=rtcp-fb:{PT_H265} nack\r\na=rtcp-fb:{PT_H265} nack pli\r\n"
    );
    s
}

/// The URL a miniSDP offer carries: `webrtc://HOST/APP/STREAM`.
pub fn minisdp_url(host: &str, app: &str, stream: &str) -> String {
    format!("{}{host}/{app}/{stream}", minisdp::URL_PREFIX)
}

/// The miniSDP offer datagram.
pub fn minisdp_offer(
    local: &LocalParams,
    version: MiniSdpVersion,
    url: &str,
    seq: u16,
    token: Option<&str>,
) -> Result<Vec<u8>, SignalError> {
    let v0 = version == MiniSdpVersion::V0;
    let text = offer_sdp(local, true, v0);
    let sdp = Sdp::parse(&text).map_err(|e| SignalError::Offer(e.to_string()))?;
    let mut opts = CompressOptions::new(
        if v0 {
            WireVersion::V0
        } else {
            WireVersion::Ext
        },
        SdpKind::Offer,
        url,
    );
    opts.seq = seq;
    opts.push_pull = Some(minisdp::PushPull::Pull);
    if let Some(t) = token {
        opts.auth = t.as_bytes().to_vec();
    }
    let m = MiniSdp::from_sdp(&sdp, &opts).map_err(|e| SignalError::Offer(e.to_string()))?;
    m.encode().map_err(|e| SignalError::Offer(e.to_string()))
}

/// What the answer says, in the session's terms, plus the codecs for a decoder.
pub struct Answer {
    pub remote: RemoteParams,
    /// For RTM: the stop packet that ends the session (echoes the answer's svrsig).
    pub stop_packet: Option<Vec<u8>>,
    pub video_codec: Option<Codec>,
    pub audio_codec: Option<Codec>,
}

fn codec_of(name: &str) -> Option<Codec> {
    match name.to_ascii_uppercase().as_str() {
        "H264" => Some(Codec::H264),
        "H265" => Some(Codec::H265),
        "OPUS" => Some(Codec::Opus),
        "MP4A-LATM" | "MP4A-ADTS" | "MPEG4-GENERIC" => Some(Codec::Aac),
        _ => None,
    }
}

/// Reads an SDP answer. `server` is where the offer went: the media address when the answer
/// names no usable candidate.
pub fn read_answer(ans: &Sdp, server: SocketAddr) -> Result<Answer, SignalError> {
    let ice_ufrag = ans
        .ice_ufrag()
        .ok_or_else(|| SignalError::Answer("no ice-ufrag".into()))?
        .to_owned();
    let ice_pwd = ans
        .ice_pwd()
        .ok_or_else(|| SignalError::Answer("no ice-pwd".into()))?
        .to_owned();
    let fingerprint = match ans.fingerprint() {
        Some(f) if f.hash == HashFunction::Sha256 => {
            let d: [u8; 32] =
                f.digest.as_slice().try_into().map_err(|_| {
                    SignalError::Answer("sha-256 fingerprint of wrong length".into())
                })?;
            Some(Fingerprint(d))
        }
        Some(_) => {
            return Err(SignalError::Answer(
                "fingerprint hash is not sha-256".into(),
            ));
        }
        None => None,
    };
    let media_addr = ans
        .candidates()
        .filter(|c| c.transport.eq_ignore_ascii_case("udp"))
        .filter_map(|c| {
            c.address
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, c.port))
        })
        .find(|a| !a.ip().is_unspecified() && a.port() != 0)
        .unwrap_or(server);
    let mut tracks = TrackMap::default();
    let mut audio_clock = 48_000;
    let (mut video_codec, mut audio_codec) = (None, None);
    let mut extmap = Vec::new();
    for m in &ans.media {
        if m.port == 0 {
            continue;
        }
        let codecs = m.codecs();
        let pts: Vec<u8> = codecs.iter().map(|c| c.pt).collect();
        let ssrc = m.ssrcs().first().copied();
        for e in m.extmaps() {
            if let Ok(id) = u8::try_from(e.id) {
                extmap.push((id, e.uri.clone()));
            }
        }
        match m.kind {
            MediaKind::Video => {
                tracks.video_pts = pts;
                tracks.video_ssrc = ssrc;
                video_codec = codecs.iter().find_map(|c| codec_of(c.name));
            }
            MediaKind::Audio => {
                tracks.audio_pts = pts;
                tracks.audio_ssrc = ssrc;
                if let Some(c) = codecs.first() {
                    audio_clock = c.clock_rate;
                }
                audio_codec = codecs.iter().find_map(|c| codec_of(c.name));
            }
            _ => {}
        }
    }
    let ids = ExtensionIds::from_extmap(extmap.iter().map(|(id, u)| (*id, u.as_str())))
        .map_err(|e| SignalError::Answer(format!("extension ids: {e}")))?;
    Ok(Answer {
        remote: RemoteParams {
            ice_ufrag,
            ice_pwd,
            fingerprint,
            media_addr,
            input: RtpInput::new(ids, tracks, audio_clock),
            audio_clock,
        },
        stop_packet: None,
        video_codec,
        audio_codec,
    })
}

/// Retransmission schedule of a miniSDP offer (same `seq`: the server answers duplicates with
/// the same answer, not a new session).
const OFFER_RETRIES: [u64; 6] = [200, 300, 500, 800, 1200, 2000];

/// RTM: sends the offer to `server` on `sock` and waits for the answer (retransmitting).
/// Marks `OfferSent` and `Answer`. With `early` (a [`DtlsClient::before_answer`]), its
/// ClientHello leaves right behind the first offer and DTLS datagrams that arrive before the
/// answer (the HelloVerifyRequest) are fed to it and its replies sent.
pub async fn rtm_exchange(
    sock: &UdpSocket,
    server: SocketAddr,
    offer: &[u8],
    token: Option<&str>,
    stages: &mut StageClock,
    timeout: Duration,
    mut early: Option<&mut DtlsClient>,
) -> Result<Answer, SignalError> {
    let mut buf = vec![0u8; 2048];
    let give_up = tokio::time::Instant::now() + timeout;
    // After the schedule, keep retransmitting at its last interval until `timeout`.
    let last = OFFER_RETRIES[OFFER_RETRIES.len() - 1];
    let schedule = OFFER_RETRIES.into_iter().chain(std::iter::repeat(last));
    for wait in schedule {
        if tokio::time::Instant::now() >= give_up {
            break;
        }
        sock.send_to(offer, server).await?;
        let now = Instant::now();
        stages.mark(Stage::OfferSent, now);
        if let Some(dtls) = early.as_deref_mut() {
            if dtls.start(now).is_err() {
                early = None;
            } else {
                while let Some(d) = dtls.poll_transmit() {
                    sock.send_to(&d, server).await?;
                }
            }
        }
        let deadline = (tokio::time::Instant::now() + Duration::from_millis(wait)).min(give_up);
        loop {
            let r = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
            let Ok(r) = r else { break };
            let (n, from) = r?;
            if from.ip() != server.ip() {
                continue;
            }
            if let (Some(dtls), Some(20..=63)) = (early.as_deref_mut(), buf.first()) {
                // The HelloVerifyRequest overtook the answer: continue the handshake.
                if dtls.handle(Instant::now(), &buf[..n]).is_ok() {
                    while let Some(d) = dtls.poll_transmit() {
                        sock.send_to(&d, server).await?;
                    }
                }
                continue;
            }
            if !minisdp::is_minisdp(&buf[..n]) {
                continue;
            }
            let Ok(m) = MiniSdp::decode(&buf[..n]) else {
                continue;
            };
            stages.mark(Stage::Answer, Instant::now());
            if !m.status.is_ok() || m.kind == SdpKind::Error {
                return Err(SignalError::Refused(m.status.0));
            }
            let mut answer = read_answer(&m.to_sdp(), server)?;
            let stop = minisdp::StopPacket {
                version: m.version,
                status: minisdp::Status::OK,
                seq: m.seq,
                svrsig: m.reference_svrsig(),
                auth: token.map(|t| t.as_bytes().to_vec()).unwrap_or_default(),
            };
            answer.stop_packet = stop.encode().ok();
            return Ok(answer);
        }
    }
    Err(SignalError::Timeout(timeout))
}

/// An established WHEP resource, to DELETE at the end.
pub struct WhepResource {
    pub authority: String,
    pub location: Option<String>,
    pub token: Option<String>,
}

impl WhepResource {
    /// Ends the session (best effort).
    pub async fn delete(&self) {
        if let Some(loc) = &self.location {
            let path = loc
                .find("://")
                .and_then(|i| loc[i + 3..].find('/').map(|j| &loc[i + 3 + j..]))
                .unwrap_or(loc);
            let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("Authorization", a.as_str())).collect();
            let _ = http::request(&self.authority, "DELETE", path, &headers, b"").await;
        }
    }
}

/// WHEP: POSTs the offer and reads the answer. Marks `OfferSent` and `Answer`.
pub async fn whep_exchange(
    authority: &str,
    path: &str,
    token: Option<&str>,
    local: &LocalParams,
    server: SocketAddr,
    stages: &mut StageClock,
    timeout: Duration,
) -> Result<(Answer, WhepResource), SignalError> {
    let offer = offer_sdp(local, true, false);
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/sdp")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    stages.mark(Stage::OfferSent, Instant::now());
    let fut = http::request(authority, "POST", path, &headers, offer.as_bytes());
    let resp = tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| SignalError::Timeout(timeout))??;
    let (head, body) = resp.body(timeout).await?;
    stages.mark(Stage::Answer, Instant::now());
    if head.status != 201 && head.status != 200 {
        return Err(SignalError::HttpStatus(head.status));
    }
    let text = String::from_utf8(body).map_err(|_| SignalError::Answer("not UTF-8".into()))?;
    let sdp = Sdp::parse(&text).map_err(|e| SignalError::Answer(e.to_string()))?;
    let answer = read_answer(&sdp, server)?;
    Ok((
        answer,
        WhepResource {
            authority: authority.to_owned(),
            location: head.header("location").map(str::to_owned),
            token: token.map(str::to_owned),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_dtls::crypto_provider::default_provider;

    #[test]
    fn offer_compresses_to_both_minisdp_versions() {
        let p = default_provider().unwrap();
        let local = LocalParams::generate(&p).unwrap();
        let url = minisdp_url("127.0.0.1", "live", "demo");
        for v in [MiniSdpVersion::V0, MiniSdpVersion::Extended] {
            let pkt = minisdp_offer(&local, v, &url, 7, None).unwrap();
            assert!(pkt.len() <= 1200, "{v:?}: {} bytes", pkt.len());
            let back = MiniSdp::decode(&pkt).unwrap();
            assert_eq!(back.seq, 7);
            assert_eq!(back.ice_ufrag, local.ice_ufrag);
            assert_eq!(back.url, url);
            let sdp = back.to_sdp();
            let fp = sdp.fingerprint().unwrap();
            assert_eq!(fp.digest, local.certificate.fingerprint.0.to_vec());
            if v == MiniSdpVersion::Extended {
                let video = sdp.media_of(&MediaKind::Video).unwrap();
                assert!(
                    video
                        .extension_id(rtm_sdp::ExtensionUri::FrameSeqRange)
                        .is_some()
                );
            }
        }
    }

    #[test]
    fn answer_is_read_into_session_params() {
        let text = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\n\
            a=candidate:1 1 udp 2130706431 10.0.0.5 8000 typ host\r\n\
            a=ice-ufrag:srv1\r\na=ice-pwd:0123456789abcdef012345\r\n\
            a=fingerprint:sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB\r\n\
            a=setup:passive\r\na=mid:1\r\n\
            a=extmap:21 uri:webrtc:rtc:rtp-hdrext:video:frame-seq-range\r\n\
            a=sendonly\r\na=rtcp-mux\r\na=rtpmap:102 H264/90000\r\na=ssrc:1234 cname:x\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
            a=rtpmap:97 MP4A-LATM/44100/2\r\n";
        let sdp = Sdp::parse(text).unwrap();
        let a = read_answer(&sdp, "127.0.0.1:8000".parse().unwrap()).unwrap();
        assert_eq!(a.remote.ice_ufrag, "srv1");
        assert_eq!(
            a.remote.media_addr,
            "10.0.0.5:8000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(a.remote.fingerprint, Some(Fingerprint([0xAB; 32])));
        assert_eq!(a.remote.audio_clock, 44_100);
        assert_eq!(a.video_codec, Some(Codec::H264));
        assert_eq!(a.audio_codec, Some(Codec::Aac));
        assert_eq!(a.remote.input.ids().frame_seq_range, Some(21));
        assert_eq!(a.remote.input.tracks().video_ssrc, Some(1234));
    }
}
