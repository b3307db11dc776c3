//! A subscriber's view of a stream: a cursor into the shared ring.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::Notify;

use crate::rtp::MediaPacket;

use super::item::StreamItem;
use super::ring::{Cursor, Jump, JumpReason};
use super::stream::Stream;

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// At the GOP cache's keyframe: the whole cached GOP is delivered at once (fast start).
    /// Without a cached keyframe, like `NextKeyframe`.
    CachedKeyframe,
    /// At the next keyframe pushed (a co-host switch wants live, not cached, media).
    NextKeyframe,
}

/// What [`Subscription::poll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// `n` items were appended, continuing exactly where the previous poll stopped.
    Items(usize),
    /// The subscription was moved to a keyframe before reading (it fell behind, or asked for
    /// it): the `n` items appended (possibly zero, when it now waits for the next keyframe)
    /// start a new GOP and do not continue the previous ones. A session starts a new epoch
    /// of its [`crate::hub::Continuity`] here.
    Jumped { jump: Jump, n: usize },
    /// The subscription was moved to another stream (only from
    /// [`crate::hub::room::SwitchableSubscription`]): the `n` items appended start at a
    /// keyframe of the new stream.
    Switched { n: usize },
    /// Nothing new: wait for the notify given at subscribe time (or poll later).
    Pending,
    /// The stream was closed and everything cached was delivered.
    Closed,
}

impl Recv {
    /// Items appended by this poll.
    pub fn count(&self) -> usize {
        match *self {
            Recv::Items(n) | Recv::Jumped { n, .. } | Recv::Switched { n } => n,
            Recv::Pending | Recv::Closed => 0,
        }
    }
}

/// A cursor into a stream's ring: what a viewer (packets) or an HTTP-FLV/cascade consumer
/// (frames) holds. About 80 bytes; no queue, no task, no copy of media per subscriber.
///
/// Dropping it unsubscribes (and unregisters its notify).
#[derive(Debug)]
pub struct Subscription<T: StreamItem = MediaPacket> {
    stream: Arc<Stream>,
    cursor: Cursor,
    notify: Option<Arc<Notify>>,
    resync: bool,
    jumps: u64,
    delivered: u64,
    _item: std::marker::PhantomData<fn() -> T>,
}

impl<T: StreamItem> Subscription<T> {
    pub(crate) fn new(stream: Arc<Stream>, start: StartAt, notify: Option<Arc<Notify>>) -> Self {
        let ring = T::ring(&stream);
        let cursor = match start {
            StartAt::CachedKeyframe => ring.cursor_at_keyframe(),
            StartAt::NextKeyframe => ring.cursor_at_next_keyframe(),
        };
        stream.subscribed::<T>();
        if let Some(n) = &notify {
            stream.register_notify(n);
        }
        Subscription {
            stream,
            cursor,
            notify,
            resync: false,
            jumps: 0,
            delivered: 0,
            _item: std::marker::PhantomData,
        }
    }

    /// Appends up to `max` items to `out`. Never blocks on the producer for longer than one
    /// bounded copy, and never makes the producer wait.
    pub fn poll(&mut self, out: &mut Vec<T>, max: usize) -> Recv {
        self.poll_with(max, |item| out.push(item.clone()))
    }

    /// Like [`Subscription::poll`], but lends each item to `f` instead of cloning it: no
    /// reference-count traffic, which is about half the cost of fan-out. `f` runs under the
    /// ring's read lock, so it must be short and never wait (copying into an SRTP buffer is
    /// fine, I/O is not); `max` bounds how long the producer can be held up. Same return
    /// values as `poll` (the count is of items lent).
    pub fn poll_with(&mut self, max: usize, f: impl FnMut(&T)) -> Recv {
        let ring = T::ring(&self.stream);
        let closed = self.stream.is_closed();
        if !self.resync && !ring.has_pending(&self.cursor) {
            return if closed { Recv::Closed } else { Recv::Pending };
        }
        let resync = std::mem::take(&mut self.resync);
        let max_lag = self.stream.config().max_lag_ms;
        let r = ring.read_with(&mut self.cursor, max, max_lag, resync, f);
        self.delivered += r.n as u64;
        match r.jump {
            Some(jump) => {
                self.jumps += 1;
                let c = &self.stream.counters;
                c.jumps.fetch_add(1, Ordering::Relaxed);
                if jump.reason == JumpReason::KeyframeRequest {
                    c.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                }
                Recv::Jumped { jump, n: r.n }
            }
            None if r.n > 0 => Recv::Items(r.n),
            None if closed && !ring.has_pending(&self.cursor) => Recv::Closed,
            None => Recv::Pending,
        }
    }

    /// Whether a poll could return something (lock-free; for a shard scanning its
    /// subscriptions after a wake-up).
    pub fn has_pending(&self) -> bool {
        self.resync || T::ring(&self.stream).has_pending(&self.cursor) || self.stream.is_closed()
    }

    /// Answers a keyframe request (PLI/FIR) from the GOP cache, never upstream: the next poll
    /// moves this subscription to the newest cached keyframe (reported as a
    /// [`Recv::Jumped`] with [`JumpReason::KeyframeRequest`]) and replays that GOP, or, when
    /// none is cached, waits for the next keyframe. Repeated requests while the same keyframe
    /// is the newest are ignored, so a player looping PLIs causes at most one replay per GOP.
    pub fn request_keyframe(&mut self) {
        self.resync = true;
    }

    /// For a subscription waiting for a keyframe: whether one has arrived (the next poll
    /// delivers it). Moves the cursor past what precedes the keyframe.
    pub fn keyframe_ready(&mut self) -> bool {
        T::ring(&self.stream).seek_keyframe(&mut self.cursor)
    }

    /// Whether every track's last delivered item completed its frame.
    pub fn at_frame_boundary(&self) -> bool {
        self.cursor.at_unit_boundary()
    }

    /// Position (in items pushed to the stream since it began) of the next item to read.
    pub fn position(&self) -> u64 {
        self.cursor.position()
    }

    /// Items between this subscription and the newest item.
    pub fn lag(&self) -> u64 {
        T::ring(&self.stream)
            .head()
            .saturating_sub(self.cursor.position())
    }

    /// Jumps this subscription took.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }

    /// Items delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    pub(crate) fn notify(&self) -> Option<&Arc<Notify>> {
        self.notify.as_ref()
    }
}

impl<T: StreamItem> Drop for Subscription<T> {
    fn drop(&mut self) {
        if let Some(n) = &self.notify {
            self.stream.unregister_notify(n);
        }
        self.stream.unsubscribed::<T>();
    }
}
