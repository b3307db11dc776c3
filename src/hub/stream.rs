//! One live stream ("app/stream") as every viewer of this edge shares it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::Notify;

use crate::media::{AudioConfig, Frame, FrameKind, TrackKind, VideoConfig};
use crate::rtp::MediaPacket;

use super::config::HubConfig;
use super::item::StreamItem;
use super::ring::{Ring, RingStats};
use super::subscription::{StartAt, Subscription};

/// A subscription to a stream's frames (HTTP-FLV out, cascading to another edge).
pub type FrameSubscription = Subscription<Arc<Frame>>;

/// Counters of a stream. Relaxed atomics: read for the admin API, never on the media path's
/// critical section.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub frames: AtomicU64,
    pub keyframes: AtomicU64,
    pub jumps: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub gop_overflows: AtomicU64,
    pub evicted: AtomicU64,
    pub lookups: AtomicU64,
    pub lookup_misses: AtomicU64,
}

/// A snapshot of a stream's state for the admin API and metrics.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamStats {
    pub key: String,
    /// Packet subscriptions (viewers, including switchable subscriptions waiting to switch).
    pub viewers: usize,
    /// Frame subscriptions (HTTP-FLV, cascading).
    pub frame_subscribers: usize,
    pub packets: u64,
    pub bytes: u64,
    pub frames: u64,
    pub keyframes: u64,
    /// Subscriptions moved to a keyframe because they fell behind (or asked for it).
    pub jumps: u64,
    pub keyframe_requests: u64,
    /// GOPs that outgrew the GOP cache bound (late joiners then wait for the next keyframe).
    pub gop_overflows: u64,
    pub lookups: u64,
    pub lookup_misses: u64,
    pub has_keyframe: bool,
    pub closed: bool,
    pub packet_ring: RingStats,
    pub frame_ring: RingStats,
}

/// Per-shard wake-up registrations: each distinct `Notify` once, with the number of
/// subscriptions that registered it.
type Wakers = RwLock<Vec<(Arc<Notify>, usize)>>;

/// One stream: the packet ring (retransmission + GOP cache + fan-out), the frame ring, the
/// stream's codec configuration and its counters.
///
/// The producer (the origin pull or ingest task that packetizes the stream) calls
/// [`Stream::push`] / [`Stream::push_frame`]; consumers hold [`Subscription`]s.
#[derive(Debug)]
pub struct Stream {
    key: String,
    config: HubConfig,
    packets: Ring<MediaPacket>,
    frames: Ring<Arc<Frame>>,
    has_video: AtomicBool,
    video: RwLock<Option<Arc<VideoConfig>>>,
    audio: RwLock<Option<Arc<AudioConfig>>>,
    keyframe: Notify,
    wakers: Wakers,
    pub(crate) viewers: AtomicUsize,
    pub(crate) frame_subscribers: AtomicUsize,
    closed: AtomicBool,
    touched: AtomicBool,
    pub(crate) counters: Counters,
    /// When the stream was created (its uptime in the admin API).
    created: std::time::Instant,
}

impl Stream {
    /// A new, empty stream. The [`crate::hub::Hub`] creates streams; tests and tools may too.
    pub fn new(key: impl Into<String>, config: HubConfig) -> Arc<Self> {
        Arc::new(Stream {
            key: key.into(),
            packets: Ring::new(config.packet_ring, config.packet_gop),
            frames: Ring::new(config.frame_ring, config.frame_gop),
            config,
            has_video: AtomicBool::new(false),
            video: RwLock::new(None),
            audio: RwLock::new(None),
            keyframe: Notify::new(),
            wakers: RwLock::new(Vec::new()),
            viewers: AtomicUsize::new(0),
            frame_subscribers: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            touched: AtomicBool::new(true),
            counters: Counters::default(),
            created: std::time::Instant::now(),
        })
    }

    /// The stream key, "app/stream".
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// When this stream was created in the hub.
    pub fn created_at(&self) -> std::time::Instant {
        self.created
    }

    pub(crate) fn packet_ring(&self) -> &Ring<MediaPacket> {
        &self.packets
    }

