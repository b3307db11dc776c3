//! A shard: many viewer sessions owned by one worker, found by 5-tuple or ICE ufrag.
//!
//! Each session has a media side: a [`MediaSource`] for a viewer (media out) or a
//! [`MediaIngest`] for a WHIP publisher (media in), held as [`SessionMedia`].
//!
//! There is no task per viewer. A shard owns a slab of sessions and the indexes to find them:
//! by remote address (every address ICE verified for a session, plus the address its offer came
//! from), and by local ufrag for the first STUN packet. Datagrams that match nothing create no
//! state, with two exceptions that are both bounded: a miniSDP datagram goes to the server's
//! [`SignalingHandler`], which may register a *pending* session (at most `max_pending` of them);
//! a STUN request whose ufrag names a session parked in the shared [`Lobby`] (sessions signaled
//! over HTTP/WHEP, whose 5-tuple no shard knows yet) moves it into this shard.
//!
//! The shard is driven like a sans-IO core (datagrams and `now` in, [`Transmit`]s out), so it is
//! fuzzed and tested without sockets; [`super::socket`] runs it on a UDP socket.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::amplification::FACTOR;
use super::demux::{DatagramKind, classify};
use super::session::{
    CloseReason, SessionError, SessionEvent, SessionStats, Transmit, ViewerSession,
};
use super::stun::BindingRequest;
use super::timers::{Deadline, TimerQueue};
use crate::media::TrackKind;
use crate::ops::{
    DtlsFailure, EgressKind, IngressSource, Metrics, Protocol, RetransmitOutcome, SessionState,
    SrtpFailure, Stage,
};
use crate::rtp::MediaPacket;

/// Addresses indexed per session (offer source + ICE-verified addresses).
const MAX_ADDRS_PER_SESSION: usize = 5;
/// DTLS datagrams held per shard from addresses no session knows yet (see `early_dtls`).
const MAX_EARLY_DTLS: usize = 64;
/// How long such a datagram is held.
const EARLY_DTLS_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// Largest datagram held (a ClientHello is a few hundred bytes).
const MAX_EARLY_DTLS_LEN: usize = 1500;

/// Most packets a [`MediaSource`] hands over per poll: bounds one viewer's share of a shard
/// iteration. A source that returns exactly this many may have more.
pub const MAX_PER_POLL: usize = 512;

/// Where a session's media comes from: the lead implements it over the hub's subscription.
pub trait MediaSource: Send {
    /// Appends the packets that became available since the last call, in send order, at most
    /// [`MAX_PER_POLL`].
    fn poll_packets(&mut self, out: &mut Vec<MediaPacket>);
    /// The packet of `track` with low sequence bits `seq16` from the retransmission cache.
    fn lookup(&self, track: TrackKind, seq16: u16) -> Option<MediaPacket>;
    /// The viewer asked for a keyframe (PLI/FIR): restart delivery at the latest keyframe from
    /// the GOP cache. Never forwarded upstream.
    fn request_keyframe(&mut self, track: TrackKind);
    /// The sequence-number and timestamp offsets (wrapping) the packets last returned by
    /// [`Self::poll_packets`] must be sent with, per track: non-zero after the source jumped to
    /// a keyframe or switched streams, so that the viewer's RTP streams stay continuous.
    fn offsets(&self, _track: TrackKind) -> (u16, u32) {
        (0, 0)
    }
    /// The stream ("app/stream") this source plays, for session listings.
    fn stream_key(&self) -> Option<&str> {
        None
    }
}

/// Where a publisher's media goes (WHIP ingest): the server implements it over the hub's
/// publisher. Called on the shard's thread; must not block. The stream ends when it is dropped
/// (the session closed, or never connected).
pub trait MediaIngest: Send {
    /// The next in-order, decrypted RTP packet of `track` (sequence gaps are losses the
    /// receiver gave up on).
    fn on_packet(&mut self, now: Instant, track: TrackKind, packet: Bytes);
    /// Whether the video needs a keyframe (at start, after a loss): the shard asks the
    /// publisher with a PLI (rate-limited by the session).
    fn wants_keyframe(&self) -> bool;
    /// The stream this publisher feeds (`app/stream`), for the session list.
    fn stream_key(&self) -> Option<&str> {
        None
    }
}

/// The media side of a session.
pub enum SessionMedia {
    /// A viewer: media flows out of the hub.
    Egress(Box<dyn MediaSource>),
    /// A publisher: media flows into the hub.
    Ingest(Box<dyn MediaIngest>),
}

impl SessionMedia {
    /// The protocol of a session signaled over HTTP, which is all the lobby holds: WHEP plays,
    /// WHIP publishes.
    fn http_protocol(&self) -> Protocol {
        match self {
            SessionMedia::Egress(_) => Protocol::Whep,
            SessionMedia::Ingest(_) => Protocol::Whip,
        }
    }
}

/// Identifies a session within its shard (slot + generation, so a stale id never matches a
/// reused slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId {
    pub shard: u16,
    slot: u32,
    generation: u32,
}

/// Why a session could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("too many pending (signaled, unverified) sessions")]
    PendingFull,
    #[error("shard is full")]
    Full,
    #[error("a session with this ufrag already exists")]
    DuplicateUfrag,
    #[error("no such session")]
    NoSession,
    #[error("anti-amplification limit")]
    AmplificationLimit,
}

