//! One playback session after signaling, sans-IO: ICE check, DTLS-SRTP, RTP reception into the
//! no-drop jitter buffers, RTCP feedback, simulated playout and measurements.
//!
//! The driver feeds it datagrams and time and sends what it returns; it never touches a socket
//! or a clock. Signaling (miniSDP, WHEP) produces the [`RemoteParams`] it starts from.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtmlive::media::{Codec, FrameKind, TrackKind};

use crate::client::dtls::{DtlsClient, DtlsError, Fingerprint, LocalCertificate, SrtpSession};
use crate::client::rtcp::{self, Feedback, ReceptionStats, RtcpIn};
use crate::client::stun::{StunClient, StunEvent};
use crate::jitter::{AssembledFrame, JitterConfig, JitterError, JitterStats, TrackBuffer};
use crate::measure::{BitrateMeter, LatencyMeter, Stage, StageClock};
use crate::picture::{PictureSize, sps_size};
use crate::playout::Playout;
use crate::report::{LossReport, SessionReport};
use crate::rtp_in::RtpInput;
use crate::seq::SeqUnwrapper;

/// Our half of the ICE/DTLS parameters, sent in the offer.
#[derive(Clone)]
pub struct LocalParams {
    pub ice_ufrag: String,
    pub ice_pwd: String,
    pub certificate: LocalCertificate,
}

impl LocalParams {
    /// Fresh random ICE credentials (RFC 8839: ufrag ≥ 4, pwd ≥ 22 ice-chars) and certificate.
    pub fn generate(provider: &Arc<dyn RTCCryptoProvider>) -> Result<Self, SessionError> {
        Ok(Self {
            ice_ufrag: random_ice_chars(provider, 8)?,
            ice_pwd: random_ice_chars(provider, 24)?,
            certificate: LocalCertificate::generate(provider)?,
        })
    }
}

fn random_ice_chars(p: &Arc<dyn RTCCryptoProvider>, n: usize) -> Result<String, SessionError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut raw = vec![0u8; n];
    p.random()
        .fill(&mut raw)
        .map_err(|e| SessionError::Setup(e.to_string()))?;
    Ok(raw
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect())
}

/// What the session needs from the answer, whichever signaling produced it.
#[derive(Debug, Clone)]
pub struct RemoteParams {
    pub ice_ufrag: String,
    pub ice_pwd: String,
    pub fingerprint: Option<Fingerprint>,
    /// Where media comes from and STUN/DTLS/RTCP go (the answer's candidate).
    pub media_addr: SocketAddr,
    /// RTP input: negotiated extension IDs and the payload-type/SSRC → track map.
    pub input: RtpInput,
    /// RTP clock rate of the audio track.
    pub audio_clock: u32,
}

/// When the DTLS ClientHello leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum DtlsStart {
    /// Right behind the miniSDP offer, before the answer ([`DtlsClient::before_answer`], then
    /// [`Session::with_dtls`]): the edge answers it with its HelloVerifyRequest together with
    /// the answer, so the cookie round trip overlaps offer/answer (3 RTT to media). WHEP
    /// offers go over HTTP to another port: there it behaves as `WithFirstCheck`.
    #[default]
    WithOffer,
    /// Right behind the first STUN request (the server has verified our address by the time
    /// the ClientHello, next in the same flow, reaches it): 4 RTT to media.
    WithFirstCheck,
    /// Only after the STUN check succeeded (conservative, one more round trip).
    AfterIce,
}