    pub(crate) fn frame_ring(&self) -> &Ring<Arc<Frame>> {
        &self.frames
    }

    // ----- producer side -----

    /// Adds one packet. Never waits for a subscriber.
    pub fn push(&self, pkt: MediaPacket) {
        self.push_packets([pkt]);
    }

    /// Adds the packets of one frame (or any batch) under one lock and with one wake-up.
    pub fn push_packets(&self, pkts: impl IntoIterator<Item = MediaPacket>) {
        let had_key = self.packets.has_keyframe();
        let (mut n, mut bytes, mut keys) = (0u64, 0u64, 0u64);
        let outcome = self.packets.push_many(pkts.into_iter().map(|p| {
            n += 1;
            bytes += p.bytes.len() as u64;
            keys += u64::from(p.keyframe_start);
            let sync = self.is_sync(p.track, p.keyframe_start);
            (p, sync)
        }));
        if n == 0 {
            return;
        }
        let c = &self.counters;
        c.packets.fetch_add(n, Ordering::Relaxed);
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        c.keyframes.fetch_add(keys, Ordering::Relaxed);
        c.evicted
            .fetch_add(outcome.evicted as u64, Ordering::Relaxed);
        c.gop_overflows
            .fetch_add(u64::from(outcome.gop_overflow), Ordering::Relaxed);
        if !had_key && self.packets.has_keyframe() {
            self.keyframe.notify_waiters();
        }
        self.wake();
    }

    /// Adds one frame to the frame ring (HTTP-FLV out, cascading).
    pub fn push_frame(&self, frame: Arc<Frame>) {
        let track = frame.codec.track();
        let sync = self.is_sync(track, frame.kind == FrameKind::Key);
        let outcome = self.frames.push_many([(frame, sync)]);
        self.counters.frames.fetch_add(1, Ordering::Relaxed);
        self.counters
            .gop_overflows
            .fetch_add(u64::from(outcome.gop_overflow), Ordering::Relaxed);
        self.wake();
    }

    /// Where a subscriber may start: a video keyframe start; in an audio-only stream (no video
    /// packet and no video config seen yet) every audio item.
    fn is_sync(&self, track: TrackKind, keyframe_start: bool) -> bool {
        match track {
            TrackKind::Video => {
                self.has_video.store(true, Ordering::Relaxed);
                keyframe_start
            }
            TrackKind::Audio => !self.has_video.load(Ordering::Relaxed),
        }
    }