/// Handles miniSDP datagrams; supplied by the server (signaling lives in `crate::signal`).
pub trait SignalingHandler: Send {
    /// A datagram whose first byte is `0xFF` arrived from `from`. The handler may register a
    /// session and answer through `shard`.
    fn handle(&mut self, now: Instant, from: SocketAddr, data: &[u8], shard: &mut Registrar<'_>);
}

/// A session waiting in the [`Lobby`] with its media side.
type Parked = (ViewerSession, SessionMedia);

/// Sessions signaled outside the media port (WHEP), waiting for their first STUN packet on
/// whichever shard the client's 5-tuple lands. Bounded.
pub struct Lobby {
    sessions: HashMap<Box<[u8]>, Parked>,
    capacity: usize,
    /// Parked sessions count as `pending` WHEP (viewers) or WHIP (publishers) sessions.
    metrics: Option<Arc<Metrics>>,
}

impl Lobby {
    pub fn new(capacity: usize) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            sessions: HashMap::new(),
            capacity,
            metrics: None,
        }))
    }

    /// Records parked sessions in `metrics` (`state="pending"`, `protocol="whep"` for viewers,
    /// `"whip"` for publishers).
    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    fn count_closed(metrics: Option<&Metrics>, media: &SessionMedia) {
        if let Some(m) = metrics {
            m.session_closed(media.http_protocol(), SessionState::Pending);
        }
    }

    /// Parks a viewer's session until its first STUN request arrives.
    pub fn insert(
        &mut self,
        session: ViewerSession,
        source: Box<dyn MediaSource>,
    ) -> Result<(), ShardError> {
        self.park(session, SessionMedia::Egress(source))
    }

    /// Parks a publisher's (WHIP) session until its first STUN request arrives.
    pub fn insert_ingest(
        &mut self,
        session: ViewerSession,
        ingest: Box<dyn MediaIngest>,
    ) -> Result<(), ShardError> {
        self.park(session, SessionMedia::Ingest(ingest))
    }

    fn park(&mut self, session: ViewerSession, media: SessionMedia) -> Result<(), ShardError> {
        if self.sessions.len() >= self.capacity {
            return Err(ShardError::PendingFull);
        }
        let key: Box<[u8]> = session.local_ufrag().into();
        if self.sessions.contains_key(&key) {
            return Err(ShardError::DuplicateUfrag);
        }
        if let Some(m) = &self.metrics {
            m.session_opened(media.http_protocol(), SessionState::Pending);
        }
        self.sessions.insert(key, (session, media));
        Ok(())
    }

    /// Drops parked sessions whose ICE deadline passed.
    pub fn expire(&mut self, now: Instant) {
        let metrics = self.metrics.as_deref();
        self.sessions.retain(|_, (s, media)| {
            s.handle_timeout(now);
            let keep = !s.is_closed();
            if !keep {
                Self::count_closed(metrics, media);
            }
            keep
        });
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Drops a parked session (its signaling was cancelled). `true` if it was here.
    pub fn remove(&mut self, ufrag: &[u8]) -> bool {
        match self.sessions.remove(ufrag) {
            Some((_, media)) => {
                Self::count_closed(self.metrics.as_deref(), &media);
                true
            }
            None => false,
        }
    }

    /// Takes a parked session out without counting it closed (it moves into a shard).
    fn take(&mut self, ufrag: &[u8]) -> Option<Parked> {
        self.sessions.remove(ufrag)
    }
}

/// Limits of one shard.
#[derive(Debug, Clone, Copy)]
pub struct ShardConfig {
    pub id: u16,
    pub max_sessions: usize,
    pub max_pending: usize,
}

impl ShardConfig {
    pub fn new(id: u16) -> Self {
        Self {
            id,
            max_sessions: 20_000,
            max_pending: 1024,
        }
    }
}

/// Counters of one shard: plain integers, owned by the shard thread. The driver hands their
/// growth to [`Metrics`] once per loop iteration ([`Shard::flush_metrics`]), never per packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    pub datagrams: u64,
    /// Bytes of all datagrams received.
    pub bytes_received: u64,
    pub junk: u64,
    pub unmatched: u64,
    pub session_errors: u64,
    pub media_packets_sent: u64,
    pub media_bytes_sent: u64,
    pub retransmits_sent: u64,
    pub retransmit_bytes_sent: u64,
    pub retransmit_misses: u64,
    /// RTCP datagrams queued (sender reports, BYE).
    pub rtcp_sent: u64,
    pub rtcp_bytes_sent: u64,
    /// STUN, DTLS and miniSDP datagrams queued.
    pub control_sent: u64,
    pub control_bytes_sent: u64,
    /// NACK messages from players, and the sequence numbers they asked for.
    pub nacks_received: u64,
    pub nacked_seqs: u64,
    /// PLI/FIR from players.
    pub keyframe_requests: u64,
    /// PLIs sent to publishers (WHIP ingest) that need a keyframe.
    pub plis_sent: u64,
    pub srtp_protect_failures: u64,
    pub srtp_unprotect_failures: u64,
    /// Incoming SRTP/SRTCP packets rejected as replays (not counted as unprotect failures).
    pub srtp_replays: u64,
    /// In-order media packets from WHIP publishers handed to their ingest, and their bytes.
    pub ingest_packets: u64,
    pub ingest_bytes: u64,
    pub sessions_closed: u64,
    /// Drain notices (miniSDP stop packets) sent when the drain started.
    pub drain_notices_sent: u64,
}

/// One session as the admin API lists it, published by its shard about once a second.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSnapshot {
    /// The session's local ICE ufrag (what a kick names).
    pub id: String,
    pub protocol: Protocol,
    pub state: SessionState,
    pub stream_key: Option<String>,
    pub remote: Option<SocketAddr>,
    /// Since the offer arrived.
    pub age: Duration,
    pub stats: SessionStats,
    /// Media bytes sent per second × 8 over the last snapshot interval.
    pub egress_bps: u64,
}

