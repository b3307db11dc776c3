//! [`ViewerSession`]: the sans-IO state machine of one viewer.
//!
//! ```text
//!   new ──valid STUN──▶ ice connected ──DTLS handshake + fingerprint ok──▶ established ──▶ closed
//!    │                       │                                               │
//!    └── connect timeout ────┴── DTLS timeout / failure ─────────────────────┴── consent expiry,
//!                                                                                 BYE, close_notify
//! ```
//!
//! Fed datagrams and time, it returns datagrams ([`Transmit`]) and [`SessionEvent`]s. It never
//! touches a socket or reads a clock. Media is pushed in with [`ViewerSession::send_media`],
//! which returns the protected datagram directly so the driver can put it straight into its
//! send batch. NACKs and keyframe requests come out as events: the driver resolves them against
//! the stream's retransmission and GOP caches (never forwarded upstream).
//!
//! Before an address is verified by ICE, everything sent to it passes the anti-amplification
//! budget ([`super::amplification`]); DTLS from an unverified address is parked (bounded) until
//! ICE verifies it, so a ClientHello sent right behind the offer costs no round trip.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::amplification::AmplificationBudget;
use super::demux::{DatagramKind, classify};
use super::dtls::{DtlsError, DtlsIdentity, DtlsServer, Fingerprint, is_cookieless_client_hello};
use super::ext_policy::ExtensionPolicy;
use super::ice_lite::{IceConfig, IceLite, IceTimeout};
use super::rtcp::{self, Feedback, NtpClock, RtcpError, SenderInfo};
use super::srtp::{Rewrite, SrtpError, SrtpSession};
use super::stun::StunError;
use crate::media::TrackKind;
use crate::rtp::MediaPacket;

/// Parked DTLS datagrams from not-yet-verified addresses.
const MAX_EARLY_DTLS: usize = 4;
/// Cookieless ClientHellos answered (HelloVerifyRequest) before ICE verifies the client: the
/// first, plus retransmissions of it.
const MAX_EARLY_HELLOS: u8 = 3;
/// Largest datagram worth parking.
const MAX_EARLY_DTLS_LEN: usize = 1500;
/// Events queued beyond this are dropped (NACK/keyframe requests are repeated by clients);
/// `Closed` is always delivered.
const MAX_EVENTS: usize = 64;

/// One negotiated media track of the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackParams {
    pub kind: TrackKind,
    /// SSRC announced to the viewer (packets are rewritten to it if the stream's differs).
    pub ssrc: u32,
    /// Negotiated payload type.
    pub payload_type: u8,
    /// RTP clock rate (sender reports extrapolate the RTP time with it).
    pub clock_rate: u32,
}

/// Everything a session needs, from signaling and from the server.
#[derive(Clone)]
pub struct SessionParams {
    /// ICE credentials and timers.
    pub ice: IceConfig,
    /// The client's certificate fingerprint from the offer.
    pub remote_fingerprint: Fingerprint,
    /// Negotiated tracks (at most one per [`TrackKind`]).
    pub tracks: Vec<TrackParams>,
    /// The server's DTLS identity (shared).
    pub identity: Arc<DtlsIdentity>,
    /// Wall-clock anchor for sender reports.
    pub ntp: NtpClock,
    /// Time allowed from ICE connection to a finished DTLS handshake.
    pub dtls_timeout: Duration,
    /// Sender report interval.
    pub sr_interval: Duration,
    /// What the viewer gets of the stream's RTP header extensions (plain RTP for browsers).
    pub extensions: ExtensionPolicy,
}

