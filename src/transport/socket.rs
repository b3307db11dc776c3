//! The thin I/O driver: UDP sockets, shard worker threads, batched sends.
//!
//! One worker thread per shard (default: one per core). With more than one shard every worker
//! binds its own socket to the same address with `SO_REUSEPORT`; the kernel hashes each 5-tuple
//! to one socket, so everything a client sends from one port (miniSDP offer, STUN, DTLS, SRTCP)
//! reaches the same shard. Sessions signaled over HTTP wait in the shared [`Lobby`] and are
//! adopted by whichever shard their first STUN request reaches.
//!
//! Each loop iteration: wait for datagrams (at most `tick`), feed them to the shard, run due
//! timers, pull media from every established session's source, and send the whole batch with
//! `sendmmsg`, up to `batch` entries per call, where an entry is either one datagram or a run
//! of equal-size datagrams to one destination sent as one UDP GSO super-datagram
//! (`UDP_SEGMENT`, when the kernel accepts it: probed once per socket); see [`Batcher`].

use std::io::{self, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg, setsockopt, sockopt,
};

use super::session::Transmit;
use super::shard::{Lobby, SessionSnapshot, Shard, ShardConfig, SignalingHandler};
use crate::ops::{Metrics, StatsQueue};

/// Most segments the kernel accepts in one GSO send (`UDP_MAX_SEGMENTS`).
const GSO_MAX_SEGMENTS: usize = 64;
/// Largest GSO super-datagram payload.
const GSO_MAX_BYTES: usize = 65_000;
/// Largest datagram we receive.
const RECV_BUF: usize = 2048;

/// Driver settings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The media port (default `0.0.0.0:8000`).
    pub bind: SocketAddr,
    /// Shard workers (default: available parallelism).
    pub shards: usize,
    /// Longest wait for input before media is pumped and timers run.
    pub tick: Duration,
    /// Most datagrams per `sendmmsg`.
    pub batch: usize,
    /// Use UDP GSO when the kernel supports it.
    pub gso: bool,
    /// Limits applied to every shard.
    pub max_sessions_per_shard: usize,
    pub max_pending_per_shard: usize,
    /// A process-wide "new media may be available" counter (the hub's
    /// [`media_epoch`](crate::hub::media_epoch)): shards skip polling their sessions' sources
    /// while it stands still. `None` polls every source on every tick.
    pub media_epoch: Option<fn() -> u64>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 8000)),
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tick: Duration::from_millis(2),
            batch: 64,
            gso: true,
            max_sessions_per_shard: 20_000,
            max_pending_per_shard: 1024,
            media_epoch: None,
        }
    }
}

/// Counters of one worker, updated once per loop iteration (never on the per-packet path).
#[derive(Debug, Default)]
pub struct WorkerCounters {
    pub datagrams_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    pub send_syscalls: AtomicU64,
    pub send_errors: AtomicU64,
    pub sessions: AtomicU64,
}

/// Whether the kernel accepts `UDP_SEGMENT` on this socket (Linux ≥ 4.18).
pub fn probe_gso(socket: &UdpSocket) -> bool {
    setsockopt(socket, sockopt::UdpGsoSegment, &1200).is_ok()
        && setsockopt(socket, sockopt::UdpGsoSegment, &0).is_ok()
}

/// Sends batches of [`Transmit`]s with `sendmmsg` and UDP GSO.
///
/// One `sendmmsg` carries up to `batch` entries; each entry is either one datagram or a GSO
/// run (the consecutive datagrams of one frame to one viewer, equal sizes but the last). The
/// `UDP_SEGMENT` size is one control message shared by every entry of a call, which works
/// because the packetizer fills every packet of a frame to the same wire size: all viewers'
/// runs of the same stream share it, and a lone datagram no longer than it goes out unsplit.
/// So a whole shard iteration's video *and* audio usually leaves in a handful of system calls.
pub struct Batcher {
    /// Headers without control messages (no GSO in the call).
    plain: MultiHeaders<SockaddrStorage>,
    /// Headers with room for one `UDP_SEGMENT` control message each.
    segmented: MultiHeaders<SockaddrStorage>,
    batch: usize,
    gso: bool,
    /// Run lengths of the entries of the call being built (reused).
    entries: Vec<usize>,
}

/// What one [`Batcher::send`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    pub datagrams: u64,
    pub syscalls: u64,
    pub errors: u64,
}

