//! The shared ring: one per stream and item type, written by one producer, read by many
//! cursors.
//!
//! Items are addressed by a **position** that counts every item ever pushed (`u64`, never
//! wraps). The ring keeps the window `[tail, head)`; a subscriber is nothing but a position
//! (see [`Cursor`]), so fan-out costs one clone (a reference-count increment) per item per
//! subscriber and no per-subscriber queue exists. The producer never waits for a reader: it
//! evicts the oldest items when a bound is reached, and a reader whose position was evicted
//! notices it on its next read and is jumped to the newest keyframe (a whole GOP).
//!
//! The same window is the retransmission cache (per-lane index by extended sequence number)
//! and the GOP cache (the position of the newest keyframe while the GOP is within its bounds).
//!
//! Locking: one `RwLock` per ring. The producer holds the write lock for O(1) work per item
//! (plus the eviction of at most a few items); readers hold the read lock while cloning at
//! most `max` items. Nobody holds it across I/O or across a wait, so the producer is delayed by
//! at most one bounded batch copy, never by a slow consumer. `head` is mirrored in an atomic so
//! "is there anything new for me?" needs no lock at all.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::media::TrackKind;

use super::config::{GopLimits, RingLimits};

/// What the ring needs to know about an item.
pub trait RingItem: Clone + Send + Sync + 'static {
    /// Size charged against the byte bounds.
    fn byte_len(&self) -> usize;
    /// Decoding time in milliseconds (duration bounds, lag).
    fn time_ms(&self) -> i64;
    /// The track the item belongs to.
    fn track(&self) -> TrackKind;
    /// Whether the item completes a unit (a frame) of its track: a stream may only be left or
    /// entered between units.
    fn ends_unit(&self) -> bool;
    /// Whether a subscriber may begin its track here (a video keyframe start; any audio
    /// item). Until it has, items of that track are not delivered to it, so a subscriber that
    /// started on an audio item never sees the tail of a GOP it did not get the keyframe of.
    fn starts_track(&self) -> bool;
    /// Extended sequence number within its track, for retransmission lookup (`None`: not
    /// indexed).
    fn track_seq(&self) -> Option<u64>;
}

fn lane(track: TrackKind) -> usize {
    match track {
        TrackKind::Audio => 0,
        TrackKind::Video => 1,
    }
}

/// Why a cursor was moved forward (or, for a keyframe request, back) to a keyframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JumpReason {
    /// The subscriber's position was evicted: it fell behind the whole ring.
    Lagged,
    /// The subscriber was further behind the newest item than `HubConfig::max_lag_ms`.
    TooFarBehind,
    /// The subscriber asked for a keyframe (PLI/FIR from its player).
    KeyframeRequest,
}

/// A discontinuity in what a subscriber receives. Items after it start at a keyframe (or, when
/// no keyframe is cached, at the next keyframe to arrive), so the subscriber always gets whole
/// GOPs; the items between `from` and `to` were not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump {
    /// Position the subscriber would have read next.
    pub from: u64,
    /// Position it reads next now.
    pub to: u64,
    /// False when no keyframe was cached: the subscriber skips to the next keyframe pushed.
    pub to_keyframe: bool,
    pub reason: JumpReason,
}

impl Jump {
    /// Items skipped (zero for a keyframe request that moved backwards).
    pub fn skipped(&self) -> u64 {
        self.to.saturating_sub(self.from)
    }
}

/// A reader's state: a position and whether it waits for a keyframe. 32 bytes.
#[derive(Debug, Clone)]
pub struct Cursor {
    next: u64,
    wait_key: bool,
    /// Position of the keyframe a keyframe request last moved us to: a second request for the
    /// same GOP is ignored (a player that sends PLI in a loop cannot make us replay forever).
    last_resync: Option<u64>,
    /// Per track: the last item delivered did not end its unit (we are mid-frame).
    open: [bool; 2],
    /// Per track: an item that starts the track was delivered since the (re)start.
    started: [bool; 2],
}

impl Cursor {
    /// Next position to read.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Waiting for a keyframe before delivering anything.
    pub fn waiting_keyframe(&self) -> bool {
        self.wait_key
    }

    /// Whether the last item delivered on every track completed its frame.
    pub fn at_unit_boundary(&self) -> bool {
        !self.open[0] && !self.open[1]
    }
}

#[derive(Debug)]
struct Slot<T> {
    item: T,
    sync: bool,
}

#[derive(Debug, Clone, Copy)]
struct Gop {
    start: u64,
    bytes: usize,
    time_ms: i64,
}