impl SessionParams {
    /// Parameters with default timers (DTLS 15 s, SR every second).
    pub fn new(
        ice: IceConfig,
        remote_fingerprint: Fingerprint,
        tracks: Vec<TrackParams>,
        identity: Arc<DtlsIdentity>,
        ntp: NtpClock,
    ) -> Self {
        Self {
            ice,
            remote_fingerprint,
            tracks,
            identity,
            ntp,
            dtls_timeout: Duration::from_secs(15),
            sr_interval: Duration::from_secs(1),
            extensions: ExtensionPolicy::Keep,
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub data: BytesMut,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// No valid connectivity check before the ICE connect timeout.
    IceTimeout,
    /// RFC 7675 consent expired.
    ConsentExpired,
    /// DTLS did not complete in time (or its retransmissions ran out).
    DtlsTimeout,
    /// The client's certificate did not match the offer's fingerprint.
    FingerprintMismatch,
    /// The DTLS handshake failed.
    DtlsFailed(String),
    /// The client sent DTLS close_notify.
    DtlsClosed,
    /// The client sent RTCP BYE.
    Bye,
    /// [`ViewerSession::close`] was called.
    Local,
}

/// What happened in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The first valid connectivity check arrived from `remote`.
    IceConnected { remote: SocketAddr },
    /// The client nominated a different address; media now goes there.
    RemoteChanged { remote: SocketAddr },
    /// DTLS finished, the fingerprint matched, SRTP is keyed: media may flow.
    DtlsConnected,
    /// The client lost these packets; `seqs` are stream sequence numbers (low 16 bits, the
    /// session's offset already undone) of `track`.
    Nack { track: TrackKind, seqs: Vec<u16> },
    /// PLI or FIR: the client needs a keyframe on `track`. Answer from the GOP cache.
    KeyframeRequest { track: TrackKind },
    /// The session is over; drop it after draining its transmits.
    Closed(CloseReason),
}

/// Errors from feeding a session. None of them closes the session by itself except where the
/// session queues [`SessionEvent::Closed`].
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session closed")]
    Closed,
    #[error("stun: {0}")]
    Stun(#[from] StunError),
    #[error("dtls: {0}")]
    Dtls(#[from] DtlsError),
    #[error("srtp: {0}")]
    Srtp(#[from] SrtpError),
    #[error("rtcp: {0}")]
    Rtcp(#[from] RtcpError),
    #[error("{0:?} datagram from an address ICE has not verified")]
    Unverified(DatagramKind),
    #[error("{0:?} datagram is not for a session")]
    Unexpected(DatagramKind),
    #[error("anti-amplification limit: {allowance} bytes allowed, {wanted} wanted")]
    AmplificationLimit { allowance: u64, wanted: usize },
}

/// Counters of one session (read by the driver; never on a shared lock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub datagrams_received: u64,
    pub bytes_received: u64,
    /// SRTP media packets sent, retransmissions included.
    pub packets_sent: u64,
    /// SRTP bytes sent (media, retransmissions included).
    pub bytes_sent: u64,
    pub retransmits: u64,
    pub nacked_seqs: u64,
    pub keyframe_requests: u64,
    pub rtcp_received: u64,
    /// Last RTT from a report block.
    pub rtt: Option<Duration>,
    /// Last reported loss fraction (x/256) and cumulative loss, summed over tracks.
    pub fraction_lost: u8,
    pub total_lost: u32,
    /// Last reported interarrival jitter (RTP units) of the video track, else audio.
    pub jitter: u32,
    pub events_dropped: u64,
}

#[derive(Debug, Clone, Copy)]
struct TrackState {
    params: TrackParams,
    rewrite: Rewrite,
    packets: u32,
    octets: u32,
    /// RTP timestamp (viewer space) of the last packet sent, and when.
    last: Option<(u32, Instant)>,
}

enum Phase {
    /// Waiting for the first valid connectivity check.
    New,
    /// ICE verified an address; DTLS handshaking.
    IceConnected,
    /// SRTP keyed.
    Established(Box<SrtpSession>),
    Closed,
}

/// The transport state of one viewer.
pub struct ViewerSession {
    ice: IceLite,
    dtls: DtlsServer,
    phase: Phase,
    tracks: [Option<TrackState>; 2],
    identity: Arc<DtlsIdentity>,
    ntp: NtpClock,
    budget: AmplificationBudget,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent>,
    early_dtls: Vec<(SocketAddr, Bytes)>,
    early_hellos: u8,
    dtls_deadline: Option<Instant>,
    dtls_timeout: Duration,
    sr_interval: Duration,
    next_sr: Option<Instant>,
    stats: SessionStats,
    /// When signaling created the session (the offer arrived): the origin of the first-frame
    /// stage timings.
    created: Instant,
    extensions: ExtensionPolicy,
}

fn track_index(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Audio => 0,
        TrackKind::Video => 1,
    }
}

thread_local! {
    /// Rewrite scratch buffer, one per shard thread rather than one per viewer.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(1500));
}

impl ViewerSession {
    /// Creates a session at signaling time (before any datagram from the client).
    pub fn new(now: Instant, params: SessionParams) -> Self {
        let mut tracks = [None, None];
        for t in &params.tracks {
            tracks[track_index(t.kind)] = Some(TrackState {
                params: *t,
                rewrite: Rewrite {
                    ssrc: t.ssrc,
                    payload_type: t.payload_type,
                    seq_offset: 0,
                    ts_offset: 0,
                },
                packets: 0,
                octets: 0,
                last: None,
            });
        }
        Self {
            ice: IceLite::new(now, &params.ice),
            dtls: DtlsServer::new(&params.identity, params.remote_fingerprint),
            phase: Phase::New,
            tracks,
            identity: params.identity,
            ntp: params.ntp,
            budget: AmplificationBudget::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            early_dtls: Vec::new(),
            early_hellos: 0,
            dtls_deadline: None,
            dtls_timeout: params.dtls_timeout,
            sr_interval: params.sr_interval,
            extensions: params.extensions,
            next_sr: None,
            stats: SessionStats::default(),
            created: now,
        }
    }

    /// The `now` the session was created with (when its offer arrived).
    pub fn created_at(&self) -> Instant {
        self.created
    }

    /// Our ICE ufrag (the shard routes a first STUN packet by it).
    pub fn local_ufrag(&self) -> &[u8] {
        self.ice.local_ufrag()
    }

    /// Where media goes: the nominated (else last verified) address.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.ice.remote()
    }

    /// Whether `addr` passed an authenticated connectivity check.
    pub fn is_verified(&self, addr: SocketAddr) -> bool {
        self.ice.is_verified(addr)
    }

    /// SRTP is keyed and there is an address to send to.
    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Established(_)) && self.ice.remote().is_some()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Sets the per-track rewrite offsets (co-host switch, GOP jump): `seq_offset` is added to
    /// every sequence number (and the frame-seq-range values), `ts_offset` to every timestamp.
    pub fn set_offsets(&mut self, track: TrackKind, seq_offset: u16, ts_offset: u32) {
        if let Some(t) = &mut self.tracks[track_index(track)] {
            t.rewrite.seq_offset = seq_offset;
            t.rewrite.ts_offset = ts_offset;
        }
    }