/// The errors that say the path refuses GSO (rather than, say, a full socket buffer).
fn gso_refused(e: nix::errno::Errno) -> bool {
    use nix::errno::Errno;
    matches!(
        e,
        Errno::EIO | Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOPROTOOPT
    )
}

impl Batcher {
    pub fn new(batch: usize, gso: bool) -> Self {
        let batch = batch.clamp(1, 1024);
        Self {
            plain: MultiHeaders::preallocate(batch, None),
            segmented: MultiHeaders::preallocate(batch, Some(nix::cmsg_space!(u16))),
            batch,
            gso,
            entries: Vec::with_capacity(batch),
        }
    }

    /// The length of the GSO run at the start of `items`: consecutive datagrams to the same
    /// destination, all of the first one's size except possibly a shorter last one.
    fn gso_run(items: &[Transmit]) -> usize {
        let Some(first) = items.first() else { return 0 };
        let seg = first.data.len();
        let mut n = 1;
        let mut total = seg;
        for t in items.iter().skip(1) {
            if t.to != first.to
                || t.data.len() > seg
                || n >= GSO_MAX_SEGMENTS
                || total + t.data.len() > GSO_MAX_BYTES
            {
                break;
            }
            n += 1;
            total += t.data.len();
            if t.data.len() < seg {
                break; // a shorter segment must be the last
            }
        }
        n
    }

    /// Plans one `sendmmsg` over the front of `items`: fills `entries` with run lengths (1 for
    /// a lone datagram) and returns the shared segment size, if any run needs one. Every run
    /// of the call has that segment size and no lone datagram is longer (it would be split).
    fn plan(items: &[Transmit], batch: usize, gso: bool, entries: &mut Vec<usize>) -> Option<u16> {
        entries.clear();
        let mut seg: Option<usize> = None;
        let mut longest_single = 0;
        let mut i = 0;
        while i < items.len() && entries.len() < batch {
            let run = if gso { Self::gso_run(&items[i..]) } else { 1 };
            let len = items[i].data.len();
            if run >= 2 {
                match seg {
                    None if longest_single <= len => seg = Some(len),
                    Some(s) if s == len => {}
                    _ => break,
                }
            } else {
                if seg.is_some_and(|s| len > s) {
                    break;
                }
                longest_single = longest_single.max(len);
            }
            entries.push(run);
            i += run;
        }
        seg.map(|s| s as u16)
    }

    /// Sends everything in `items` in order (best effort: errors are counted, datagrams
    /// dropped; a path that refuses GSO turns it off for this socket and gets the datagrams
    /// one by one).
    pub fn send(&mut self, socket: &UdpSocket, items: &[Transmit]) -> SendReport {
        let fd = socket.as_raw_fd();
        let mut report = SendReport::default();
        let mut entries = std::mem::take(&mut self.entries);
        let mut i = 0;
        while i < items.len() {
            let seg = Self::plan(&items[i..], self.batch, self.gso, &mut entries);
            let covered: usize = entries.iter().sum();
            let rest = &items[i..i + covered];
            if let Err(e) = self.call(fd, rest, &entries, seg, &mut report)
                && seg.is_some()
                && gso_refused(e)
            {
                // Some paths (e.g. a device without checksum offload) refuse GSO.
                self.gso = false;
                report.errors = report.errors.saturating_sub(covered as u64);
                continue; // re-plan the same datagrams without GSO
            }
            i += covered;
        }
        self.entries = entries;
        report
    }

