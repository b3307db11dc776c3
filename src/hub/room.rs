//! Co-host rooms: moving viewers between a host's solo stream and the co-host mix without a
//! stall.
//!
//! With WebRTC at the edge, a co-host session starting or ending is only a change of which
//! stream the edge forwards to each viewer; the viewer's media path (its session, SSRCs,
//! decoder) stays. A [`SwitchableSubscription`] makes that change safe for a decoder:
//!
//! 1. On a switch it opens a subscription to the target stream that waits for the target's
//!    **next** keyframe (live media, not the cached GOP, so the viewer does not go back in
//!    time), and keeps delivering the current stream meanwhile.
//! 2. When that keyframe has arrived, it finishes the frame in flight on the current stream
//!    (never leaves mid-frame), then moves over and reports [`Recv::Switched`]: the items
//!    appended by that poll start at the target's keyframe.
//! 3. The session starts a new epoch of its [`crate::hub::Continuity`], which keeps sequence
//!    numbers contiguous and timestamps advancing (see `docs/hub.md`).
//!
//! A [`Room`] lets the control plane switch every viewer of a room with one call: viewers
//! that follow it notice the change on their next poll (one atomic load per poll).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::Notify;

use super::stream::Stream;
use super::subscription::{Recv, StartAt, Subscription};
use crate::rtp::MediaPacket;

/// The app name that plays a room: viewers ask for `room/<name>`; nobody may publish under it.
pub const ROOM_APP: &str = "room";

/// Whether `key` (`app/stream`) is in the room namespace, where no stream may exist.
pub fn is_room_key(key: &str) -> bool {
    key.split('/').next() == Some(ROOM_APP)
}

/// A co-host room: the stream its viewers should currently watch (a host's solo stream or
/// the mix).
#[derive(Debug)]
pub struct Room {
    key: String,
    target: RwLock<Arc<Stream>>,
    generation: AtomicU64,
    /// Live [`SwitchableSubscription`]s following this room (counted by the subscriptions
    /// themselves, so transient references to the room do not count as viewers).
    viewers: AtomicU64,
}