    /// Records bytes received from `from` outside [`Self::handle_datagram`] (the miniSDP offer
    /// and its retransmissions), which earn send credit towards an unverified address.
    pub fn note_unverified_received(&mut self, from: SocketAddr, bytes: usize) {
        if !self.ice.is_verified(from) {
            self.budget.on_received(from, bytes);
        }
    }

    /// Bytes that may be sent to `to` now (unlimited once ICE verified it).
    pub fn send_allowance(&self, to: SocketAddr) -> u64 {
        if self.ice.is_verified(to) {
            u64::MAX
        } else {
            self.budget.allowance(to)
        }
    }

    /// Queues a datagram produced outside the session (the signaling answer) for `to`, subject
    /// to the anti-amplification budget when `to` is unverified.
    pub fn queue_unverified_send(
        &mut self,
        to: SocketAddr,
        data: BytesMut,
    ) -> Result<(), SessionError> {
        if !self.ice.is_verified(to) && !self.budget.try_spend(to, data.len()) {
            return Err(SessionError::AmplificationLimit {
                allowance: self.budget.allowance(to),
                wanted: data.len(),
            });
        }
        self.transmits.push_back(Transmit { to, data });
        Ok(())
    }

    /// Feeds one datagram from `from`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), SessionError> {
        if self.is_closed() {
            return Err(SessionError::Closed);
        }
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += data.len() as u64;
        let kind = classify(data);
        if !self.ice.is_verified(from) {
            self.budget.on_received(from, data.len());
        }
        match kind {
            DatagramKind::Stun => self.handle_stun(now, from, data),
            DatagramKind::Dtls => {
                if self.ice.is_verified(from) {
                    self.handle_dtls(now, data)
                } else if matches!(self.phase, Phase::New)
                    && self.early_hellos < MAX_EARLY_HELLOS
                    && is_cookieless_client_hello(data)
                {
                    self.answer_early_hello(now, from, data)
                } else {
                    if self.early_dtls.len() < MAX_EARLY_DTLS && data.len() <= MAX_EARLY_DTLS_LEN {
                        self.early_dtls.push((from, Bytes::copy_from_slice(data)));
                    }
                    Err(SessionError::Unverified(kind))
                }
            }
            DatagramKind::Rtcp => {
                if !self.ice.is_verified(from) {
                    return Err(SessionError::Unverified(kind));
                }
                self.handle_rtcp(now, data)
            }
            // A playback session receives no media; ignore it without error.
            DatagramKind::Rtp => Ok(()),
            DatagramKind::MiniSdp | DatagramKind::Junk => Err(SessionError::Unexpected(kind)),
        }
    }

    /// Answers a ClientHello that arrived before ICE verified `from` (sent right behind the
    /// miniSDP offer) with the HelloVerifyRequest at once, through the anti-amplification
    /// budget, instead of parking it until the STUN check: the cookie round trip then runs in
    /// parallel with the offer/answer and STUN round trips (3 RTT to media instead of 4, see
    /// docs/signaling.md). Everything after the HelloVerifyRequest (the certificate flight)
    /// still waits for ICE: a ClientHello with a cookie is parked like any early DTLS.
    fn answer_early_hello(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), SessionError> {
        self.early_hellos += 1;
        let result = self.dtls.handle_datagram(now, data);
        while let Some(d) = self.dtls.poll_transmit() {
            // A HelloVerifyRequest (48 bytes) against a budget of 3× the offer and the
            // ClientHello: it fits unless the offer was retransmitted many times over.
            if !self.budget.try_spend(from, d.len()) {
                return Err(SessionError::AmplificationLimit {
                    allowance: self.budget.allowance(from),
                    wanted: d.len(),
                });
            }
            self.transmits.push_back(Transmit { to: from, data: d });
        }
        result.map(|_| ()).map_err(Into::into)
    }

    fn handle_stun(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), SessionError> {
        let mut response = Vec::with_capacity(80);
        let outcome = self.ice.handle_stun(now, from, data, &mut response)?;
        self.transmits.push_back(Transmit {
            to: from,
            data: BytesMut::from(&response[..]),
        });
        if matches!(self.phase, Phase::New) {
            self.phase = Phase::IceConnected;
            self.dtls_deadline = Some(now + self.dtls_timeout);
            self.push_event(SessionEvent::IceConnected { remote: from });
        } else if let Some(remote) = outcome.nominated {
            self.push_event(SessionEvent::RemoteChanged { remote });
        }
        if outcome.newly_verified && !self.early_dtls.is_empty() {
            let parked = std::mem::take(&mut self.early_dtls);
            for (addr, d) in parked {
                if addr == from {
                    // Errors here are the handshake's own (reported via Closed when fatal).
                    let _ = self.handle_dtls(now, &d);
                } else {
                    self.early_dtls.push((addr, d));
                }
            }
        }
        Ok(())
    }

    fn handle_dtls(&mut self, now: Instant, data: &[u8]) -> Result<(), SessionError> {
        let result = self.dtls.handle_datagram(now, data);
        self.drain_dtls();
        let progress = match result {
            Ok(p) => p,
            Err(DtlsError::FingerprintMismatch) => {
                self.close(now, CloseReason::FingerprintMismatch);
                return Err(DtlsError::FingerprintMismatch.into());
            }
            Err(e) => return Err(e.into()),
        };
        if progress.completed {
            let keys = match self.dtls.srtp_keys() {
                Ok(k) => k,
                Err(e) => {
                    self.close(now, CloseReason::DtlsFailed(e.to_string()));
                    return Err(e.into());
                }
            };
            let srtp = match SrtpSession::new(&keys, self.identity.provider().as_ref()) {
                Ok(s) => s,
                Err(e) => {
                    self.close(now, CloseReason::DtlsFailed(e.to_string()));
                    return Err(e.into());
                }
            };
            self.phase = Phase::Established(Box::new(srtp));
            self.early_dtls = Vec::new();
            self.dtls_deadline = None;
            self.next_sr = Some(now + self.sr_interval);
            self.push_event(SessionEvent::DtlsConnected);
        }
        if progress.peer_closed {
            self.drain_dtls();
            self.finish(CloseReason::DtlsClosed);
        }
        Ok(())
    }

    fn drain_dtls(&mut self) {
        let remote = self.ice.remote();
        while let Some(d) = self.dtls.poll_transmit() {
            if let Some(to) = remote {
                self.transmits.push_back(Transmit { to, data: d });
            }
        }
    }

    fn handle_rtcp(&mut self, now: Instant, data: &[u8]) -> Result<(), SessionError> {
        let Phase::Established(srtp) = &mut self.phase else {
            return Err(SessionError::Unexpected(DatagramKind::Rtcp));
        };
        let plain = srtp.unprotect_rtcp(data)?;
        self.stats.rtcp_received += 1;
        let mut feedback = Vec::new();
        rtcp::parse(&plain, &mut feedback)?;
        let arrival = self.ntp.ntp(now);
        for f in feedback {
            match f {
                Feedback::Nack { media_ssrc, seqs } => {
                    if let Some(t) = self.track_by_ssrc(media_ssrc) {
                        self.stats.nacked_seqs += seqs.len() as u64;
                        let seqs = seqs.into_iter().map(|s| t.rewrite.stream_seq(s)).collect();
                        let track = t.params.kind;
                        self.push_event(SessionEvent::Nack { track, seqs });
                    }
                }
                Feedback::KeyframeRequest { media_ssrc } => {
                    if let Some(t) = self.track_by_ssrc(media_ssrc) {
                        self.stats.keyframe_requests += 1;
                        let track = t.params.kind;
                        self.push_event(SessionEvent::KeyframeRequest { track });
                    }
                }
                Feedback::Report(r) => {
                    if let Some(t) = self.track_by_ssrc(r.ssrc) {
                        let is_video = t.params.kind == TrackKind::Video;
                        if let Some(rtt) = rtcp::rtt(arrival, r.lsr, r.dlsr) {
                            self.stats.rtt = Some(rtt);
                        }
                        self.stats.fraction_lost = r.fraction_lost;
                        self.stats.total_lost = r.total_lost;
                        if is_video || self.tracks[track_index(TrackKind::Video)].is_none() {
                            self.stats.jitter = r.jitter;
                        }
                    }
                }
                Feedback::Bye => {
                    self.finish(CloseReason::Bye);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn track_by_ssrc(&self, ssrc: u32) -> Option<TrackState> {
        self.tracks
            .iter()
            .flatten()
            .find(|t| t.params.ssrc == ssrc)
            .copied()
    }

    fn push_event(&mut self, e: SessionEvent) {
        if self.events.len() >= MAX_EVENTS && !matches!(e, SessionEvent::Closed(_)) {
            self.stats.events_dropped += 1;
            return;
        }
        self.events.push_back(e);
    }

    /// Protects `pkt` for this viewer; `Ok(None)` until the session is established or when the
    /// track was not negotiated.
    pub fn send_media(
        &mut self,
        now: Instant,
        pkt: &MediaPacket,
    ) -> Result<Option<Transmit>, SessionError> {
        self.protect(now, pkt, false)
    }

    /// Like [`Self::send_media`] for a packet the client NACKed (counted as a retransmission).
    pub fn send_retransmit(
        &mut self,
        now: Instant,
        pkt: &MediaPacket,
    ) -> Result<Option<Transmit>, SessionError> {
        self.protect(now, pkt, true)
    }

    fn protect(
        &mut self,
        now: Instant,
        pkt: &MediaPacket,
        retransmit: bool,
    ) -> Result<Option<Transmit>, SessionError> {
        let Some(to) = self.ice.remote() else {
            return Ok(None);
        };
        let Phase::Established(srtp) = &mut self.phase else {
            return Ok(None);
        };
        let Some(track) = &mut self.tracks[track_index(pkt.track)] else {
            return Ok(None);
        };
        let data = SCRATCH.with(|s| {
            srtp.protect_media(pkt, &track.rewrite, &self.extensions, &mut s.borrow_mut())
        })?;
        track.packets = track.packets.wrapping_add(1);
        track.octets = track
            .octets
            .wrapping_add(pkt.bytes.len().saturating_sub(12) as u32);
        if !retransmit {
            track.last = Some((pkt.timestamp.wrapping_add(track.rewrite.ts_offset), now));
        }
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += data.len() as u64;
        if retransmit {
            self.stats.retransmits += 1;
        }
        Ok(Some(Transmit { to, data }))
    }

    /// The next datagram to send (STUN responses, DTLS flights, RTCP, signaling answer).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        [
            Some(self.ice.poll_timeout()),
            self.dtls.poll_timeout(),
            self.dtls_deadline,
            self.next_sr,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Drives timers: ICE/consent expiry, DTLS retransmission and deadline, sender reports.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if let Some(t) = self.ice.check_timeout(now) {
            let reason = match t {
                IceTimeout::NeverConnected => CloseReason::IceTimeout,
                IceTimeout::ConsentExpired => CloseReason::ConsentExpired,
            };
            self.close(now, reason);
            return;
        }
        if self.dtls_deadline.is_some_and(|d| now >= d) {
            self.close(now, CloseReason::DtlsTimeout);
            return;
        }
        if self.dtls.handle_timeout(now).is_err() {
            self.close(now, CloseReason::DtlsTimeout);
            return;
        }
        self.drain_dtls();
        if self.next_sr.is_some_and(|t| now >= t) {
            self.next_sr = Some(now + self.sr_interval);
            self.send_sender_reports(now);
        }
    }

    fn send_sender_reports(&mut self, now: Instant) {
        let Some(to) = self.ice.remote() else { return };
        let ntp = self.ntp.ntp(now);
        let mut plain = Vec::with_capacity(64);
        for t in self.tracks.iter().flatten() {
            let Some((ts, at)) = t.last else { continue };
            let elapsed = now.saturating_duration_since(at);
            let ticks = elapsed.as_micros() * u128::from(t.params.clock_rate) / 1_000_000;
            let info = SenderInfo {
                ssrc: t.params.ssrc,
                ntp,
                rtp_time: ts.wrapping_add(ticks as u32),
                packets: t.packets,
                octets: t.octets,
            };
            if rtcp::write_sender_report(&info, &mut plain).is_err() {
                return;
            }
        }
        if plain.is_empty() {
            return;
        }
        if let Phase::Established(srtp) = &mut self.phase
            && let Ok(data) = srtp.protect_rtcp(&plain)
        {
            self.transmits.push_back(Transmit { to, data });
        }
    }

    /// Ends the session: RTCP BYE and DTLS close_notify when established, then `Closed`.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        if let (Phase::Established(srtp), Some(to)) = (&mut self.phase, self.ice.remote()) {
            let ssrcs: Vec<u32> = self
                .tracks
                .iter()
                .flatten()
                .map(|t| t.params.ssrc)
                .collect();
            let mut plain = Vec::new();
            if !ssrcs.is_empty()
                && rtcp::write_bye(&ssrcs, &mut plain).is_ok()
                && let Ok(data) = srtp.protect_rtcp(&plain)
            {
                self.transmits.push_back(Transmit { to, data });
            }
        }
        if !matches!(self.phase, Phase::New) {
            self.dtls.close(now);
            self.drain_dtls();
        }
        self.finish(reason);
    }

    fn finish(&mut self, reason: CloseReason) {
        self.phase = Phase::Closed;
        self.early_dtls = Vec::new();
        self.push_event(SessionEvent::Closed(reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_struct_stays_small() {
        // The inline struct; heap parts (rtc-dtls Endpoint, SRTP contexts) are measured in
        // tests/transport_session.rs and documented in docs/transport.md.
        let size = std::mem::size_of::<ViewerSession>();
        assert!(size <= 2048, "ViewerSession is {size} bytes");
    }
}