/// Tuning of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub jitter: JitterConfig,
    pub dtls_start: DtlsStart,
    /// Receiver-report interval.
    pub rtcp_interval: Duration,
    /// Keep every presentation (for tests and charts); off in load mode.
    pub keep_presentation_log: bool,
    /// Queue released frames for [`Session::poll_frame`] (decoding, tests); off in load mode.
    pub deliver_frames: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            jitter: JitterConfig::default(),
            dtls_start: DtlsStart::default(),
            rtcp_interval: Duration::from_millis(500),
            keep_presentation_log: false,
            deliver_frames: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("setup: {0}")]
    Setup(String),
    #[error(transparent)]
    Dtls(#[from] DtlsError),
    #[error("ICE: {0}")]
    Ice(String),
    #[error("jitter buffer: {0}; re-pull")]
    Repull(#[from] JitterError),
}

/// Bound of the frame queue for [`Session::poll_frame`]: a consumer that stops reading does not
/// make the session grow without limit (frames beyond are still played and counted).
const MAX_QUEUED_FRAMES: usize = 1024;

#[derive(Debug)]
struct RxStream {
    unwrap: SeqUnwrapper,
    stats: ReceptionStats,
}

/// A playback session over one UDP flow.
pub struct Session {
    config: SessionConfig,
    provider: Arc<dyn RTCCryptoProvider>,
    remote: RemoteParams,
    stages: StageClock,
    stun: StunClient,
    dtls: DtlsClient,
    srtp: Option<SrtpSession>,
    video: TrackBuffer,
    audio: TrackBuffer,
    rx: HashMap<u32, RxStream>,
    track_ssrc: HashMap<TrackKind, u32>,
    local_ssrc: u32,
    playout: Playout,
    latency: LatencyMeter,
    bitrate: BitrateMeter,
    transmits: VecDeque<Vec<u8>>,
    frames: VecDeque<AssembledFrame>,
    next_rtcp: Option<Instant>,
    pli_pending: bool,
    plis_sent: u64,
    frames_released: u64,
    frames_decoded: Option<u64>,
    undecryptable: u64,
    /// SRTP/SRTCP that arrived before the DTLS keys (media overtaking the server's last
    /// handshake flight); replayed once keyed.
    early_srtp: VecDeque<Vec<u8>>,
    error: Option<String>,
    /// The server's own stop packet (it is draining: re-pull elsewhere): when, and its status.
    server_stop: Option<(Instant, u16)>,
    /// The first RTCP BYE from the server.
    bye_at: Option<Instant>,
    /// The last media packet that decrypted.
    last_media_at: Option<Instant>,
    /// The negotiated video codec, when known: keyframes' parameter sets are then read for
    /// the picture size.
    video_codec: Option<Codec>,
    /// The picture size and its changes: when, width, height.
    video_sizes: Vec<(Instant, u32, u32)>,
}

/// Most picture-size changes kept for the report (a flapping source cannot grow it).
pub const MAX_PICTURE_SIZES: usize = 64;

/// A packet still missing this long after it was first NACKed counts as lost after recovery.
pub const UNRECOVERED_AFTER: Duration = Duration::from_secs(1);

/// Datagrams held while DTLS finishes (a keyframe burst of a 4 Mbit/s stream fits).
const MAX_EARLY_SRTP: usize = 512;

impl Session {
    /// Starts the transport: the first STUN request (and, by default, the ClientHello) are
    /// due at `now`. `stages` carries the signaling marks (offer sent, answer).
    pub fn new(
        config: SessionConfig,
        local_addr: SocketAddr,
        local: &LocalParams,
        remote: RemoteParams,
        provider: Arc<dyn RTCCryptoProvider>,
        stages: StageClock,
        now: Instant,
    ) -> Result<Self, SessionError> {
        let dtls = DtlsClient::new(
            local_addr,
            remote.media_addr,
            &local.certificate,
            remote.fingerprint,
            provider.clone(),
        )?;
        Self::with_dtls(config, local, remote, provider, stages, now, dtls)
    }

    /// Like [`Self::new`], continuing a DTLS handshake the driver started before the answer
    /// ([`DtlsClient::before_answer`]: the ClientHello sent right behind the miniSDP offer,
    /// which the edge answers with its HelloVerifyRequest at once, saving one round trip).
    /// The answer's fingerprint is installed into it here. If the answer names another media
    /// address than the one the early ClientHello went to, that handshake is abandoned and a
    /// fresh one starts with the first STUN check.
    #[allow(clippy::too_many_arguments)]
    pub fn with_dtls(
        config: SessionConfig,
        local: &LocalParams,
        remote: RemoteParams,
        provider: Arc<dyn RTCCryptoProvider>,
        stages: StageClock,
        now: Instant,
        mut dtls: DtlsClient,
    ) -> Result<Self, SessionError> {
        if dtls.remote() != remote.media_addr {
            dtls = DtlsClient::new(
                dtls.local(),
                remote.media_addr,
                &local.certificate,
                remote.fingerprint,
                provider.clone(),
            )?;
        }
        dtls.set_expected(remote.fingerprint);
        let mut tb = [0u8; 12];
        provider
            .random()
            .fill(&mut tb)
            .map_err(|e| SessionError::Setup(e.to_string()))?;
        let tie = u64::from_be_bytes([tb[0], tb[1], tb[2], tb[3], tb[4], tb[5], tb[6], tb[7]]);
        let local_ssrc = u32::from_be_bytes([tb[8], tb[9], tb[10], tb[11]]);
        let stun = StunClient::new(
            &local.ice_ufrag,
            &remote.ice_ufrag,
            &remote.ice_pwd,
            provider.clone(),
            tie,
            now,
        );
        let mut jcfg = config.jitter;
        jcfg.audio_clock = remote.audio_clock;
        Ok(Self {
            video: TrackBuffer::new(TrackKind::Video, jcfg),
            audio: TrackBuffer::new(TrackKind::Audio, jcfg),
            playout: Playout::new(Duration::ZERO, config.keep_presentation_log),
            config,
            provider,
            remote,
            stages,
            stun,
            dtls,
            srtp: None,
            rx: HashMap::new(),
            track_ssrc: HashMap::new(),
            local_ssrc,
            latency: LatencyMeter::default(),
            bitrate: BitrateMeter::default(),
            transmits: VecDeque::new(),
            frames: VecDeque::new(),
            next_rtcp: None,
            pli_pending: false,
            plis_sent: 0,
            frames_released: 0,
            frames_decoded: None,
            undecryptable: 0,
            early_srtp: VecDeque::new(),
            server_stop: None,
            bye_at: None,
            last_media_at: None,
            video_codec: None,
            video_sizes: Vec::new(),
            error: None,
        })
    }

    pub fn stages(&self) -> &StageClock {
        &self.stages
    }

    pub fn remote_addr(&self) -> SocketAddr {
        self.remote.media_addr
    }

    pub fn playout(&self) -> &Playout {
        &self.playout
    }

    /// The jitter buffer of `track`.
    pub fn buffer(&self, track: TrackKind) -> &TrackBuffer {
        match track {
            TrackKind::Video => &self.video,
            TrackKind::Audio => &self.audio,
        }
    }

    pub fn buffer_stats(&self, track: TrackKind) -> JitterStats {
        match track {
            TrackKind::Video => self.video.stats(),
            TrackKind::Audio => self.audio.stats(),
        }
    }

    /// The video codec the answer negotiated: keyframes are then checked for the picture size
    /// their parameter sets announce (see [`crate::picture`]).
    pub fn set_video_codec(&mut self, codec: Option<Codec>) {
        self.video_codec = codec;
    }

    /// Records the picture size a keyframe announces, if it changed.
    fn note_picture_size(&mut self, frame: &AssembledFrame, now: Instant) {
        let Some(codec) = self.video_codec else {
            return;
        };
        // The parameter sets lead the keyframe.
        let Some((w, h)) = frame
            .packets
            .iter()
            .take(4)
            .find_map(|p| sps_size(codec, &p.payload))
        else {
            return;
        };
        let changed = self
            .video_sizes
            .last()
            .is_none_or(|&(_, lw, lh)| (lw, lh) != (w, h));
        if changed && self.video_sizes.len() < MAX_PICTURE_SIZES {
            self.video_sizes.push((now, w, h));
        }
    }

    /// A real decoder produced a picture (the `decode` feature's driver calls this).
    pub fn on_decoded(&mut self, now: Instant) {
        self.stages.mark(Stage::FirstDecoded, now);
        *self.frames_decoded.get_or_insert(0) += 1;
    }

    /// Next released frame, when `deliver_frames` is on.
    pub fn poll_frame(&mut self) -> Option<AssembledFrame> {
        self.frames.pop_front()
    }

    /// Next datagram to send to [`Self::remote_addr`].
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if let Some(d) = self.dtls.poll_transmit() {
            return Some(d.to_vec());
        }
        self.transmits.pop_front()
    }

    /// When [`Self::handle_timeout`] is next needed.
    pub fn poll_timeout(&self) -> Instant {
        [
            Some(self.stun.poll_timeout()),
            self.dtls.poll_timeout(),
            self.video.poll_timeout(),
            self.audio.poll_timeout(),
            self.next_rtcp,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.stun.poll_timeout())
    }

    /// Advances timers: STUN (re)transmissions and consent, DTLS flights, NACK retries, RTCP.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        match self.stun.poll_transmit(now) {
            Ok(Some(req)) => {
                self.transmits.push_back(req);
                if self.config.dtls_start != DtlsStart::AfterIce {
                    self.dtls.start(now)?;
                }
            }
            Ok(None) => {}
            Err(e) => return Err(SessionError::Ice(e.to_string())),
        }
        self.dtls.handle_timeout(now)?;
        self.send_feedback(now);
        Ok(())
    }

    fn send_feedback(&mut self, now: Instant) {
        let Some(srtp) = self.srtp.as_mut() else {
            return;
        };
        let mut fb = Feedback::default();
        for (track, buf) in [
            (TrackKind::Video, &mut self.video),
            (TrackKind::Audio, &mut self.audio),
        ] {
            let seqs = buf.poll_nacks(now);
            if let (false, Some(&ssrc)) = (seqs.is_empty(), self.track_ssrc.get(&track)) {
                fb.nacks.push((ssrc, seqs));
            }
        }
        if self.pli_pending
            && let Some(&ssrc) = self.track_ssrc.get(&TrackKind::Video)
        {
            fb.plis.push(ssrc);
            self.pli_pending = false;
            self.plis_sent += 1;
        }
        let rr_due = self.next_rtcp.is_none_or(|t| now >= t);
        if !(rr_due || !fb.nacks.is_empty() || !fb.plis.is_empty()) {
            return;
        }
        if rr_due {
            self.next_rtcp = Some(now + self.config.rtcp_interval);
        }
        fb.reports = self.rx.values_mut().map(|r| r.stats.report(now)).collect();
        if let Ok(raw) = fb.marshal(self.local_ssrc)
            && let Ok(p) = srtp.protect_rtcp(&raw)
        {
            self.transmits.push_back(p.to_vec());
        }
    }

    /// One datagram from the server. `wall` is the local wall clock (latency).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        wall: SystemTime,
        data: &[u8],
    ) -> Result<(), SessionError> {
        match data.first() {
            Some(0..=3) => match self.stun.handle(now, data) {
                Ok(StunEvent::Connected { rtt }) => {
                    self.stages.mark(Stage::IceConnected, now);
                    self.video.set_rtt(rtt);
                    self.audio.set_rtt(rtt);
                    self.dtls.start(now)?;
                }
                Ok(StunEvent::Refreshed { rtt }) => {
                    self.video.set_rtt(rtt);
                    self.audio.set_rtt(rtt);
                }
                Ok(StunEvent::Ignored) => {}
                // A bad STUN response is ignored like any other forged datagram.
                Err(_) => {}
            },
            Some(20..=63) => {
                if let Some(keys) = self.dtls.handle(now, data)? {
                    self.srtp = Some(SrtpSession::new(&keys, &self.provider)?);
                    self.stages.mark(Stage::DtlsDone, now);
                    while let Some(early) = self.early_srtp.pop_front() {
                        self.handle_srtp(now, wall, &early)?;
                    }
                }
            }
            Some(128..=191) => self.handle_srtp(now, wall, data)?,
            // A miniSDP stop packet from the server: this edge is going away (drain).
            Some(0xFF) => {
                if let Ok(rtm_sdp::minisdp::Packet::Stop(stop)) = rtm_sdp::minisdp::decode(data)
                    && self.server_stop.is_none()
                {
                    self.server_stop = Some((now, stop.status.0));
                }
            }
            _ => {}
        }
        self.send_feedback(now);
        Ok(())
    }

    fn handle_srtp(
        &mut self,
        now: Instant,
        wall: SystemTime,
        data: &[u8],
    ) -> Result<(), SessionError> {
        let Some(srtp) = self.srtp.as_mut() else {
            if self.dtls.is_started() && self.early_srtp.len() < MAX_EARLY_SRTP {
                self.early_srtp.push_back(data.to_vec());
            }
            return Ok(());
        };
        // RFC 5761: RTCP packet types 192..=223 in the second byte.
        if matches!(data.get(1), Some(192..=223)) {
            let Ok(plain) = srtp.unprotect_rtcp(data) else {
                self.undecryptable += 1;
                return Ok(());
            };
            for item in rtcp::parse(&plain).unwrap_or_default() {
                match item {
                    RtcpIn::SenderReport { ssrc, ntp, rtp_ts } => {
                        if let Some(r) = self.rx.get_mut(&ssrc) {
                            r.stats.on_sender_report(ntp, now);
                        }
                        if self.track_ssrc.get(&TrackKind::Video) == Some(&ssrc) {
                            self.latency.on_sender_report(ntp, rtp_ts, 90_000);
                        }
                    }
                    RtcpIn::Bye => {
                        self.bye_at.get_or_insert(now);
                    }
                }
            }
            return Ok(());
        }
        let Ok(plain) = srtp.unprotect_rtp(data) else {
            self.undecryptable += 1;
            return Ok(());
        };
        self.bitrate.on_bytes(data.len(), now);
        self.last_media_at = Some(now);
        self.stages.mark(Stage::FirstRtp, now);
        let Ok(pkt) = self.remote.input.parse(plain.freeze()) else {
            return Ok(());
        };
        let clock = match pkt.track {
            TrackKind::Video => 90_000,
            TrackKind::Audio => self.remote.audio_clock,
        };
        let rx = self.rx.entry(pkt.ssrc).or_insert_with(|| RxStream {
            unwrap: SeqUnwrapper::new(),
            stats: ReceptionStats::new(pkt.ssrc, clock, now),
        });
        let ext = rx.unwrap.unwrap(pkt.seq);
        rx.stats.on_rtp(ext, pkt.timestamp, now);
        self.track_ssrc.entry(pkt.track).or_insert(pkt.ssrc);
        let track = pkt.track;
        let buf = match track {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        };
        buf.insert(pkt, now)?;
        while let Some(frame) = match track {
            TrackKind::Video => self.video.pop_frame(),
            TrackKind::Audio => self.audio.pop_frame(),
        } {
            self.on_frame(frame, now, wall);
        }
        Ok(())
    }

    fn on_frame(&mut self, frame: AssembledFrame, now: Instant, wall: SystemTime) {
        self.frames_released += 1;
        if frame.track == TrackKind::Video {
            if frame.kind == FrameKind::Key {
                self.stages.mark(Stage::FirstKeyframe, now);
                self.note_picture_size(&frame, now);
            } else if !self.stages.reached(Stage::FirstKeyframe) && self.plis_sent == 0 {
                // Started on a non-keyframe: ask for one (answered from the edge's GOP cache).
                self.pli_pending = true;
            }
            self.latency.on_presented(frame.rtp_timestamp, wall);
        }
        self.playout
            .push(frame.track, frame.dts_ms, frame.pts_ms(), now);
        if self.config.deliver_frames && self.frames.len() < MAX_QUEUED_FRAMES {
            self.frames.push_back(frame);
        }
    }

    /// Queues a DTLS close_notify (the driver sends it, then drops the session).
    pub fn close(&mut self, now: Instant) {
        self.dtls.close(now);
    }

    /// The RTM extension IDs this session negotiated.
    pub fn input_ids(&self) -> rtmlive::rtp::ExtensionIds {
        *self.remote.input.ids()
    }

    /// Empties the jitter buffers before a re-pull; what they held is counted as dropped.
    pub fn discard_for_repull(&mut self) {
        self.video.reset();
        self.audio.reset();
    }

    /// Records a fatal error for the report.
    pub fn set_error(&mut self, e: String) {
        self.error = Some(e);
    }

    /// The session's report at `now` (end of play).
    pub fn report(
        &mut self,
        url: &str,
        protocol: &str,
        index: usize,
        now: Instant,
    ) -> SessionReport {
        self.playout.flush(now);
        let (v, a) = (self.video.stats(), self.audio.stats());
        let vp = self.playout.stats(TrackKind::Video);
        let ap = self.playout.stats(TrackKind::Audio);
        let expected: u64 = self.rx.values().map(|r| r.stats.expected()).sum();
        let outstanding = (self.video.nack().unrecovered(now, UNRECOVERED_AFTER)
            + self.audio.nack().unrecovered(now, UNRECOVERED_AFTER))
            as u64;
        let missing = v.packets_missing + a.packets_missing;
        let stages = self.stages.times();
        let first_frame = stages.first_frame();
        let start = self.stages.start();
        let ms = |t: Instant| t.saturating_duration_since(start).as_secs_f64() * 1000.0;
        let ratio = |x: u64| {
            if expected == 0 {
                0.0
            } else {
                x as f64 / expected as f64
            }
        };
        SessionReport {
            url: url.to_owned(),
            protocol: protocol.to_owned(),
            index,
            ok: self.error.is_none() && first_frame.is_some(),
            error: self.error.clone().or_else(|| {
                first_frame
                    .is_none()
                    .then(|| "no complete keyframe received".to_owned())
            }),
            stages,
            first_frame_ms: first_frame,
            duration_ms: now
                .saturating_duration_since(self.stages.start())
                .as_secs_f64()
                * 1000.0,
            video: vp,
            audio: ap,
            video_buffer: v,
            audio_buffer: a,
            stalls: vp.stalls,
            stall_time_ms: vp.stall_time_ms,
            stall_ratio: if vp.played_ms > 0.0 {
                vp.stall_time_ms / vp.played_ms
            } else {
                0.0
            },
            frames_released: self.frames_released,
            frames_dropped: v.frames_dropped + a.frames_dropped,
            nacks_sent: v.nacks_sent + a.nacks_sent,
            retransmits_received: v.retransmits_received + a.retransmits_received,
            plis_sent: self.plis_sent,
            repulls: 0,
            loss: LossReport {
                packets_expected: expected,
                before_recovery: ratio(missing),
                after_recovery: ratio(outstanding),
            },
            latency_ms: self.latency.summary(),
            bitrate_kbps: self.bitrate.kbps(),
            bytes_received: self.bitrate.bytes(),
            frames_decoded: self.frames_decoded,
            server_stop_ms: self.server_stop.map(|(t, _)| ms(t)),
            server_stop_status: self.server_stop.map(|(_, s)| s),
            bye_ms: self.bye_at.map(ms),
            last_media_ms: self.last_media_at.map(ms),
            video_sizes: self
                .video_sizes
                .iter()
                .map(|&(at, width, height)| PictureSize {
                    at_ms: ms(at),
                    width,
                    height,
                })
                .collect(),
        }
    }
}