/// Position of every indexed item of one track, by extended sequence number.
#[derive(Debug, Default)]
struct TrackIndex {
    first_seq: u64,
    positions: VecDeque<u64>,
}

impl TrackIndex {
    fn push(&mut self, seq: u64, pos: u64) {
        let expected = self.first_seq + self.positions.len() as u64;
        if self.positions.is_empty() || seq != expected {
            // A gap or a restart of the sequence space: older entries can no longer be
            // addressed contiguously, so the index starts over (lookups of them miss).
            self.positions.clear();
            self.first_seq = seq;
        }
        self.positions.push_back(pos);
    }

    fn evicted(&mut self, pos: u64) {
        if self.positions.front() == Some(&pos) {
            self.positions.pop_front();
            self.first_seq += 1;
        }
    }

    fn newest_seq(&self) -> Option<u64> {
        (self.positions.len() as u64)
            .checked_sub(1)
            .map(|l| self.first_seq + l)
    }

    fn find(&self, seq16: u16) -> Option<u64> {
        let newest = self.newest_seq()?;
        let ext = extend_seq(newest, seq16)?;
        let idx = ext.checked_sub(self.first_seq)?;
        self.positions.get(usize::try_from(idx).ok()?).copied()
    }
}

/// Maps a 16-bit wire sequence number to the extended sequence number nearest to `newest`
/// (within ±32768), or `None` if that would be negative.
pub fn extend_seq(newest: u64, seq16: u16) -> Option<u64> {
    let diff = i64::from(seq16.wrapping_sub(newest as u16) as i16);
    newest.checked_add_signed(diff)
}

#[derive(Debug)]
struct State<T> {
    slots: VecDeque<Slot<T>>,
    tail: u64,
    bytes: usize,
    newest_time_ms: i64,
    gop: Option<Gop>,
    index: [TrackIndex; 2],
}

impl<T> State<T> {
    fn head(&self) -> u64 {
        self.tail + self.slots.len() as u64
    }

    fn slot(&self, pos: u64) -> Option<&Slot<T>> {
        let i = usize::try_from(pos.checked_sub(self.tail)?).ok()?;
        self.slots.get(i)
    }
}

/// What a push did, for the stream's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushOutcome {
    pub evicted: usize,
    /// The current GOP outgrew the GOP bounds: the GOP cache was emptied.
    pub gop_overflow: bool,
}

/// What a read did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Items appended to the output.
    pub n: usize,
    /// The cursor was moved before reading: the items appended follow the jump.
    pub jump: Option<Jump>,
}

/// A size snapshot of a ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RingStats {
    pub items: usize,
    pub bytes: usize,
    /// Position of the oldest and next item.
    pub tail: u64,
    pub head: u64,
    /// Items, bytes and DTS span of the cached GOP (zero when none is cached).
    pub gop_items: u64,
    pub gop_bytes: usize,
    pub gop_duration_ms: u64,
}

/// A bounded single-producer ring read by cursors. See the module documentation.
#[derive(Debug)]
pub struct Ring<T> {
    state: RwLock<State<T>>,
    head: AtomicU64,
    has_key: AtomicBool,
    limits: RingLimits,
    gop_limits: GopLimits,
}