    /// One `sendmmsg`. A partial send means the socket buffer is full: the rest is dropped
    /// (UDP) and counted as errors. Returns the error when the kernel refused the first entry.
    fn call(
        &mut self,
        fd: std::os::fd::RawFd,
        items: &[Transmit],
        entries: &[usize],
        seg: Option<u16>,
        report: &mut SendReport,
    ) -> Result<(), nix::errno::Errno> {
        let iov: Vec<IoSlice<'_>> = items.iter().map(|t| IoSlice::new(&t.data)).collect();
        let mut groups: Vec<&[IoSlice<'_>]> = Vec::with_capacity(entries.len());
        let mut addrs: Vec<Option<SockaddrStorage>> = Vec::with_capacity(entries.len());
        let mut at = 0;
        for &n in entries {
            groups.push(&iov[at..at + n]);
            addrs.push(Some(SockaddrStorage::from(items[at].to)));
            at += n;
        }
        report.syscalls += 1;
        let seg_size = seg.unwrap_or(0);
        let result = match seg {
            Some(_) => sendmmsg(
                fd,
                &mut self.segmented,
                &groups,
                &addrs,
                [ControlMessage::UdpGsoSegments(&seg_size)],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(|r| r.count()),
            None => sendmmsg(
                fd,
                &mut self.plain,
                &groups,
                &addrs,
                [],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(|r| r.count()),
        };
        match result {
            Ok(sent) => {
                let delivered: usize = entries[..sent.min(entries.len())].iter().sum();
                report.datagrams += delivered as u64;
                report.errors += (items.len() - delivered) as u64;
                Ok(())
            }
            Err(e) => {
                report.errors += items.len() as u64;
                Err(e)
            }
        }
    }
}

/// Binds one media socket (with `SO_REUSEPORT` when `reuse_port`).
pub fn bind_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // Media bursts (a keyframe to thousands of viewers) need room in the send buffer.
    let _ = socket.set_send_buffer_size(4 << 20);
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Sessions to end, by local ufrag, posted by the HTTP side (WHEP DELETE, admin kick) and
/// taken by whichever shard (or the lobby) holds the session. Entries nobody claims expire.
pub type KickList = Arc<Mutex<Vec<(String, Instant)>>>;

/// How long an unclaimed kick is kept (a session may still be on its way into a shard).
const KICK_TTL: Duration = Duration::from_secs(10);
/// How often each shard publishes its [`SessionSnapshot`]s.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// What the shard workers report to, besides their own counters. Everything here is
/// non-blocking from the worker's side: atomics, a lock-free drop-on-full queue, and
/// `try_lock`ed snapshot slots.
#[derive(Clone, Default)]
pub struct Observers {
    /// Session gauges, stage histograms, traffic (flushed once per loop iteration).
    pub metrics: Option<Arc<Metrics>>,
    /// Every session's snapshot, once per [`SNAPSHOT_EVERY`], for a statistics consumer.
    pub stats: Option<Arc<StatsQueue<SessionSnapshot>>>,
}

/// The latest session snapshots of every shard (the admin API's session list).
#[derive(Clone, Default)]
pub struct SessionDirectory {
    slots: Arc<[Arc<Mutex<Vec<SessionSnapshot>>>]>,
}

impl SessionDirectory {
    /// Every session as of its shard's latest snapshot (at most about a second old).
    /// Briefly locks each slot; a shard that finds its slot locked skips one publication.
    pub fn list(&self) -> Vec<SessionSnapshot> {
        let mut out = Vec::new();
        for slot in self.slots.iter() {
            if let Ok(s) = slot.lock() {
                out.extend(s.iter().cloned());
            }
        }
        out
    }

    /// Whether the latest snapshots hold a session with local ufrag `id`.
    pub fn contains(&self, id: &str) -> bool {
        self.slots
            .iter()
            .any(|slot| slot.lock().is_ok_and(|s| s.iter().any(|x| x.id == id)))
    }
}

/// Running shard workers.
pub struct Driver {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Set when the drain starts; each worker tells its shard once.
    draining: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    counters: Vec<Arc<WorkerCounters>>,
    lobby: Arc<Mutex<Lobby>>,
    kicks: KickList,
    sessions: SessionDirectory,
}

impl Driver {
    /// Binds the media port and starts `config.shards` workers. `make_signaling(shard_id)`
    /// supplies each shard's miniSDP handler.
    pub fn spawn(
        config: DriverConfig,
        lobby: Arc<Mutex<Lobby>>,
        make_signaling: impl Fn(u16) -> Option<Box<dyn SignalingHandler>>,
    ) -> io::Result<Self> {
        Self::spawn_with(config, lobby, make_signaling, Observers::default())
    }

    /// Like [`Self::spawn`], reporting to `observers`.
    pub fn spawn_with(
        config: DriverConfig,
        lobby: Arc<Mutex<Lobby>>,
        make_signaling: impl Fn(u16) -> Option<Box<dyn SignalingHandler>>,
        observers: Observers,
    ) -> io::Result<Self> {
        let shards = config.shards.max(1);
        let reuse = shards > 1;
        let first = bind_socket(config.bind, reuse)?;
        let local_addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..shards {
            sockets.push(bind_socket(local_addr, true)?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let draining = Arc::new(AtomicBool::new(false));
        let kicks = KickList::default();
        let mut workers = Vec::new();
        let mut counters = Vec::new();
        let slots: Vec<Arc<Mutex<Vec<SessionSnapshot>>>> =
            (0..shards).map(|_| Arc::default()).collect();
        for (i, socket) in sockets.into_iter().enumerate() {
            let id = i as u16;
            let mut shard = Shard::new(ShardConfig {
                id,
                max_sessions: config.max_sessions_per_shard,
                max_pending: config.max_pending_per_shard,
            });
            if let Some(h) = make_signaling(id) {
                shard.set_signaling(h);
            }
            shard.set_lobby(lobby.clone());
            if let Some(epoch) = config.media_epoch {
                shard.set_media_epoch(epoch);
            }
            if let Some(m) = &observers.metrics {
                shard.set_metrics(m.clone());
            }
            let publish = Publish {
                slot: slots[i].clone(),
                stats: observers.stats.clone(),
            };
            let c = Arc::new(WorkerCounters::default());
            counters.push(c.clone());
            let stop = stop.clone();
            let draining = draining.clone();
            let cfg = config.clone();
            let lobby = lobby.clone();
            let kicks = kicks.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("rtm-shard-{id}"))
                    .spawn(move || {
                        run_worker(
                            socket,
                            shard,
                            &cfg,
                            Signals {
                                stop: &stop,
                                draining: &draining,
                            },
                            &c,
                            (id == 0).then_some(lobby),
                            &kicks,
                            &publish,
                        )
                    })?,
            );
        }
        Ok(Self {
            local_addr,
            stop,
            draining,
            workers,
            counters,
            lobby,
            kicks,
            sessions: SessionDirectory {
                slots: slots.into(),
            },
        })
    }

    /// Starts the drain: every shard marks its sessions draining and sends each player its
    /// drain notice (see [`Shard::begin_drain`]) on its next loop iteration. Media keeps
    /// flowing until [`Self::shutdown`]. Idempotent.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// The shards' latest session snapshots.
    pub fn sessions(&self) -> &SessionDirectory {
        &self.sessions
    }

    /// Where to post sessions to end (see [`KickList`]).
    pub fn kicks(&self) -> &KickList {
        &self.kicks
    }

    /// The bound media address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared lobby (register HTTP-signaled sessions here).
    pub fn lobby(&self) -> &Arc<Mutex<Lobby>> {
        &self.lobby
    }

    /// Per-worker counters.
    pub fn counters(&self) -> &[Arc<WorkerCounters>] {
        &self.counters
    }

    /// Stops the workers and joins them; each worker first closes its sessions, so established
    /// viewers receive RTCP BYE and DTLS close_notify.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// Where one worker publishes its session snapshots.
#[derive(Default)]
pub struct Publish {
    /// The shard's slot in the [`SessionDirectory`].
    pub slot: Arc<Mutex<Vec<SessionSnapshot>>>,
    pub stats: Option<Arc<StatsQueue<SessionSnapshot>>>,
}

impl Publish {
    /// Snapshots every session into the slot (skipped if a reader holds it) and the stats
    /// queue (dropped and counted if full). Never waits.
    fn publish(&self, shard: &mut Shard, now: Instant) {
        let mut snap = Vec::new();
        shard.snapshot(now, &mut snap);
        if let Some(q) = &self.stats {
            for s in &snap {
                q.push(s.clone());
            }
        }
        if let Ok(mut slot) = self.slot.try_lock() {
            std::mem::swap(&mut *slot, &mut snap);
        }
        // The previous snapshot is freed here, outside the lock.
        drop(snap);
    }
}

/// `poll(2)` counts whole milliseconds: round up, so that a deadline 0.3 ms away is a 1 ms
/// sleep and not a busy loop of zero-timeout polls until it is due (with a few hundred viewers
/// some deadline is almost always less than a millisecond away; truncating made the worker
/// spin at ~100k iterations a second). Timers fire up to 1 ms late, which none of them minds.
fn poll_timeout_for(wait: Duration) -> PollTimeout {
    let ms = wait.as_micros().div_ceil(1000);
    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
}

/// What a worker watches besides its socket: set by [`Driver`] from other threads, read once
/// per loop iteration.
#[derive(Clone, Copy)]
pub struct Signals<'a> {
    /// End the loop (and close every session).
    pub stop: &'a AtomicBool,
    /// The drain started (see [`Shard::begin_drain`]).
    pub draining: &'a AtomicBool,
}

/// One shard worker's loop.
#[allow(clippy::too_many_arguments)]
pub fn run_worker(
    socket: UdpSocket,
    mut shard: Shard,
    config: &DriverConfig,
    signals: Signals<'_>,
    counters: &WorkerCounters,
    lobby_to_expire: Option<Arc<Mutex<Lobby>>>,
    kicks: &KickList,
    publish: &Publish,
) {
    let gso = config.gso && probe_gso(&socket);
    let mut batcher = Batcher::new(config.batch, gso);
    let mut buf = vec![0u8; RECV_BUF];
    let mut out = Vec::new();
    let mut next_lobby_expiry = Instant::now();
    let mut next_snapshot = Instant::now();
    while !signals.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wait = shard.poll_timeout().map_or(config.tick, |t| {
            t.saturating_duration_since(now).min(config.tick)
        });
        let timeout = poll_timeout_for(wait);
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, timeout);
        let now = Instant::now();
        let mut received = 0u64;
        for _ in 0..config.batch.max(1) {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    received += 1;
                    shard.handle_datagram(now, from, buf.get(..n).unwrap_or(&[]));
                }
                Err(_) => break,
            }
        }
        shard.handle_timeout(now);
        if !shard.is_draining() && signals.draining.load(Ordering::Acquire) {
            shard.begin_drain(now);
        }
        shard.pump_media(now);
        shard.drain_transmits(&mut out);
        if !out.is_empty() {
            let r = batcher.send(&socket, &out);
            out.clear();
            shard.transmits_sent(Instant::now());
            counters
                .datagrams_out
                .fetch_add(r.datagrams, Ordering::Relaxed);
            counters
                .send_syscalls
                .fetch_add(r.syscalls, Ordering::Relaxed);
            counters.send_errors.fetch_add(r.errors, Ordering::Relaxed);
        }
        counters.datagrams_in.fetch_add(received, Ordering::Relaxed);
        counters
            .sessions
            .store(shard.len() as u64, Ordering::Relaxed);
        // Lifecycle events were already turned into metrics by the shard as they happened.
        while shard.poll_event().is_some() {}
        if let Ok(mut k) = kicks.try_lock()
            && !k.is_empty()
        {
            k.retain(|(ufrag, at)| {
                if shard.close_ufrag(now, ufrag.as_bytes()) {
                    return false;
                }
                if let Some(lobby) = &lobby_to_expire
                    && lobby.lock().is_ok_and(|mut l| l.remove(ufrag.as_bytes()))
                {
                    return false;
                }
                now.duration_since(*at) < KICK_TTL
            });
        }
        shard.flush_metrics();
        if now >= next_snapshot {
            next_snapshot = now + SNAPSHOT_EVERY;
            publish.publish(&mut shard, now);
        }
        if let Some(lobby) = &lobby_to_expire
            && now >= next_lobby_expiry
        {
            next_lobby_expiry = now + Duration::from_secs(1);
            if let Ok(mut l) = lobby.lock() {
                l.expire(now);
            }
        }
    }
    // Shutdown: tell every viewer (RTCP BYE, DTLS close_notify) before the socket goes.
    shard.close_all(Instant::now());
    shard.drain_transmits(&mut out);
    if !out.is_empty() {
        batcher.send(&socket, &out);
    }
    shard.flush_metrics();
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn t(to: SocketAddr, len: usize) -> Transmit {
        Transmit {
            to,
            data: BytesMut::from(&vec![7u8; len][..]),
        }
    }

    #[test]
    fn poll_timeouts_round_up_to_whole_milliseconds() {
        let ms = |d| i64::from(poll_timeout_for(d));
        assert_eq!(ms(Duration::ZERO), 0);
        assert_eq!(ms(Duration::from_micros(1)), 1);
        assert_eq!(ms(Duration::from_micros(999)), 1);
        assert_eq!(ms(Duration::from_micros(1000)), 1);
        assert_eq!(ms(Duration::from_micros(1001)), 2);
        assert_eq!(ms(Duration::from_secs(1 << 40)), i64::from(i32::MAX));
    }

    #[test]
    fn a_call_shares_one_segment_size() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut e = Vec::new();
        // run(a, 1200×3 + 500), single(a, 200), run(b, 1200×2), single(b, 1300) breaks the call.
        let items = vec![
            t(a, 1200),
            t(a, 1200),
            t(a, 1200),
            t(a, 500),
            t(a, 200),
            t(b, 1200),
            t(b, 1200),
            t(b, 1300),
        ];
        assert_eq!(Batcher::plan(&items, 64, true, &mut e), Some(1200));
        assert_eq!(e, [4, 1, 2]);
        // A run of another size ends the call; so does the batch limit.
        let items = vec![t(a, 300), t(a, 1200), t(a, 1200), t(b, 1000), t(b, 1000)];
        assert_eq!(Batcher::plan(&items, 64, true, &mut e), Some(1200));
        assert_eq!(e, [1, 2]);
        assert_eq!(Batcher::plan(&items[3..], 1, true, &mut e), Some(1000));
        assert_eq!(e, [2]);
        // A single longer than the first run's segments cannot precede it.
        let items = vec![t(a, 1300), t(b, 1200), t(b, 1200)];
        assert_eq!(Batcher::plan(&items, 64, true, &mut e), None);
        assert_eq!(e, [1]);
        // Without GSO every entry is one datagram.
        assert_eq!(Batcher::plan(&items, 2, false, &mut e), None);
        assert_eq!(e, [1, 1]);
    }

    #[test]
    fn gso_runs_group_same_destination_and_size() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let items = vec![t(a, 100), t(a, 100), t(a, 60), t(a, 100), t(b, 100)];
        assert_eq!(Batcher::gso_run(&items), 3);
        assert_eq!(Batcher::gso_run(&items[3..]), 1);
        let bigger = vec![t(a, 100), t(a, 120)];
        assert_eq!(Batcher::gso_run(&bigger), 1);
    }

    #[test]
    fn mixed_runs_and_singles_arrive_complete_and_in_order() {
        let rx: Vec<UdpSocket> = (0..2)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let to: Vec<SocketAddr> = rx.iter().map(|r| r.local_addr().unwrap()).collect();
        let tx = bind_socket("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let mut b = Batcher::new(3, probe_gso(&tx));
        // Per viewer: a frame (3 × 900 + 400), an audio packet, a lone 1000-byte datagram,
        // another frame; tagged with a running number in the first byte.
        let mut items = Vec::new();
        let mut tag = 0u8;
        for (v, &addr) in to.iter().enumerate() {
            for len in [900, 900, 900, 400, 150 + v, 1000, 900, 900, 300] {
                let mut data = BytesMut::zeroed(len);
                data[0] = tag;
                tag += 1;
                items.push(Transmit { to: addr, data });
            }
        }
        let r = b.send(&tx, &items);
        assert_eq!(r.datagrams, items.len() as u64, "{r:?}");
        assert_eq!(r.errors, 0);
        let mut buf = [0u8; 2048];
        for (v, sock) in rx.iter().enumerate() {
            sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let got: Vec<(u8, usize)> = (0..9)
                .map(|_| {
                    let (n, _) = sock.recv_from(&mut buf).unwrap();
                    (buf[0], n)
                })
                .collect();
            let want: Vec<(u8, usize)> = items
                .iter()
                .filter(|t| t.to == to[v])
                .map(|t| (t.data[0], t.data.len()))
                .collect();
            assert_eq!(got, want, "viewer {v}");
        }
    }

    #[test]
    fn batcher_delivers_over_loopback() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let to = rx.local_addr().unwrap();
        let tx = bind_socket("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let gso = probe_gso(&tx);
        let mut b = Batcher::new(4, gso);
        let items: Vec<Transmit> = (0..10)
            .map(|i| t(to, if i == 9 { 50 } else { 300 }))
            .collect();
        let r = b.send(&tx, &items);
        assert_eq!(r.datagrams, 10, "{r:?}");
        let mut buf = [0u8; 2048];
        let mut sizes = Vec::new();
        for _ in 0..10 {
            let (n, _) = rx.recv_from(&mut buf).unwrap();
            sizes.push(n);
        }
        assert_eq!(sizes.iter().filter(|&&n| n == 300).count(), 9);
        assert_eq!(sizes.iter().filter(|&&n| n == 50).count(), 1);
    }
}
