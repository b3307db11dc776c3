//! [`ViewerSession`]: the sans-IO state machine of one WebRTC peer: a viewer (the edge sends)
//! or, with [`ReceiveParams`], a WHIP publisher (the edge receives).
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
//!
//! A publisher's session shares everything up to SRTP with a viewer's and adds a receive side:
//! its SRTP packets are decrypted, RTX is unwrapped, each track's [`RtpReceiver`] puts them in
//! order and NACKs gaps, and the in-order packets come out of [`ViewerSession::poll_received`].
//! Receiver reports go out on the sender-report timer; PLIs on [`ViewerSession::request_keyframe`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::amplification::AmplificationBudget;
use super::demux::{DatagramKind, classify};
use super::dtls::{
    DtlsError, DtlsIdentity, DtlsRole, DtlsServer, Fingerprint, is_cookieless_client_hello,
};
use super::ext_policy::ExtensionPolicy;
use super::ice_lite::{IceConfig, IceLite, IceTimeout};
use super::receiver::{ReceiverConfig, RtpReceiver};
use super::rtcp::{self, Feedback, NtpClock, RtcpError, SenderInfo};
use super::srtp::{Rewrite, SrtpError, SrtpSession};
use super::stun::StunError;
use crate::media::TrackKind;
use crate::rtp::{ExtensionIds, MediaPacket, RtpError, RtpView};

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

/// One track a publisher sends us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveTrack {
    pub kind: TrackKind,
    /// Negotiated payload type of the media.
    pub payload_type: u8,
    /// Negotiated RTX payload type (RFC 4588), if any: retransmissions may arrive with it.
    pub rtx_payload_type: Option<u8>,
    pub clock_rate: u32,
}

/// The receive side of a publisher's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveParams {
    /// At most one per [`TrackKind`].
    pub tracks: Vec<ReceiveTrack>,
    /// SSRC our receiver reports, NACKs and PLIs are sent from.
    pub rtcp_ssrc: u32,
    pub config: ReceiverConfig,
}

/// An in-order, decrypted RTP packet of a publisher's track (RTX already unwrapped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub track: TrackKind,
    pub packet: Bytes,
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
    /// Sender (and receiver) report interval.
    pub sr_interval: Duration,
    /// Set for a publisher (WHIP): the tracks we receive.
    pub receive: Option<ReceiveParams>,
    /// Our DTLS role (server unless the offer insisted on `a=setup:passive`).
    pub dtls_role: DtlsRole,
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
            receive: None,
            dtls_role: DtlsRole::Server,
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
    #[error("rtp: {0}")]
    Rtp(#[from] RtpError),
    #[error("RTP payload type {0} was not negotiated")]
    UnknownPayloadType(u8),
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
    /// Publisher sessions: media packets received, NACKed sequence numbers sent, PLIs sent,
    /// packets dropped because the consumer did not drain them.
    pub media_received: u64,
    pub nacks_sent: u64,
    pub plis_sent: u64,
    pub received_dropped: u64,
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

/// Most in-order packets queued for the consumer (the shard drains after every datagram).
const MAX_RECEIVED: usize = 4096;
/// Least interval between two PLIs for one track.
const PLI_INTERVAL: Duration = Duration::from_millis(300);

/// The receive side of a publisher's session (boxed: viewers do not pay for it).
struct ReceiveSide {
    rtcp_ssrc: u32,
    tracks: Vec<(ReceiveTrack, RtpReceiver)>,
    received: VecDeque<Received>,
    last_pli: [Option<Instant>; 2],
    scratch: Vec<Bytes>,
}

/// The transport state of one peer (see the module docs).
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
    receive: Option<Box<ReceiveSide>>,
    extensions: ExtensionPolicy,
}