impl Room {
    pub fn new(key: impl Into<String>, initial: Arc<Stream>) -> Arc<Self> {
        Arc::new(Room {
            key: key.into(),
            target: RwLock::new(initial),
            generation: AtomicU64::new(0),
            viewers: AtomicU64::new(0),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Points the room at `stream`: every following viewer switches at its next keyframe.
    pub fn switch_to(&self, stream: Arc<Stream>) {
        *self.target.write().unwrap_or_else(PoisonError::into_inner) = stream;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The stream viewers should watch now.
    pub fn target(&self) -> Arc<Stream> {
        self.target
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Incremented by every [`Room::switch_to`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Viewers following this room now.
    pub fn viewers(&self) -> u64 {
        self.viewers.load(Ordering::Relaxed)
    }

    /// A viewer subscription that follows this room, starting at the target's cached keyframe.
    pub fn subscribe(self: &Arc<Self>, notify: Option<Arc<Notify>>) -> SwitchableSubscription {
        let generation = self.generation();
        let sub = self
            .target()
            .subscribe_with(StartAt::CachedKeyframe, notify);
        let mut s = SwitchableSubscription::new(sub);
        self.viewers.fetch_add(1, Ordering::Relaxed);
        s.room = Some((self.clone(), generation));
        s
    }
}

/// A packet subscription that can be moved to another stream at a keyframe. See the module
/// documentation.
#[derive(Debug)]
pub struct SwitchableSubscription {
    current: Subscription,
    pending: Option<Subscription>,
    previous: Option<Arc<Stream>>,
    room: Option<(Arc<Room>, u64)>,
    switches: u64,
}

impl Drop for SwitchableSubscription {
    fn drop(&mut self) {
        if let Some((room, _)) = &self.room {
            room.viewers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl SwitchableSubscription {
    /// Wraps a subscription; switches keep its wake-up registration.
    pub fn new(current: Subscription) -> Self {
        SwitchableSubscription {
            current,
            pending: None,
            previous: None,
            room: None,
            switches: 0,
        }
    }

    /// Starts moving to `stream` (at its next keyframe). Switching to the stream already
    /// delivered cancels a pending switch; switching to the pending target again is a no-op.
    pub fn switch_to(&mut self, stream: &Arc<Stream>) {
        if Arc::ptr_eq(self.current.stream(), stream) {
            self.pending = None;
            return;
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p.stream(), stream))
        {
            return;
        }
        let notify = self.current.notify().cloned();
        self.pending = Some(stream.subscribe_with(StartAt::NextKeyframe, notify));
    }

    /// Whether a switch waits for the target's keyframe.
    pub fn is_switching(&self) -> bool {
        self.pending.is_some()
    }

    /// The stream being delivered.
    pub fn current(&self) -> &Arc<Stream> {
        self.current.stream()
    }

    /// The stream delivered before the last switch (NACKs of the previous epoch are answered
    /// from it).
    pub fn previous(&self) -> Option<&Arc<Stream>> {
        self.previous.as_ref()
    }

    /// The target of a pending switch.
    pub fn pending(&self) -> Option<&Arc<Stream>> {
        self.pending.as_ref().map(Subscription::stream)
    }

    /// Switches completed.
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// The inner subscription to the current stream.
    pub fn subscription(&mut self) -> &mut Subscription {
        &mut self.current
    }

    /// See [`Subscription::request_keyframe`] (applies to the current stream).
    pub fn request_keyframe(&mut self) {
        self.current.request_keyframe();
    }

    /// Whether a poll could return something (lock-free).
    pub fn has_pending(&self) -> bool {
        self.current.has_pending() || self.pending.as_ref().is_some_and(Subscription::has_pending)
    }

    /// Like [`Subscription::poll`], plus [`Recv::Switched`] when the subscription moved to
    /// the switch target; the items of one poll never mix two streams.
    pub fn poll(&mut self, out: &mut Vec<MediaPacket>, max: usize) -> Recv {
        if let Some((room, seen)) = &mut self.room {
            let g = room.generation();
            if g != *seen {
                *seen = g;
                let target = room.target();
                self.switch_to(&target);
            }
        }
        let ready = match self.pending.as_mut() {
            Some(p) => p.keyframe_ready(),
            None => false,
        };
        if !ready {
            return match self.current.poll(out, max) {
                // The current stream ended (a host left) while a switch is pending: the
                // viewer stays and waits for the target's keyframe.
                Recv::Closed if self.pending.is_some() => Recv::Pending,
                r => r,
            };
        }
        if !self.current.at_frame_boundary() {
            // Finish the frame in flight on the current stream first.
            let start = out.len();
            while out.len() - start < max && !self.current.at_frame_boundary() {
                let before = out.len();
                match self.current.poll(out, 1) {
                    Recv::Items(_) => {}
                    Recv::Jumped { .. } | Recv::Switched { .. } => {
                        // The current stream restarted at a keyframe: the frame in flight is
                        // gone anyway; leave now, without what the jump delivered.
                        out.truncate(before);
                        break;
                    }
                    Recv::Pending => {
                        let n = out.len() - start;
                        return if n > 0 { Recv::Items(n) } else { Recv::Pending };
                    }
                    Recv::Closed => break,
                }
            }
            let n = out.len() - start;
            if n > 0 {
                // Switch on the next poll so that one poll never mixes two streams.
                return Recv::Items(n);
            }
        }
        let Some(next) = self.pending.take() else {
            return self.current.poll(out, max);
        };
        let old = std::mem::replace(&mut self.current, next);
        self.previous = Some(old.stream().clone());
        drop(old);
        self.switches += 1;
        let n = self.current.poll(out, max).count();
        Recv::Switched { n }
    }
}