    /// Records the video decoder configuration (from the sequence header).
    pub fn set_video_config(&self, cfg: VideoConfig) {
        self.has_video.store(true, Ordering::Relaxed);
        *self.video.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(cfg));
    }

    /// Records the audio decoder configuration (from the sequence header / ASC).
    pub fn set_audio_config(&self, cfg: AudioConfig) {
        *self.audio.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(cfg));
    }

    /// Marks the stream as ended: subscribers drain what is cached, then see
    /// [`crate::hub::Recv::Closed`]; waiters for a keyframe return `false`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.keyframe.notify_waiters();
        self.wake();
    }

    fn wake(&self) {
        super::activity::bump();
        let w = self.wakers.read().unwrap_or_else(PoisonError::into_inner);
        for (n, _) in w.iter() {
            // Stores a permit when the shard is busy: no wake-up is lost, none allocates.
            n.notify_one();
        }
    }

    // ----- metadata -----

    pub fn video_config(&self) -> Option<Arc<VideoConfig>> {
        self.video
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn audio_config(&self) -> Option<Arc<AudioConfig>> {
        self.audio
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the GOP cache holds a keyframe (a new viewer would start at once).
    pub fn has_keyframe(&self) -> bool {
        self.packets.has_keyframe()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves when the GOP cache holds a keyframe (`true`) or the stream is closed
    /// (`false`). Cancel-safe; any number of tasks may wait.
    pub async fn wait_keyframe(&self) -> bool {
        loop {
            let notified = self.keyframe.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.has_keyframe() {
                return true;
            }
            if self.is_closed() {
                return false;
            }
            notified.await;
        }
    }

    // ----- retransmission and keyframe requests -----

    /// The cached packet of `track` with wire sequence number `seq16` (for a NACK), taking
    /// the extended sequence number nearest to the newest packet of the track.
    pub fn lookup(&self, track: TrackKind, seq16: u16) -> Option<MediaPacket> {
        self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        let p = self.packets.lookup(track, seq16);
        if p.is_none() {
            self.counters.lookup_misses.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    /// Newest extended sequence number of `track`.
    pub fn newest_seq(&self, track: TrackKind) -> Option<u64> {
        self.packets.newest_seq(track)
    }

    /// Clones the cached GOP (keyframe first), at most `max` packets; returns how many.
    pub fn keyframe_packets(&self, out: &mut Vec<MediaPacket>, max: usize) -> usize {
        self.packets.gop_items(out, max)
    }

    /// Clones the cached frame GOP (keyframe first), at most `max` frames.
    pub fn keyframe_frames(&self, out: &mut Vec<Arc<Frame>>, max: usize) -> usize {
        self.frames.gop_items(out, max)
    }

    // ----- subscribers -----

    /// A packet subscription starting at the cached keyframe (or the next one), polled
    /// without a wake-up registration.
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        self.subscribe_with(StartAt::CachedKeyframe, None)
    }

    /// A packet subscription. `notify` (typically one per transport shard, shared by all its
    /// subscriptions) is notified whenever this stream gets new packets.
    pub fn subscribe_with(
        self: &Arc<Self>,
        start: StartAt,
        notify: Option<Arc<Notify>>,
    ) -> Subscription {
        Subscription::new(self.clone(), start, notify)
    }

    /// A frame subscription (HTTP-FLV out, cascading), same semantics as packets.
    pub fn subscribe_frames(
        self: &Arc<Self>,
        start: StartAt,
        notify: Option<Arc<Notify>>,
    ) -> FrameSubscription {
        Subscription::new(self.clone(), start, notify)
    }

    pub(crate) fn register_notify(&self, n: &Arc<Notify>) {
        let mut w = self.wakers.write().unwrap_or_else(PoisonError::into_inner);
        match w.iter_mut().find(|(x, _)| Arc::ptr_eq(x, n)) {
            Some((_, count)) => *count += 1,
            None => w.push((n.clone(), 1)),
        }
    }

    pub(crate) fn unregister_notify(&self, n: &Arc<Notify>) {
        let mut w = self.wakers.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = w.iter().position(|(x, _)| Arc::ptr_eq(x, n)) {
            let Some(entry) = w.get_mut(i) else { return };
            entry.1 -= 1;
            if entry.1 == 0 {
                w.swap_remove(i);
            }
        }
    }

    pub(crate) fn subscribed<T: StreamItem>(&self) {
        T::subscriber_count(self).fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    pub(crate) fn unsubscribed<T: StreamItem>(&self) {
        T::subscriber_count(self).fetch_sub(1, Ordering::Relaxed);
        self.touch();
    }

    /// Packet subscriptions alive.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Frame subscriptions alive.
    pub fn frame_subscribers(&self) -> usize {
        self.frame_subscribers.load(Ordering::Relaxed)
    }

    /// Marks the stream as recently used: the hub's idle sweep restarts its linger timer.
    pub(crate) fn touch(&self) {
        self.touched.store(true, Ordering::Relaxed);
    }

    pub(crate) fn take_touched(&self) -> bool {
        self.touched.swap(false, Ordering::Relaxed)
    }

    pub fn stats(&self) -> StreamStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StreamStats {
            key: self.key.clone(),
            viewers: self.viewers(),
            frame_subscribers: self.frame_subscribers(),
            packets: l(&c.packets),
            bytes: l(&c.bytes),
            frames: l(&c.frames),
            keyframes: l(&c.keyframes),
            jumps: l(&c.jumps),
            keyframe_requests: l(&c.keyframe_requests),
            gop_overflows: l(&c.gop_overflows),
            lookups: l(&c.lookups),
            lookup_misses: l(&c.lookup_misses),
            has_keyframe: self.has_keyframe(),
            closed: self.is_closed(),
            packet_ring: self.packets.stats(),
            frame_ring: self.frames.stats(),
        }
    }
}