struct Entry {
    generation: u32,
    session: ViewerSession,
    media: SessionMedia,
    addrs: Vec<SocketAddr>,
    ufrag: Box<[u8]>,
    established: bool,
    protocol: Protocol,
    /// Whether an answer was queued through `Registrar::send_via` (first-frame stage).
    answered: bool,
    /// Whether a packet starting a keyframe was sent (first-frame stage).
    keyframe_sent: bool,
    /// `bytes_sent` and time at the last snapshot (egress rate).
    snap: (u64, Instant),
    /// The deadline filed for this session in the shard's [`TimerQueue`] (its
    /// `poll_timeout` when last asked); older entries for the slot are stale.
    armed: Option<Instant>,
    /// The server is draining: the session plays on until the deadline, counted as
    /// `draining`.
    draining: bool,
    /// What to send the player when the drain starts (a miniSDP stop packet naming this
    /// session), if its signaling has a way to say "move elsewhere" (see
    /// [`Registrar::set_drain_notice`]).
    drain_notice: Option<Box<[u8]>>,
}

impl Entry {
    fn state(&self) -> SessionState {
        if self.draining {
            SessionState::Draining
        } else if self.established {
            SessionState::Connected
        } else {
            SessionState::Pending
        }
    }

    fn observe(&self, metrics: Option<&Metrics>, stage: Stage, now: Instant) {
        if let Some(m) = metrics {
            m.observe_stage(
                stage,
                now.saturating_duration_since(self.session.created_at()),
            );
        }
    }
}

/// The sessions of one worker.
pub struct Shard {
    config: ShardConfig,
    slots: Vec<Option<Entry>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    by_addr: HashMap<SocketAddr, u32>,
    by_ufrag: HashMap<Box<[u8]>, u32>,
    pending: usize,
    signaling: Option<Box<dyn SignalingHandler>>,
    lobby: Option<Arc<Mutex<Lobby>>>,
    out: Vec<Transmit>,
    events: VecDeque<(SessionId, SessionEvent)>,
    media: Vec<MediaPacket>,
    /// Where to learn whether any source can have new packets (see [`Shard::set_media_epoch`]);
    /// `None`: visit every source on every pump.
    media_epoch: Option<fn() -> u64>,
    /// The epoch at the last full pump.
    pumped_epoch: u64,
    /// [`Self::begin_drain`] was called.
    draining: bool,
    /// A source may have packets regardless of the epoch: one was cut off at
    /// [`MAX_PER_POLL`], asked for a keyframe, or just became established.
    pump_again: bool,
    /// Session deadlines: found without asking every session on every wake.
    timers: TimerQueue,
    /// Slots due in the current [`Shard::handle_timeout`] (kept for its allocation).
    due: Vec<u32>,
    stats: ShardStats,
    metrics: Option<Arc<Metrics>>,
    /// `stats` as last handed to `metrics`.
    flushed: ShardStats,
    /// Offer times of sessions whose first answer is in the current send batch.
    answers_queued: Vec<Instant>,
    /// DTLS from addresses no session knows yet, held briefly. A WHEP client sends its
    /// ClientHello right behind its first STUN check and the two may be handled in either
    /// order; dropping the ClientHello would cost a DTLS retransmission (1 s). Bounded in
    /// count, size and age, so junk cannot grow it.
    early_dtls: std::collections::VecDeque<(Instant, SocketAddr, Box<[u8]>)>,
}

/// What a [`SignalingHandler`] may do to the shard while handling one datagram.
pub struct Registrar<'a> {
    shard: &'a mut Shard,
    now: Instant,
    from: SocketAddr,
    received: usize,
    reply_budget: u64,
}

impl Registrar<'_> {
    /// The shard's id, to be embedded in the ufrags it allocates (see [`ufrag_for_shard`]).
    pub fn shard_id(&self) -> u16 {
        self.shard.config.id
    }

    /// Looks up an existing session by its local ufrag (retransmitted offers, stop packets).
    pub fn find(&self, ufrag: &[u8]) -> Option<SessionId> {
        let slot = *self.shard.by_ufrag.get(ufrag)?;
        Some(self.shard.id_of(slot))
    }

    /// Registers a pending session signaled by the datagram being handled, and credits it
    /// with that datagram's bytes for anti-amplification.
    pub fn register(
        &mut self,
        mut session: ViewerSession,
        source: Box<dyn MediaSource>,
    ) -> Result<SessionId, ShardError> {
        session.note_unverified_received(self.from, self.received);
        self.shard.insert(session, source, Some(self.from))
    }

    /// Sends `data` (the answer) to the offer's address through `id`'s anti-amplification budget.
    pub fn send_via(&mut self, id: SessionId, data: BytesMut) -> Result<(), ShardError> {
        let from = self.from;
        let entry = self.shard.entry_mut(id).ok_or(ShardError::NoSession)?;
        entry
            .session
            .queue_unverified_send(from, data)
            .map_err(|_| ShardError::AmplificationLimit)?;
        let first_answer = (!entry.answered).then(|| entry.session.created_at());
        entry.answered = true;
        if let Some(offered) = first_answer
            && self.shard.metrics.is_some()
            && self.shard.answers_queued.len() < 4096
        {
            self.shard.answers_queued.push(offered);
        }
        self.shard.collect(id.slot, self.now);
        Ok(())
    }

    /// Sends a reply that belongs to no session (an error status): at most 3× the datagram.
    pub fn reply(&mut self, data: BytesMut) -> Result<(), ShardError> {
        let len = data.len() as u64;
        if len > self.reply_budget {
            return Err(ShardError::AmplificationLimit);
        }
        self.reply_budget -= len;
        // Answers sent through `send_via` are counted by `collect`.
        self.shard.stats.control_sent += 1;
        self.shard.stats.control_bytes_sent += len;
        self.shard.out.push(Transmit {
            to: self.from,
            data,
        });
        Ok(())
    }

    /// Keeps `notice` (a stop packet the player understands) to send `id`'s player when the
    /// server starts draining, so it can re-pull from another edge while this one still plays.
    pub fn set_drain_notice(&mut self, id: SessionId, notice: &[u8]) {
        if let Some(e) = self.shard.entry_mut(id) {
            e.drain_notice = Some(notice.into());
        }
    }

    /// Credits bytes of a retransmitted offer to an existing session.
    pub fn note_received(&mut self, id: SessionId) {
        let (from, n) = (self.from, self.received);
        if let Some(e) = self.shard.entry_mut(id) {
            e.session.note_unverified_received(from, n);
        }
    }

    /// Ends a session (miniSDP stop packet).
    pub fn close(&mut self, id: SessionId, now: Instant) {
        self.shard.close(id, now);
    }
}