fn track_index(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Audio => 0,
        TrackKind::Video => 1,
    }
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
            dtls: DtlsServer::with_role(
                &params.identity,
                params.remote_fingerprint,
                params.dtls_role,
            ),
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
            receive: params.receive.map(|r| {
                Box::new(ReceiveSide {
                    rtcp_ssrc: r.rtcp_ssrc,
                    tracks: r
                        .tracks
                        .iter()
                        .take(2)
                        .map(|t| (*t, RtpReceiver::new(r.config, t.clock_rate)))
                        .collect(),
                    received: VecDeque::new(),
                    last_pli: [None, None],
                    scratch: Vec::new(),
                })
            }),
        }
    }

    /// Whether this is a publisher's session (it receives media).
    pub fn is_receiving(&self) -> bool {
        self.receive.is_some()
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
                    && self.dtls.role() == DtlsRole::Server
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
            DatagramKind::Rtp => {
                if !self.ice.is_verified(from) {
                    return Err(SessionError::Unverified(kind));
                }
                self.handle_rtp(now, data)
            }
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
            if self.dtls.role() == DtlsRole::Client {
                // The response to this check goes out first (queued above), then our
                // ClientHello; a failure here is fatal to the handshake.
                if let Err(e) = self.dtls.connect(now) {
                    self.close(now, CloseReason::DtlsFailed(e.to_string()));
                    return Err(e.into());
                }
                self.drain_dtls();
            }
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
        // Authenticated SRTCP: the peer has the keys, so it finished the handshake.
        self.dtls.retire(now);
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
                Feedback::SenderReport { ssrc, ntp } => {
                    if let Some(rx) = self.receive.as_deref_mut()
                        && let Some((_, r)) =
                            rx.tracks.iter_mut().find(|(_, r)| r.ssrc() == Some(ssrc))
                    {
                        r.on_sender_report(now, ntp);
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

    /// A publisher's media: decrypt, unwrap RTX, reorder; NACK what is missing. A playback
    /// session receives no media and ignores it without error.
    fn handle_rtp(&mut self, now: Instant, data: &[u8]) -> Result<(), SessionError> {
        let Some(rx) = self.receive.as_deref_mut() else {
            return Ok(());
        };
        let Phase::Established(srtp) = &mut self.phase else {
            return Err(SessionError::Unexpected(DatagramKind::Rtp));
        };
        let plain = srtp.unprotect_rtp(data)?.freeze();
        self.dtls.retire(now);
        let view = RtpView::parse(plain, &ExtensionIds::none())?;
        let pt = view.payload_type;
        let Some(idx) = rx
            .tracks
            .iter()
            .position(|(t, _)| t.payload_type == pt || t.rtx_payload_type == Some(pt))
        else {
            return Err(SessionError::UnknownPayloadType(pt));
        };
        let (track, receiver) = &mut rx.tracks[idx];
        let track = *track;
        let (ssrc, seq, packet) = if pt == track.payload_type {
            (view.ssrc, view.sequence, view.packet.clone())
        } else {
            // RTX before the original stream is known cannot be placed; padding-only RTX
            // (bandwidth probes) carries nothing.
            let (Some(ssrc), Some(&[o0, o1])) = (receiver.ssrc(), view.payload.get(..2)) else {
                return Ok(());
            };
            let osn = u16::from_be_bytes([o0, o1]);
            (ssrc, osn, unwrap_rtx(&view, track.payload_type, osn, ssrc))
        };
        self.stats.media_received += 1;
        rx.scratch.clear();
        receiver.push(now, ssrc, seq, view.timestamp, packet, &mut rx.scratch);
        for p in rx.scratch.drain(..) {
            if rx.received.len() >= MAX_RECEIVED {
                self.stats.received_dropped += 1;
                continue;
            }
            rx.received.push_back(Received {
                track: track.kind,
                packet: p,
            });
        }
        self.send_nacks(now);
        Ok(())
    }

    /// Sends the NACKs that are due, one RR + NACK compound per track.
    fn send_nacks(&mut self, now: Instant) {
        let (Some(rx), Some(to), Phase::Established(srtp)) = (
            self.receive.as_deref_mut(),
            self.ice.remote(),
            &mut self.phase,
        ) else {
            return;
        };
        let mut seqs = Vec::new();
        for (_, r) in &mut rx.tracks {
            seqs.clear();
            r.due_nacks(now, &mut seqs);
            let Some(media_ssrc) = r.ssrc() else { continue };
            if seqs.is_empty() {
                continue;
            }
            let mut plain = Vec::with_capacity(64);
            if rtcp::write_receiver_report(rx.rtcp_ssrc, &[], &mut plain).is_ok()
                && rtcp::write_nack(rx.rtcp_ssrc, media_ssrc, &seqs, &mut plain).is_ok()
                && let Ok(data) = srtp.protect_rtcp(&plain)
            {
                self.stats.nacks_sent += seqs.len() as u64;
                self.transmits.push_back(Transmit { to, data });
            }
        }
    }

    /// Publisher sessions: asks the sender of `track` for a keyframe (PLI), at most once per
    /// [`PLI_INTERVAL`]. Returns whether a PLI went out.
    pub fn request_keyframe(&mut self, now: Instant, track: TrackKind) -> bool {
        let (Some(rx), Some(to), Phase::Established(srtp)) = (
            self.receive.as_deref_mut(),
            self.ice.remote(),
            &mut self.phase,
        ) else {
            return false;
        };
        let last = &mut rx.last_pli[track_index(track)];
        if last.is_some_and(|t| now < t + PLI_INTERVAL) {
            return false;
        }
        let Some(media_ssrc) = rx
            .tracks
            .iter()
            .find(|(t, _)| t.kind == track)
            .and_then(|(_, r)| r.ssrc())
        else {
            return false;
        };
        let mut plain = Vec::with_capacity(32);
        if rtcp::write_receiver_report(rx.rtcp_ssrc, &[], &mut plain).is_ok()
            && rtcp::write_pli(rx.rtcp_ssrc, media_ssrc, &mut plain).is_ok()
            && let Ok(data) = srtp.protect_rtcp(&plain)
        {
            *last = Some(now);
            self.stats.plis_sent += 1;
            self.transmits.push_back(Transmit { to, data });
            return true;
        }
        false
    }

    /// The next in-order packet a publisher sent.
    pub fn poll_received(&mut self) -> Option<Received> {
        self.receive.as_deref_mut()?.received.pop_front()
    }

    fn send_receiver_reports(&mut self, now: Instant) {
        let (Some(rx), Some(to), Phase::Established(srtp)) = (
            self.receive.as_deref_mut(),
            self.ice.remote(),
            &mut self.phase,
        ) else {
            return;
        };
        let blocks: Vec<_> = rx
            .tracks
            .iter_mut()
            .filter_map(|(_, r)| r.report_block(now))
            .collect();
        let mut plain = Vec::with_capacity(80);
        if rtcp::write_receiver_report(rx.rtcp_ssrc, &blocks, &mut plain).is_ok()
            && let Ok(data) = srtp.protect_rtcp(&plain)
        {
            self.transmits.push_back(Transmit { to, data });
        }
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
        let data = srtp.protect_media(pkt, &track.rewrite, &self.extensions)?;
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
        let receive = self
            .receive
            .as_deref()
            .and_then(|rx| rx.tracks.iter().filter_map(|(_, r)| r.poll_timeout()).min());
        [
            Some(self.ice.poll_timeout()),
            self.dtls.poll_timeout(),
            self.dtls_deadline,
            self.next_sr,
            receive,
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
        if let Some(rx) = self.receive.as_deref_mut() {
            for (track, r) in &mut rx.tracks {
                rx.scratch.clear();
                r.handle_timeout(now, &mut rx.scratch);
                for p in rx.scratch.drain(..) {
                    if rx.received.len() < MAX_RECEIVED {
                        rx.received.push_back(Received {
                            track: track.kind,
                            packet: p,
                        });
                    } else {
                        self.stats.received_dropped += 1;
                    }
                }
            }
            self.send_nacks(now);
        }
        if self.next_sr.is_some_and(|t| now >= t) {
            self.next_sr = Some(now + self.sr_interval);
            self.send_sender_reports(now);
            self.send_receiver_reports(now);
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

/// An RTX packet (RFC 4588: OSN, then the original payload) back into the original packet:
/// original payload type, sequence number and SSRC; the header (CSRCs, extensions) is kept,
/// padding dropped.
fn unwrap_rtx(view: &RtpView, payload_type: u8, osn: u16, ssrc: u32) -> Bytes {
    let header_len = view
        .packet
        .len()
        .saturating_sub(usize::from(view.padding) + view.payload.len());
    let mut b = BytesMut::with_capacity(header_len + view.payload.len());
    b.extend_from_slice(view.packet.get(..header_len).unwrap_or_default());
    b.extend_from_slice(view.payload.get(2..).unwrap_or_default());
    if let Some(h) = b.get_mut(..12) {
        h[0] &= !0x20;
        h[1] = (h[1] & 0x80) | (payload_type & 0x7F);
        h[2..4].copy_from_slice(&osn.to_be_bytes());
        h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtx_unwraps_to_the_original_packet() {
        let original = [0x80u8, 96, 0, 9, 0, 0, 0, 5, 0, 0, 0, 1, 0xAA, 0xBB];
        let mut rtx = vec![
            0xA0u8, 97, 1, 0, 0, 0, 0, 5, 0, 0, 0, 2, 0, 9, 0xAA, 0xBB, 0, 2,
        ];
        rtx[0] |= 0; // padding flag set above (0xA0), two padding bytes at the end
        let view = RtpView::parse(Bytes::from(rtx), &ExtensionIds::none()).unwrap();
        assert_eq!(&unwrap_rtx(&view, 96, 9, 1)[..], &original[..]);
    }

    #[test]
    fn session_struct_stays_small() {
        // The inline struct; heap parts (rtc-dtls Endpoint, SRTP contexts) are measured in
        // tests/transport_session.rs and documented in docs/transport.md.
        let size = std::mem::size_of::<ViewerSession>();
        assert!(size <= 2048, "ViewerSession is {size} bytes");
    }
}