impl<T: RingItem> Ring<T> {
    pub fn new(limits: RingLimits, gop_limits: GopLimits) -> Self {
        Ring {
            state: RwLock::new(State {
                slots: VecDeque::new(),
                tail: 0,
                bytes: 0,
                newest_time_ms: 0,
                gop: None,
                index: [TrackIndex::default(), TrackIndex::default()],
            }),
            head: AtomicU64::new(0),
            has_key: AtomicBool::new(false),
            limits,
            gop_limits,
        }
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, State<T>> {
        // Nothing panics while holding the lock; if something ever did, the state is still
        // consistent item by item, so carry on rather than take the stream down.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, State<T>> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Position the next item pushed will get (lock-free).
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Whether the GOP cache holds a keyframe (lock-free).
    pub fn has_keyframe(&self) -> bool {
        self.has_key.load(Ordering::Acquire)
    }

    /// Appends items; `sync` says whether a reader may start at the item (keyframe start).
    pub fn push_many(&self, items: impl IntoIterator<Item = (T, bool)>) -> PushOutcome {
        let mut out = PushOutcome::default();
        let mut st = self.write_lock();
        for (item, sync) in items {
            self.push_locked(&mut st, item, sync, &mut out);
        }
        self.has_key.store(st.gop.is_some(), Ordering::Release);
        self.head.store(st.head(), Ordering::Release);
        out
    }

    fn push_locked(&self, st: &mut State<T>, item: T, sync: bool, out: &mut PushOutcome) {
        let len = item.byte_len();
        let t = item.time_ms();
        while let Some(front) = st.slots.front() {
            let over_items = st.slots.len() >= self.limits.max_items;
            let over_bytes = st.bytes + len > self.limits.max_bytes;
            let span = u64::try_from(t.saturating_sub(front.item.time_ms())).unwrap_or(0);
            if !(over_items || over_bytes || span > self.limits.max_duration_ms) {
                break;
            }
            let Some(old) = st.slots.pop_front() else {
                break;
            };
            let pos = st.tail;
            st.tail += 1;
            st.bytes -= old.item.byte_len();
            st.index[lane(old.item.track())].evicted(pos);
            if st.gop.is_some_and(|g| g.start == pos) {
                // The GOP is larger than the whole ring: its keyframe is gone.
                st.gop = None;
                out.gop_overflow = true;
            }
            out.evicted += 1;
        }
        let pos = st.head();
        if sync {
            st.gop = Some(Gop {
                start: pos,
                bytes: 0,
                time_ms: t,
            });
        }
        if let Some(g) = st.gop.as_mut() {
            g.bytes += len;
            let span = u64::try_from(t.saturating_sub(g.time_ms)).unwrap_or(0);
            if g.bytes > self.gop_limits.max_bytes || span > self.gop_limits.max_duration_ms {
                // Handing this GOP to a late joiner would exceed what we promised to send at
                // once: stop offering it. New subscribers wait for the next keyframe; the
                // items stay in the ring for existing subscribers and retransmission.
                st.gop = None;
                out.gop_overflow = true;
            }
        }
        if let Some(seq) = item.track_seq() {
            st.index[lane(item.track())].push(seq, pos);
        }
        st.bytes += len;
        st.newest_time_ms = t;
        st.slots.push_back(Slot { item, sync });
    }

    /// A cursor for a new subscriber: at the cached keyframe (the late joiner gets the whole
    /// GOP at once), or waiting for the next keyframe when none is cached.
    pub fn cursor_at_keyframe(&self) -> Cursor {
        let st = self.read_lock();
        match st.gop {
            Some(g) => Cursor {
                next: g.start,
                wait_key: false,
                last_resync: None,
                open: [false; 2],
                started: [false; 2],
            },
            None => self.cursor_at_head_locked(&st),
        }
    }

    /// A cursor that ignores the cache and starts at the next keyframe pushed.
    pub fn cursor_at_next_keyframe(&self) -> Cursor {
        let st = self.read_lock();
        self.cursor_at_head_locked(&st)
    }

    fn cursor_at_head_locked(&self, st: &State<T>) -> Cursor {
        Cursor {
            next: st.head(),
            wait_key: true,
            last_resync: None,
            open: [false; 2],
            started: [false; 2],
        }
    }

    /// Whether `cur` has anything to look at (lock-free).
    pub fn has_pending(&self, cur: &Cursor) -> bool {
        cur.next < self.head()
    }

    /// Reads up to `max` items at `cur` into `out`. Moves the cursor to the newest keyframe
    /// first when it fell out of the ring, when it lags more than `max_lag_ms`, or when
    /// `resync` (a keyframe request) is set and the newest keyframe is not the one the last
    /// request already moved it to.
    pub fn read(
        &self,
        cur: &mut Cursor,
        out: &mut Vec<T>,
        max: usize,
        max_lag_ms: Option<u64>,
        resync: bool,
    ) -> ReadOutcome {
        self.read_with(cur, max, max_lag_ms, resync, |item| out.push(item.clone()))
    }

    /// Like [`Ring::read`], but lends each item to `f` instead of cloning it (no reference
    /// count traffic at all). `f` runs under the ring's read lock: it must be short and never
    /// wait (an SRTP copy into the caller's buffer is fine; I/O is not). `max` bounds how long
    /// the producer can be held up.
    pub fn read_with(
        &self,
        cur: &mut Cursor,
        max: usize,
        max_lag_ms: Option<u64>,
        resync: bool,
        mut f: impl FnMut(&T),
    ) -> ReadOutcome {
        let st = self.read_lock();
        let mut res = ReadOutcome::default();
        if cur.next < st.tail {
            if cur.wait_key {
                // Skipping anyway: nothing was promised from here.
                cur.next = st.tail;
            } else {
                res.jump = Some(jump_to_key(&st, cur, JumpReason::Lagged));
            }
        } else if resync {
            let target = st.gop.map(|g| g.start);
            if target.is_none() || target != cur.last_resync {
                let j = jump_to_key(&st, cur, JumpReason::KeyframeRequest);
                cur.last_resync = target;
                res.jump = Some(j);
            }
        } else if let (Some(lag), false, Some(g)) = (max_lag_ms, cur.wait_key, st.gop)
            && g.start > cur.next
            && let Some(s) = st.slot(cur.next)
            && u64::try_from(st.newest_time_ms.saturating_sub(s.item.time_ms())).unwrap_or(0) > lag
        {
            res.jump = Some(jump_to_key(&st, cur, JumpReason::TooFarBehind));
        }
        let head = st.head();
        if cur.wait_key && !seek_sync(&st, cur) {
            return res;
        }
        let end = head.min(cur.next.saturating_add(max as u64));
        while cur.next < end {
            let Some(slot) = st.slot(cur.next) else {
                break;
            };
            cur.next += 1;
            let l = lane(slot.item.track());
            if !cur.started[l] {
                if !slot.item.starts_track() {
                    continue;
                }
                cur.started[l] = true;
            }
            cur.open[l] = !slot.item.ends_unit();
            f(&slot.item);
            res.n += 1;
        }
        res
    }

    /// Moves the cursor to the first keyframe at or after its position, if one was pushed
    /// (skipping what precedes it; the cursor waits for a keyframe otherwise). Returns whether
    /// the cursor now stands on a keyframe. For a cursor that is about to be switched to, not
    /// for one that is delivering.
    pub fn seek_keyframe(&self, cur: &mut Cursor) -> bool {
        let st = self.read_lock();
        if cur.next < st.tail {
            cur.next = st.tail;
        }
        if !st.slot(cur.next).is_some_and(|s| s.sync) {
            cur.wait_key = true;
        }
        if cur.wait_key {
            cur.started = [false; 2];
            cur.open = [false; 2];
            seek_sync(&st, cur)
        } else {
            true
        }
    }

    /// The item of `track` whose 16-bit wire sequence number is `seq16`, taking the extended
    /// sequence number nearest to the newest one of that track.
    pub fn lookup(&self, track: TrackKind, seq16: u16) -> Option<T> {
        let st = self.read_lock();
        let pos = st.index[lane(track)].find(seq16)?;
        st.slot(pos).map(|s| s.item.clone())
    }

    /// Newest extended sequence number of `track` in the ring.
    pub fn newest_seq(&self, track: TrackKind) -> Option<u64> {
        self.read_lock().index[lane(track)].newest_seq()
    }

    /// Position of the cached keyframe.
    pub fn keyframe_position(&self) -> Option<u64> {
        self.read_lock().gop.map(|g| g.start)
    }

    /// Clones the cached GOP (keyframe to newest item), at most `max` items.
    pub fn gop_items(&self, out: &mut Vec<T>, max: usize) -> usize {
        let st = self.read_lock();
        let Some(g) = st.gop else { return 0 };
        let mut n = 0;
        let mut pos = g.start;
        while n < max
            && let Some(s) = st.slot(pos)
        {
            out.push(s.item.clone());
            pos += 1;
            n += 1;
        }
        n
    }

    pub fn stats(&self) -> RingStats {
        let st = self.read_lock();
        let (gop_items, gop_bytes, gop_duration_ms) = match st.gop {
            Some(g) => (
                st.head() - g.start,
                g.bytes,
                u64::try_from(st.newest_time_ms.saturating_sub(g.time_ms)).unwrap_or(0),
            ),
            None => (0, 0, 0),
        };
        RingStats {
            items: st.slots.len(),
            bytes: st.bytes,
            tail: st.tail,
            head: st.head(),
            gop_items,
            gop_bytes,
            gop_duration_ms,
        }
    }
}

fn jump_to_key<T>(st: &State<T>, cur: &mut Cursor, reason: JumpReason) -> Jump {
    let from = cur.next;
    match st.gop {
        Some(g) => {
            cur.next = g.start;
            cur.wait_key = false;
        }
        None => {
            cur.next = st.head();
            cur.wait_key = true;
        }
    }
    cur.open = [false; 2];
    cur.started = [false; 2];
    Jump {
        from,
        to: cur.next,
        to_keyframe: !cur.wait_key,
        reason,
    }
}

/// Advances a waiting cursor to the next sync item; true when found.
fn seek_sync<T>(st: &State<T>, cur: &mut Cursor) -> bool {
    let head = st.head();
    while cur.next < head {
        match st.slot(cur.next) {
            Some(s) if s.sync => {
                cur.wait_key = false;
                return true;
            }
            _ => cur.next += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct It {
        track: TrackKind,
        seq: u64,
        t: i64,
        len: usize,
        end: bool,
    }

    impl RingItem for It {
        fn byte_len(&self) -> usize {
            self.len
        }
        fn time_ms(&self) -> i64 {
            self.t
        }
        fn track(&self) -> TrackKind {
            self.track
        }
        fn ends_unit(&self) -> bool {
            self.end
        }
        fn starts_track(&self) -> bool {
            true
        }
        fn track_seq(&self) -> Option<u64> {
            Some(self.seq)
        }
    }

    fn v(seq: u64, t: i64) -> It {
        It {
            track: TrackKind::Video,
            seq,
            t,
            len: 100,
            end: true,
        }
    }

    fn ring(items: usize, bytes: usize, ms: u64) -> Ring<It> {
        Ring::new(
            RingLimits {
                max_items: items,
                max_bytes: bytes,
                max_duration_ms: ms,
            },
            GopLimits {
                max_bytes: bytes / 2,
                max_duration_ms: ms / 2,
            },
        )
    }

    #[test]
    fn extend_seq_nearest() {
        assert_eq!(extend_seq(70_000, 70_000u64 as u16), Some(70_000));
        assert_eq!(extend_seq(65_540, 65_530), Some(65_530));
        assert_eq!(extend_seq(65_530, 3), Some(65_539));
        assert_eq!(extend_seq(5, 65_535), None);
    }

    #[test]
    fn evicts_by_each_bound() {
        let r = ring(4, 1_000_000, 1_000_000);
        for i in 0..10 {
            r.push_many([(v(i, i as i64), i % 5 == 0)]);
        }
        let s = r.stats();
        assert_eq!((s.items, s.tail, s.head), (4, 6, 10));

        let r = ring(1000, 350, 1_000_000);
        for i in 0..10 {
            r.push_many([(v(i, 0), false)]);
        }
        assert_eq!(r.stats().items, 3);

        let r = ring(1000, 1_000_000, 50);
        for i in 0..10 {
            r.push_many([(v(i, i as i64 * 10), false)]);
        }
        // items within 50 ms of the newest (t = 90): 40..=90
        assert_eq!(r.stats().items, 6);
    }

    #[test]
    fn gop_overflow_empties_gop_cache_but_keeps_items() {
        let r = ring(1000, 1000, 1_000_000); // GOP bound: 500 bytes
        r.push_many([(v(0, 0), true)]);
        assert!(r.has_keyframe());
        let mut out = PushOutcome::default();
        for i in 1..6 {
            out = r.push_many([(v(i, 0), false)]);
        }
        assert!(out.gop_overflow);
        assert!(!r.has_keyframe());
        assert_eq!(r.stats().items, 6);
        let c = r.cursor_at_keyframe();
        assert!(c.waiting_keyframe());
        assert_eq!(c.position(), 6);
    }

    #[test]
    fn lookup_survives_wrap_and_eviction() {
        let r = ring(100, 1_000_000, 1_000_000);
        let base = 65_500u64;
        for i in 0..200 {
            r.push_many([(v(base + i, 0), false)]);
        }
        // Newest 100 are base+100 ..= base+199, crossing 2^16 = 65536 (at i = 36, evicted).
        let newest = base + 199;
        assert_eq!(
            r.lookup(TrackKind::Video, newest as u16).unwrap().seq,
            newest
        );
        assert_eq!(
            r.lookup(TrackKind::Video, (base + 100) as u16).unwrap().seq,
            base + 100
        );
        assert!(r.lookup(TrackKind::Video, (base + 99) as u16).is_none());
        assert!(r.lookup(TrackKind::Audio, 3).is_none());
    }

    #[test]
    fn resync_is_idempotent_per_gop() {
        let r = ring(1000, 1_000_000, 1_000_000);
        r.push_many((0..5).map(|i| (v(i, 0), i == 0)));
        let mut c = r.cursor_at_keyframe();
        let mut out = Vec::new();
        assert_eq!(r.read(&mut c, &mut out, 10, None, false).n, 5);
        let o = r.read(&mut c, &mut out, 10, None, true);
        assert_eq!(o.jump.map(|j| j.reason), Some(JumpReason::KeyframeRequest));
        assert_eq!(o.n, 5);
        let o = r.read(&mut c, &mut out, 10, None, true);
        assert_eq!(o, ReadOutcome::default());
    }
}