/// A local ufrag that routes to `shard`: four hex digits of shard id, then `random`.
pub fn ufrag_for_shard(shard: u16, random: &str) -> String {
    format!("{shard:04x}{random}")
}

impl Shard {
    pub fn new(config: ShardConfig) -> Self {
        Self {
            config,
            slots: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            pending: 0,
            signaling: None,
            lobby: None,
            out: Vec::new(),
            events: VecDeque::new(),
            media: Vec::new(),
            media_epoch: None,
            pumped_epoch: 0,
            pump_again: false,
            draining: false,
            timers: TimerQueue::new(),
            due: Vec::new(),
            stats: ShardStats::default(),
            metrics: None,
            flushed: ShardStats::default(),
            answers_queued: Vec::new(),
            early_dtls: std::collections::VecDeque::new(),
        }
    }

    /// Lets [`Self::pump_media`] skip its pass over the sessions while `epoch()` has not moved
    /// since the last pass: the source of every session must make each new packet (and its
    /// end) visible *before* `epoch()` changes. The hub's
    /// [`media_epoch`](crate::hub::media_epoch) is such a function.
    pub fn set_media_epoch(&mut self, epoch: fn() -> u64) {
        self.media_epoch = Some(epoch);
        self.pump_again = true;
    }

    /// Records session lifecycles, stage timings and (through [`Self::flush_metrics`]) traffic
    /// in `metrics`.
    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    /// The driver has sent the batch taken by [`Self::drain_transmits`] at `now`: times the
    /// `answer_sent` stage of the miniSDP answers it held.
    pub fn transmits_sent(&mut self, now: Instant) {
        if let Some(m) = &self.metrics {
            for offered in self.answers_queued.drain(..) {
                m.observe_stage(Stage::AnswerSent, now.saturating_duration_since(offered));
            }
        }
        self.answers_queued.clear();
    }

    /// Adds the growth of [`ShardStats`] since the previous call to the metrics: a handful of
    /// relaxed atomic adds, called once per driver iteration.
    pub fn flush_metrics(&mut self) {
        let Some(m) = &self.metrics else { return };
        let (s, f) = (self.stats, self.flushed);
        if s == f {
            return;
        }
        let d = |a: u64, b: u64| a.wrapping_sub(b);
        m.ingress(
            IngressSource::Player,
            d(s.datagrams, f.datagrams),
            d(s.bytes_received, f.bytes_received),
        );
        m.ingress(
            IngressSource::Whip,
            d(s.ingest_packets, f.ingest_packets),
            d(s.ingest_bytes, f.ingest_bytes),
        );
        m.egress(
            EgressKind::Media,
            d(s.media_packets_sent, f.media_packets_sent),
            d(s.media_bytes_sent, f.media_bytes_sent),
        );
        m.egress(
            EgressKind::Retransmit,
            d(s.retransmits_sent, f.retransmits_sent),
            d(s.retransmit_bytes_sent, f.retransmit_bytes_sent),
        );
        m.egress(
            EgressKind::Rtcp,
            d(s.rtcp_sent, f.rtcp_sent),
            d(s.rtcp_bytes_sent, f.rtcp_bytes_sent),
        );
        m.egress(
            EgressKind::Control,
            d(s.control_sent, f.control_sent),
            d(s.control_bytes_sent, f.control_bytes_sent),
        );
        m.nacks_received(
            d(s.nacks_received, f.nacks_received),
            d(s.nacked_seqs, f.nacked_seqs),
        );
        m.retransmits(
            RetransmitOutcome::Sent,
            d(s.retransmits_sent, f.retransmits_sent),
        );
        m.retransmits(
            RetransmitOutcome::NotCached,
            d(s.retransmit_misses, f.retransmit_misses),
        );
        m.plis_received(d(s.keyframe_requests, f.keyframe_requests));
        m.plis_sent(d(s.plis_sent, f.plis_sent));
        m.srtp_failures(
            SrtpFailure::Protect,
            d(s.srtp_protect_failures, f.srtp_protect_failures),
        );
        m.srtp_failures(
            SrtpFailure::Unprotect,
            d(s.srtp_unprotect_failures, f.srtp_unprotect_failures),
        );
        m.srtp_failures(SrtpFailure::Replay, d(s.srtp_replays, f.srtp_replays));
        self.flushed = s;
    }

    /// Appends a snapshot of every session to `out` (the admin API's session list). Also
    /// restarts each session's egress-rate interval.
    pub fn snapshot(&mut self, now: Instant, out: &mut Vec<SessionSnapshot>) {
        out.reserve(self.len());
        for e in self.slots.iter_mut().flatten() {
            let stats = e.session.stats();
            let (bytes, at) = e.snap;
            let secs = now.saturating_duration_since(at).as_secs_f64();
            let egress_bps = if secs > 0.0 {
                (stats.bytes_sent.saturating_sub(bytes) as f64 * 8.0 / secs) as u64
            } else {
                0
            };
            e.snap = (stats.bytes_sent, now);
            out.push(SessionSnapshot {
                id: String::from_utf8_lossy(&e.ufrag).into_owned(),
                protocol: e.protocol,
                state: e.state(),
                stream_key: match &e.media {
                    SessionMedia::Egress(source) => source.stream_key().map(str::to_owned),
                    SessionMedia::Ingest(ingest) => ingest.stream_key().map(str::to_owned),
                },
                remote: e.session.remote(),
                age: now.saturating_duration_since(e.session.created_at()),
                stats,
                egress_bps,
            });
        }
    }

    /// Installs the miniSDP handler.
    pub fn set_signaling(&mut self, handler: Box<dyn SignalingHandler>) {
        self.signaling = Some(handler);
    }

    /// Shares the lobby of HTTP-signaled sessions.
    pub fn set_lobby(&mut self, lobby: Arc<Mutex<Lobby>>) {
        self.lobby = Some(lobby);
    }

    pub fn id(&self) -> u16 {
        self.config.id
    }

    pub fn stats(&self) -> ShardStats {
        self.stats
    }

    /// Live sessions (pending included).
    pub fn len(&self) -> usize {
        self.by_ufrag.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ufrag.is_empty()
    }

    /// Pending sessions (registered, DTLS not yet complete).
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Size of the address index (bounded by sessions × addresses per session).
    pub fn indexed_addresses(&self) -> usize {
        self.by_addr.len()
    }

    fn id_of(&self, slot: u32) -> SessionId {
        SessionId {
            shard: self.config.id,
            slot,
            generation: self.generations.get(slot as usize).copied().unwrap_or(0),
        }
    }

    fn entry_mut(&mut self, id: SessionId) -> Option<&mut Entry> {
        if id.shard != self.config.id {
            return None;
        }
        self.slots
            .get_mut(id.slot as usize)?
            .as_mut()
            .filter(|e| e.generation == id.generation)
    }

    /// Registers a pending session directly (tests, or a server that routes WHEP itself).
    /// `signaled_from` is indexed so that DTLS sent right behind the offer reaches the session.
    pub fn insert(
        &mut self,
        session: ViewerSession,
        source: Box<dyn MediaSource>,
        signaled_from: Option<SocketAddr>,
    ) -> Result<SessionId, ShardError> {
        let id = self.insert_as(
            Protocol::MiniSdp,
            session,
            SessionMedia::Egress(source),
            signaled_from,
        )?;
        if let Some(m) = &self.metrics {
            m.session_opened(Protocol::MiniSdp, SessionState::Pending);
        }
        Ok(id)
    }

    /// Registers a pending session with either media side, signaled on the media port.
    pub fn insert_media(
        &mut self,
        session: ViewerSession,
        media: SessionMedia,
        signaled_from: Option<SocketAddr>,
    ) -> Result<SessionId, ShardError> {
        let id = self.insert_as(Protocol::MiniSdp, session, media, signaled_from)?;
        if let Some(m) = &self.metrics {
            m.session_opened(Protocol::MiniSdp, SessionState::Pending);
        }
        Ok(id)
    }

    /// Registers a session signaled over `protocol` (not counted as opened: the caller does).
    fn insert_as(
        &mut self,
        protocol: Protocol,
        session: ViewerSession,
        media: SessionMedia,
        signaled_from: Option<SocketAddr>,
    ) -> Result<SessionId, ShardError> {
        if self.pending >= self.config.max_pending {
            return Err(ShardError::PendingFull);
        }
        if self.len() >= self.config.max_sessions {
            return Err(ShardError::Full);
        }
        let ufrag: Box<[u8]> = session.local_ufrag().into();
        if self.by_ufrag.contains_key(&ufrag) {
            return Err(ShardError::DuplicateUfrag);
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.generations[slot as usize];
        let mut addrs = Vec::new();
        if let Some(a) = signaled_from
            && !self.by_addr.contains_key(&a)
        {
            self.by_addr.insert(a, slot);
            addrs.push(a);
        }
        self.by_ufrag.insert(ufrag.clone(), slot);
        let snap = (0, session.created_at());
        self.slots[slot as usize] = Some(Entry {
            generation,
            session,
            media,
            addrs,
            ufrag,
            established: false,
            protocol,
            answered: false,
            keyframe_sent: false,
            snap,
            armed: None,
            draining: false,
            drain_notice: None,
        });
        self.pending += 1;
        if self.draining {
            // No notice is registered yet, so nothing is sent: only the state is set.
            self.mark_draining(slot, snap.1);
        }
        self.rearm(slot);
        Ok(SessionId {
            shard: self.config.id,
            slot,
            generation,
        })
    }

    /// Feeds one datagram received on the media port.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.stats.datagrams += 1;
        self.stats.bytes_received += data.len() as u64;
        let kind = classify(data);
        if kind == DatagramKind::Junk {
            self.stats.junk += 1;
            return;
        }
        if kind == DatagramKind::MiniSdp {
            self.handle_signaling(now, from, data);
            return;
        }
        let slot = match self.by_addr.get(&from) {
            Some(&s) => Some(s),
            None if kind == DatagramKind::Stun => match self.slot_for_stun(data) {
                Some(s) => Some(s),
                None => {
                    // Already handled (adopted from the lobby) or unknown.
                    if let Some(s) = self.adopt_from_lobby(now, from, data) {
                        self.index_verified(s, from);
                        self.replay_early_dtls(s, from, now);
                        self.collect(s, now);
                    } else {
                        self.stats.unmatched += 1;
                    }
                    return;
                }
            },
            None if kind == DatagramKind::Dtls => {
                self.hold_early_dtls(now, from, data);
                return;
            }
            None => None,
        };
        let Some(slot) = slot else {
            self.stats.unmatched += 1;
            return;
        };
        let Some(entry) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            self.stats.unmatched += 1;
            return;
        };
        match entry.session.handle_datagram(now, from, data) {
            Ok(()) => {}
            Err(SessionError::Srtp(e)) => {
                self.stats.session_errors += 1;
                if e.is_replay() {
                    self.stats.srtp_replays += 1;
                } else {
                    self.stats.srtp_unprotect_failures += 1;
                }
            }
            Err(_) => self.stats.session_errors += 1,
        }
        self.index_verified(slot, from);
        if kind == DatagramKind::Stun {
            self.replay_early_dtls(slot, from, now);
        }
        self.collect(slot, now);
    }

    fn hold_early_dtls(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.stats.unmatched += 1;
        while self
            .early_dtls
            .front()
            .is_some_and(|(at, _, _)| now.saturating_duration_since(*at) > EARLY_DTLS_TTL)
        {
            self.early_dtls.pop_front();
        }
        if data.len() <= MAX_EARLY_DTLS_LEN {
            if self.early_dtls.len() >= MAX_EARLY_DTLS {
                self.early_dtls.pop_front();
            }
            self.early_dtls.push_back((now, from, data.into()));
        }
    }

    /// Feeds `slot` the DTLS held from `from`, once ICE verified that address.
    fn replay_early_dtls(&mut self, slot: u32, from: SocketAddr, now: Instant) {
        if self.early_dtls.is_empty() || self.by_addr.get(&from).is_none_or(|&s| s != slot) {
            return;
        }
        let mut held = Vec::new();
        self.early_dtls.retain(|(at, addr, data)| {
            let mine = *addr == from && now.saturating_duration_since(*at) <= EARLY_DTLS_TTL;
            if mine {
                held.push(data.clone());
            }
            !mine && *addr != from
        });
        if let Some(entry) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
            for d in held {
                if entry.session.handle_datagram(now, from, &d).is_err() {
                    self.stats.session_errors += 1;
                }
            }
        }
    }

    /// Indexes `from` for `slot` once ICE verified it.
    fn index_verified(&mut self, slot: u32, from: SocketAddr) {
        let Some(entry) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        // Index the address once ICE verified it.
        if entry.session.is_verified(from)
            && !entry.addrs.contains(&from)
            && entry.addrs.len() < MAX_ADDRS_PER_SESSION
            && !self.by_addr.contains_key(&from)
        {
            entry.addrs.push(from);
            self.by_addr.insert(from, slot);
        }
    }

    fn slot_for_stun(&self, data: &[u8]) -> Option<u32> {
        let req = BindingRequest::parse(data).ok()?;
        self.by_ufrag.get(req.local_ufrag()).copied()
    }

    /// Moves a lobby session whose ufrag `data` names into this shard, but only if the request
    /// authenticates: an unauthenticated packet must not pull a session onto the wrong shard.
    fn adopt_from_lobby(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> Option<u32> {
        if self.pending >= self.config.max_pending || self.len() >= self.config.max_sessions {
            return None;
        }
        let req = BindingRequest::parse(data).ok()?;
        let ufrag = req.local_ufrag();
        let lobby = self.lobby.clone()?;
        let mut lobby = lobby.lock().ok()?;
        let (mut session, media) = lobby.take(ufrag)?;
        if session.handle_datagram(now, from, data).is_err() || !session.is_verified(from) {
            let key: Box<[u8]> = ufrag.into();
            lobby.sessions.insert(key, (session, media));
            return None;
        }
        drop(lobby);
        // Counted as opened when it was parked; a full shard drops it.
        let protocol = media.http_protocol();
        match self.insert_as(protocol, session, media, None) {
            Ok(id) => Some(id.slot),
            Err(_) => {
                if let Some(m) = &self.metrics {
                    m.session_closed(protocol, SessionState::Pending);
                }
                None
            }
        }
    }

    fn handle_signaling(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let Some(mut handler) = self.signaling.take() else {
            self.stats.unmatched += 1;
            return;
        };
        let mut reg = Registrar {
            shard: self,
            now,
            from,
            received: data.len(),
            reply_budget: (data.len() as u64).saturating_mul(FACTOR),
        };
        handler.handle(now, from, data, &mut reg);
        self.signaling = Some(handler);
    }

    /// Moves a session's transmits into the shard's batch and handles its events.
    fn collect(&mut self, slot: u32, now: Instant) {
        let shard_id = self.config.id;
        let Some(entry) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if let SessionMedia::Ingest(ingest) = &mut entry.media {
            while let Some(r) = entry.session.poll_received() {
                self.stats.ingest_packets += 1;
                self.stats.ingest_bytes += r.packet.len() as u64;
                ingest.on_packet(now, r.track, r.packet);
            }
            if ingest.wants_keyframe() && entry.session.request_keyframe(now, TrackKind::Video) {
                self.stats.plis_sent += 1;
            }
        }
        let stats = &mut self.stats;
        let mut push = |out: &mut Vec<Transmit>, t: Transmit| {
            if classify(&t.data) == DatagramKind::Rtcp {
                stats.rtcp_sent += 1;
                stats.rtcp_bytes_sent += t.data.len() as u64;
            } else {
                stats.control_sent += 1;
                stats.control_bytes_sent += t.data.len() as u64;
            }
            out.push(t);
        };
        while let Some(t) = entry.session.poll_transmit() {
            push(&mut self.out, t);
        }
        let metrics = self.metrics.as_deref();
        let id = SessionId {
            shard: shard_id,
            slot,
            generation: entry.generation,
        };
        let mut closed = false;
        while let Some(ev) = entry.session.poll_event() {
            match &ev {
                SessionEvent::Nack { track, seqs } => {
                    self.stats.nacks_received += 1;
                    self.stats.nacked_seqs += seqs.len() as u64;
                    let SessionMedia::Egress(source) = &entry.media else {
                        continue;
                    };
                    for &s in seqs {
                        match source.lookup(*track, s) {
                            Some(pkt) => match entry.session.send_retransmit(now, &pkt) {
                                Ok(Some(t)) => {
                                    self.stats.retransmits_sent += 1;
                                    self.stats.retransmit_bytes_sent += t.data.len() as u64;
                                    self.out.push(t);
                                }
                                Ok(None) => {}
                                Err(_) => self.stats.srtp_protect_failures += 1,
                            },
                            None => self.stats.retransmit_misses += 1,
                        }
                    }
                    continue;
                }
                SessionEvent::KeyframeRequest { track } => {
                    self.stats.keyframe_requests += 1;
                    if let SessionMedia::Egress(source) = &mut entry.media {
                        source.request_keyframe(*track);
                        self.pump_again = true;
                    }
                    continue;
                }
                SessionEvent::IceConnected { .. } => {
                    entry.observe(metrics, Stage::StunReceived, now);
                }
                SessionEvent::DtlsConnected => {
                    entry.established = true;
                    self.pump_again = true;
                    self.pending = self.pending.saturating_sub(1);
                    entry.observe(metrics, Stage::DtlsDone, now);
                    // A draining session stays counted as draining.
                    if let Some(m) = metrics.filter(|_| !entry.draining) {
                        m.session_state_changed(
                            entry.protocol,
                            SessionState::Pending,
                            SessionState::Connected,
                        );
                    }
                }
                SessionEvent::Closed(reason) => {
                    closed = true;
                    if let Some(m) = metrics {
                        match reason {
                            CloseReason::DtlsTimeout => m.dtls_failure(DtlsFailure::Timeout),
                            CloseReason::FingerprintMismatch | CloseReason::DtlsFailed(_) => {
                                m.dtls_failure(DtlsFailure::Handshake)
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
            if self.events.len() < 4096 {
                self.events.push_back((id, ev));
            }
        }
        if closed {
            // Flush the session's last words (BYE, close_notify) before dropping it.
            while let Some(t) = entry.session.poll_transmit() {
                if classify(&t.data) == DatagramKind::Rtcp {
                    self.stats.rtcp_sent += 1;
                    self.stats.rtcp_bytes_sent += t.data.len() as u64;
                } else {
                    self.stats.control_sent += 1;
                    self.stats.control_bytes_sent += t.data.len() as u64;
                }
                self.out.push(t);
            }
            self.remove(slot);
        } else {
            self.rearm(slot);
        }
    }

    /// Files `slot`'s current deadline if it changed (after anything that may move it: a
    /// datagram, a timeout, a close, signaling).
    fn rearm(&mut self, slot: u32) {
        let Some(e) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        let next = e.session.poll_timeout();
        if next == e.armed {
            return;
        }
        e.armed = next;
        if let Some(at) = next {
            self.timers.push(Deadline {
                at,
                slot,
                generation: e.generation,
            });
        }
        if self.timers.needs_rebuild(self.len()) {
            let live = self.slots.iter().enumerate().filter_map(|(slot, e)| {
                let e = e.as_ref()?;
                Some(Deadline {
                    at: e.armed?,
                    slot: slot as u32,
                    generation: e.generation,
                })
            });
            self.timers.rebuild(live);
        }
    }

    fn remove(&mut self, slot: u32) {
        let Some(entry) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        for a in &entry.addrs {
            if self.by_addr.get(a) == Some(&slot) {
                self.by_addr.remove(a);
            }
        }
        self.by_ufrag.remove(&entry.ufrag);
        if !entry.established {
            self.pending = self.pending.saturating_sub(1);
        }
        if let Some(m) = &self.metrics {
            m.session_closed(entry.protocol, entry.state());
        }
        if let Some(g) = self.generations.get_mut(slot as usize) {
            *g = g.wrapping_add(1);
        }
        self.free.push(slot);
        self.stats.sessions_closed += 1;
    }

    /// Closes a session (sends BYE/close_notify when established).
    pub fn close(&mut self, id: SessionId, now: Instant) {
        if let Some(e) = self.entry_mut(id) {
            e.session.close(now, super::session::CloseReason::Local);
            self.collect(id.slot, now);
        }
    }

    /// The drain has started: every session is counted as `draining` from now on and keeps
    /// playing until the deadline, and every player with a drain notice gets it now, so it can
    /// re-pull from another edge before this one stops (make-before-break). Sessions this
    /// shard adopts later are draining from the start. Idempotent.
    pub fn begin_drain(&mut self, now: Instant) {
        if self.draining {
            return;
        }
        self.draining = true;
        for slot in 0..self.slots.len() as u32 {
            self.mark_draining(slot, now);
        }
    }

    fn mark_draining(&mut self, slot: u32, now: Instant) {
        let Some(e) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if e.draining {
            return;
        }
        let before = e.state();
        e.draining = true;
        if let Some(m) = &self.metrics {
            m.session_state_changed(e.protocol, before, SessionState::Draining);
        }
        let Some(notice) = e.drain_notice.take() else {
            return;
        };
        let data = BytesMut::from(&notice[..]);
        if let Some(to) = e.session.remote() {
            self.stats.control_sent += 1;
            self.stats.control_bytes_sent += data.len() as u64;
            self.stats.drain_notices_sent += 1;
            self.out.push(Transmit { to, data });
        } else if let Some(&to) = e.addrs.first() {
            // Not verified yet: the offer's address, within the anti-amplification budget.
            if e.session.queue_unverified_send(to, data).is_ok() {
                self.stats.drain_notices_sent += 1;
            }
            self.collect(slot, now);
        }
    }

    /// Whether [`Self::begin_drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Closes every session (shutdown): established viewers get RTCP BYE and close_notify, so
    /// players learn at once instead of by timeout and can re-pull from another edge.
    pub fn close_all(&mut self, now: Instant) {
        for slot in 0..self.slots.len() as u32 {
            if self.slots[slot as usize].is_some() {
                let id = self.id_of(slot);
                self.close(id, now);
            }
        }
    }

    /// Closes the session with local ufrag `ufrag`, if this shard has it (WHEP DELETE, admin
    /// kick). `true` if it was here.
    pub fn close_ufrag(&mut self, now: Instant, ufrag: &[u8]) -> bool {
        match self.by_ufrag.get(ufrag).copied() {
            Some(slot) => {
                let id = self.id_of(slot);
                self.close(id, now);
                true
            }
            None => false,
        }
    }

    /// Runs the timers of the sessions that are due: only those, found in the deadline queue.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        while let Some(d) = self.timers.pop_due(now) {
            let live = self
                .slots
                .get_mut(d.slot as usize)
                .and_then(Option::as_mut)
                .filter(|e| e.generation == d.generation && e.armed == Some(d.at));
            if let Some(e) = live {
                // Disarmed, so that `collect` files whatever the session wants next, even the
                // same instant again (then it runs on the next wake, not in this loop).
                e.armed = None;
                due.push(d.slot);
            }
        }
        for &slot in &due {
            if let Some(e) = self.slots[slot as usize].as_mut() {
                e.session.handle_timeout(now);
            }
            self.collect(slot, now);
        }
        due.clear();
        self.due = due;
    }

    /// The earliest session deadline (possibly one that no longer applies: waking for it once
    /// is harmless).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek()
    }

    /// Pulls new packets from every established session's source and protects them.
    pub fn pump_media(&mut self, now: Instant) {
        if let Some(epoch) = self.media_epoch {
            let current = epoch();
            let again = std::mem::take(&mut self.pump_again);
            if current == self.pumped_epoch && !again {
                return;
            }
            // Read before the pass: whatever arrives during it moves the epoch past this value.
            self.pumped_epoch = current;
        }
        for slot in 0..self.slots.len() {
            let Some(e) = self.slots[slot].as_mut() else {
                continue;
            };
            let SessionMedia::Egress(source) = &mut e.media else {
                continue;
            };
            if !e.established {
                continue;
            }
            self.media.clear();
            source.poll_packets(&mut self.media);
            if self.media.is_empty() {
                continue;
            }
            if self.media.len() >= MAX_PER_POLL {
                self.pump_again = true;
            }
            for track in [TrackKind::Audio, TrackKind::Video] {
                let (seq, ts) = source.offsets(track);
                e.session.set_offsets(track, seq, ts);
            }
            for pkt in &self.media {
                match e.session.send_media(now, pkt) {
                    Ok(Some(t)) => {
                        self.stats.media_packets_sent += 1;
                        self.stats.media_bytes_sent += t.data.len() as u64;
                        self.out.push(t);
                        if !e.keyframe_sent && pkt.keyframe_start {
                            e.keyframe_sent = true;
                            e.observe(self.metrics.as_deref(), Stage::FirstKeyframeSent, now);
                        }
                    }
                    Ok(None) => {}
                    Err(_) => {
                        self.stats.session_errors += 1;
                        self.stats.srtp_protect_failures += 1;
                    }
                }
            }
        }
    }

    /// Takes the batch of datagrams to send (the driver hands it to sendmmsg).
    pub fn drain_transmits(&mut self, into: &mut Vec<Transmit>) {
        into.append(&mut self.out);
    }

    /// The next lifecycle event (IceConnected, DtlsConnected, RemoteChanged, Closed).
    /// NACK and keyframe requests are handled inside the shard.
    pub fn poll_event(&mut self) -> Option<(SessionId, SessionEvent)> {
        self.events.pop_front()
    }

    /// Applies `f` to a session (rewrite offsets, stats).
    pub fn with_session<R>(
        &mut self,
        id: SessionId,
        f: impl FnOnce(&mut ViewerSession) -> R,
    ) -> Option<R> {
        let r = self.entry_mut(id).map(|e| f(&mut e.session));
        self.rearm(id.slot);
        r
    }
}
