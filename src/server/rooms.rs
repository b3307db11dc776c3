//! The edge's co-host rooms: named pointers at a stream that operators move between a host's
//! solo stream and the co-host mix (admin API `/api/v1/rooms`), and that viewers play as
//! `room/<name>`.
//!
//! A viewer of a room holds the room (through its [`SwitchableSubscription`]) rather than a
//! stream, so a switch is one store here and each viewer moves at the target's next keyframe
//! with its RTP continuous: no re-signaling, no stall. The directory holds the lease that keeps
//! the room's current source pulled from the origin; a switch takes the new source's lease
//! first and drops the old one after (the old pull lingers while viewers finish their frame).
//!
//! A room names its source by stream name, but points at one stream instance. When that
//! instance ends (a host's encoder reconnects, which publishes a new stream under the same
//! name; an origin ends the stream) the room would keep pointing at the dead one, and its
//! viewers would wait on it forever. [`Rooms::follow_sources`] re-resolves such rooms, so the
//! viewers move to the new instance at its first keyframe like at any switch: continuous RTP,
//! no re-signaling. A viewer joining meanwhile is resolved the same way.
//!
//! [`SwitchableSubscription`]: crate::hub::room::SwitchableSubscription

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use crate::hub::room::Room;
use crate::ops::admin_api::{RoomError, RoomInfo};
use crate::signal::{ResolveError, StreamResolver};

pub use crate::hub::room::ROOM_APP;

/// Longest room name.
const MAX_NAME: usize = 128;

struct Slot {
    room: Arc<Room>,
    source: String,
    /// The current source's origin-pull lease, if it is pulled.
    hold: Mutex<Option<Box<dyn Send>>>,
}

/// Every room of this edge.
pub struct Rooms {
    rooms: RwLock<BTreeMap<String, Slot>>,
    max_rooms: usize,
}

/// Room names: what fits in a URL path segment and a metric label without escaping.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A source is a stream (`app/stream`), never a room.
fn valid_source(key: &str) -> bool {
    match key.split_once('/') {
        Some((app, stream)) => {
            app != ROOM_APP && !app.is_empty() && !stream.is_empty() && !stream.contains('/')
        }
        None => false,
    }
}

impl Rooms {
    pub fn new(max_rooms: usize) -> Self {
        Self {
            rooms: RwLock::new(BTreeMap::new()),
            max_rooms,
        }
    }

    /// The room a viewer asks for with `room/<name>`.
    pub fn get(&self, name: &str) -> Option<Arc<Room>> {
        let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        rooms.get(name).map(|s| s.room.clone())
    }

    /// Like [`Self::get`] for a viewer about to play the room: if the room's stream has ended,
    /// it is first pointed at the stream now serving its source, if any.
    pub fn get_live(&self, name: &str, streams: &dyn StreamResolver) -> Option<Arc<Room>> {
        let room = self.get(name)?;
        if room.target().is_closed() {
            self.follow(name, streams);
        }
        Some(room)
    }

    /// Points every room whose stream has ended at the stream now serving its source (see
    /// the module documentation); returns how many moved. Cheap when nothing ended (one read
    /// lock and an atomic load per room): run it every few hundred milliseconds.
    pub fn follow_sources(&self, streams: &dyn StreamResolver) -> usize {
        let ended: Vec<String> = {
            let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
            rooms
                .iter()
                .filter(|(_, s)| s.room.target().is_closed())
                .map(|(n, _)| n.clone())
                .collect()
        };
        ended
            .iter()
            .filter(|name| self.follow(name, streams))
            .count()
    }

    /// Re-resolves room `name`'s source if its stream has ended; true if the room moved.
    fn follow(&self, name: &str, streams: &dyn StreamResolver) -> bool {
        let Some((source, ended)) = ({
            let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
            rooms.get(name).map(|s| (s.source.clone(), s.room.target()))
        }) else {
            return false;
        };
        if !ended.is_closed() {
            return false;
        }
        // Resolve outside the lock (it may start an origin pull). Not there (yet): the room
        // keeps waiting, and so do its viewers.
        let Ok(resolved) = streams.resolve(&source) else {
            return false;
        };
        if resolved.stream.is_closed() || Arc::ptr_eq(&resolved.stream, &ended) {
            return false;
        }
        let old_hold;
        {
            let rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
            let Some(slot) = rooms.get(name) else {
                return false;
            };
            // An operator switch (or another follower) got there first: theirs stands.
            if slot.source != source || !Arc::ptr_eq(&slot.room.target(), &ended) {
                return false;
            }
            slot.room.switch_to(resolved.stream);
            old_hold = std::mem::replace(
                &mut *slot.hold.lock().unwrap_or_else(PoisonError::into_inner),
                resolved.hold,
            );
        }
        drop(old_hold);
        tracing::info!(
            room = name,
            source,
            "room follows its source to a new stream"
        );
        true
    }

    fn info(name: &str, slot: &Slot) -> RoomInfo {
        RoomInfo {
            room: name.to_owned(),
            source: slot.source.clone(),
            generation: slot.room.generation(),
            viewers: slot.room.viewers(),
        }
    }

    pub fn list(&self) -> Vec<RoomInfo> {
        let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        rooms.iter().map(|(n, s)| Self::info(n, s)).collect()
    }

    pub fn info_of(&self, name: &str) -> Option<RoomInfo> {
        let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        rooms.get(name).map(|s| Self::info(name, s))
    }

    /// Whether room `name` can be created in `rooms`: not taken, and below `max_rooms`.
    fn has_room_for(&self, rooms: &BTreeMap<String, Slot>, name: &str) -> Result<(), RoomError> {
        if rooms.contains_key(name) {
            return Err(RoomError::Exists);
        }
        if rooms.len() >= self.max_rooms {
            return Err(RoomError::Limit);
        }
        Ok(())
    }

    /// Creates room `name` showing `source` (pulled from the origin if the edge does not have
    /// it yet).
    pub fn create(
        &self,
        name: &str,
        source: &str,
        streams: &dyn StreamResolver,
    ) -> Result<RoomInfo, RoomError> {
        if self.max_rooms == 0 {
            return Err(RoomError::Disabled);
        }
        if !valid_name(name) {
            return Err(RoomError::InvalidName);
        }
        if !valid_source(source) {
            return Err(RoomError::InvalidSource);
        }
        self.has_room_for(
            &self.rooms.read().unwrap_or_else(PoisonError::into_inner),
            name,
        )?;
        // Resolve outside the lock: it may start an origin pull. Checked again under the
        // write lock, as another create may have won meanwhile.
        let resolved = streams.resolve(source).map_err(source_error)?;
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        self.has_room_for(&rooms, name)?;
        let slot = Slot {
            room: Room::new(format!("{ROOM_APP}/{name}"), resolved.stream),
            source: source.to_owned(),
            hold: Mutex::new(resolved.hold),
        };
        let info = Self::info(name, &slot);
        rooms.insert(name.to_owned(), slot);
        Ok(info)
    }

    /// Points room `name` at `source`: every viewer moves at the source's next keyframe.
    pub fn switch(
        &self,
        name: &str,
        source: &str,
        streams: &dyn StreamResolver,
    ) -> Result<RoomInfo, RoomError> {
        if !valid_source(source) {
            return Err(RoomError::InvalidSource);
        }
        if self.get(name).is_none() {
            return Err(RoomError::NotFound);
        }
        let resolved = streams.resolve(source).map_err(source_error)?;
        let old_hold;
        let info = {
            let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
            let slot = rooms.get_mut(name).ok_or(RoomError::NotFound)?;
            slot.room.switch_to(resolved.stream);
            slot.source = source.to_owned();
            old_hold = std::mem::replace(
                &mut *slot.hold.lock().unwrap_or_else(PoisonError::into_inner),
                resolved.hold,
            );
            Self::info(name, slot)
        };
        // Dropped outside the lock (ending a lease may talk to the pull manager).
        drop(old_hold);
        Ok(info)
    }

    /// Removes room `name`. Its viewers stay on the stream they are watching (for as long as
    /// it lives); nobody can move them any more. `false` if there is no such room.
    pub fn delete(&self, name: &str) -> bool {
        let removed = self
            .rooms
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        removed.is_some()
    }
}

/// Runs [`Rooms::follow_sources`] every `every`, for as long as the server runs.
pub async fn follow_sources(rooms: Arc<Rooms>, streams: Arc<dyn StreamResolver>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        rooms.follow_sources(streams.as_ref());
    }
}

fn source_error(e: ResolveError) -> RoomError {
    match e {
        ResolveError::NotFound => RoomError::SourceNotFound,
        ResolveError::Unavailable => RoomError::SourceUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;

    use super::*;
    use crate::hub::{Hub, HubConfig, Recv};
    use crate::media::{FrameKind, TrackKind};
    use crate::rtp::MediaPacket;
    use crate::signal::Resolved;

    #[test]
    fn names_and_sources() {
        assert!(valid_name("match-1_a.b"));
        for bad in ["", "a/b", "a b", "ü", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_source("live/host"));
        for bad in ["live", "room/x", "/x", "live/", "live/a/b"] {
            assert!(!valid_source(bad), "{bad:?}");
        }
    }

    /// Resolves the open streams of a hub; `busy/*` is unavailable. Every resolution hands
    /// out a hold that counts itself, like an origin-pull lease.
    struct Edge {
        hub: Hub,
        holds: Arc<AtomicUsize>,
    }

    struct Hold(Arc<AtomicUsize>);

    impl Drop for Hold {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }

    impl Edge {
        fn new(streams: &[&str]) -> Self {
            let hub = Hub::new(HubConfig::default());
            for s in streams {
                hub.get_or_create(s);
            }
            Self {
                hub,
                holds: Arc::default(),
            }
        }

        fn holds(&self) -> usize {
            self.holds.load(Ordering::Relaxed)
        }

        /// A new stream under `key`, as a reconnecting publisher gets: the old one closed.
        fn republish(&self, key: &str) -> Arc<crate::hub::Stream> {
            if let Some(old) = self.hub.get(key) {
                old.close();
            }
            self.hub.remove(key);
            self.hub.get_or_create(key).0
        }
    }

    impl StreamResolver for Edge {
        fn resolve(&self, key: &str) -> Result<Resolved, ResolveError> {
            if key.starts_with("busy/") {
                return Err(ResolveError::Unavailable);
            }
            let stream = self
                .hub
                .get(key)
                .filter(|s| !s.is_closed())
                .ok_or(ResolveError::NotFound)?;
            self.holds.fetch_add(1, Ordering::Relaxed);
            Ok(Resolved {
                stream,
                hold: Some(Box::new(Hold(self.holds.clone()))),
                room: None,
            })
        }
    }

    fn keyframe(seq: u64) -> MediaPacket {
        let mut b = vec![0x80, 0x80 | 96];
        b.extend_from_slice(&(seq as u16).to_be_bytes());
        b.extend_from_slice(&[0; 8]);
        MediaPacket {
            bytes: Bytes::from(b),
            track: TrackKind::Video,
            seq,
            timestamp: 0,
            marker: true,
            frame_kind: FrameKind::Key,
            keyframe_start: true,
            dts_ms: seq as i64,
            seq_range_offset: None,
        }
    }

    #[test]
    fn create_switch_delete_and_their_refusals() {
        let edge = Edge::new(&["live/a", "live/b"]);
        let rooms = Rooms::new(2);
        let info = rooms.create("show", "live/a", &edge).expect("created");
        assert_eq!(
            info,
            RoomInfo {
                room: "show".into(),
                source: "live/a".into(),
                generation: 0,
                viewers: 0
            }
        );
        assert_eq!(edge.holds(), 1, "the room keeps its source alive");
        let refusals = [
            ("a b", "live/a", RoomError::InvalidName),
            ("x", "room/show", RoomError::InvalidSource),
            ("x", "live", RoomError::InvalidSource),
            ("show", "live/b", RoomError::Exists),
            ("x", "live/nope", RoomError::SourceNotFound),
            ("x", "busy/a", RoomError::SourceUnavailable),
        ];
        for (name, source, err) in refusals {
            assert_eq!(
                rooms.create(name, source, &edge),
                Err(err),
                "{name} {source}"
            );
        }
        rooms.create("two", "live/b", &edge).expect("second room");
        assert_eq!(
            rooms.create("three", "live/a", &edge),
            Err(RoomError::Limit)
        );
        let names: Vec<_> = rooms.list().into_iter().map(|r| r.room).collect();
        assert_eq!(names, ["show", "two"]);

        // A switch takes the new source's hold and gives the old one back.
        let info = rooms.switch("show", "live/b", &edge).expect("switched");
        assert_eq!((info.source.as_str(), info.generation), ("live/b", 1));
        assert!(Arc::ptr_eq(
            &rooms.get("show").unwrap().target(),
            &edge.hub.get("live/b").unwrap()
        ));
        assert_eq!(edge.holds(), 2);
        assert_eq!(
            rooms.switch("nope", "live/a", &edge),
            Err(RoomError::NotFound)
        );
        assert_eq!(
            rooms.switch("show", "live/nope", &edge),
            Err(RoomError::SourceNotFound)
        );
        assert_eq!(
            rooms.switch("show", "room/two", &edge),
            Err(RoomError::InvalidSource)
        );
        assert_eq!(rooms.info_of("show").map(|r| r.generation), Some(1));

        assert!(rooms.delete("show"));
        assert!(!rooms.delete("show"));
        assert!(rooms.get("show").is_none());
        assert_eq!(edge.holds(), 1, "a deleted room lets its source go");
    }

    #[test]
    fn rooms_can_be_turned_off() {
        let edge = Edge::new(&["live/a"]);
        let rooms = Rooms::new(0);
        assert_eq!(
            rooms.create("show", "live/a", &edge),
            Err(RoomError::Disabled)
        );
        assert_eq!(edge.holds(), 0);
    }

    #[test]
    fn viewers_are_the_subscriptions_following_the_room() {
        let edge = Edge::new(&["live/a"]);
        let rooms = Rooms::new(4);
        rooms.create("show", "live/a", &edge).unwrap();
        let room = rooms.get("show").unwrap();
        let one = room.subscribe(None);
        let two = room.subscribe(None);
        let _extra_reference = rooms.get("show");
        assert_eq!(rooms.info_of("show").map(|r| r.viewers), Some(2));
        drop((one, two));
        assert_eq!(rooms.info_of("show").map(|r| r.viewers), Some(0));
    }

    #[test]
    fn a_room_follows_its_source_when_the_host_reconnects() {
        let edge = Edge::new(&["live/a", "live/b"]);
        let rooms = Rooms::new(4);
        rooms.create("show", "live/a", &edge).unwrap();
        rooms.create("other", "live/b", &edge).unwrap();
        let first = edge.hub.get("live/a").unwrap();
        first.push(keyframe(1));
        let mut viewer = rooms.get("show").unwrap().subscribe(None);
        let mut out = Vec::new();
        assert!(matches!(viewer.poll(&mut out, 16), Recv::Items(1)));
        assert_eq!(rooms.follow_sources(&edge), 0, "nothing ended");

        // The host's encoder drops: no stream under the name yet, the room waits.
        first.close();
        edge.hub.remove("live/a");
        assert_eq!(rooms.follow_sources(&edge), 0);
        assert_eq!(rooms.info_of("show").map(|r| r.generation), Some(0));

        // It reconnects: a new stream, which the room (and only it) moves to.
        let second = edge.republish("live/a");
        assert_eq!(rooms.follow_sources(&edge), 1);
        assert_eq!(rooms.follow_sources(&edge), 0, "once");
        let room = rooms.get("show").unwrap();
        assert!(Arc::ptr_eq(&room.target(), &second));
        assert_eq!(room.generation(), 1);
        assert_eq!(rooms.info_of("other").map(|r| r.generation), Some(0));
        assert_eq!(
            edge.holds(),
            2,
            "the new stream's hold replaced the old one"
        );

        // The viewer waits on the ended stream, then moves at the new one's keyframe.
        out.clear();
        assert!(matches!(viewer.poll(&mut out, 16), Recv::Pending));
        second.push(keyframe(7));
        assert!(matches!(viewer.poll(&mut out, 16), Recv::Switched { n: 1 }));
        assert_eq!(out[0].seq, 7);
    }

    #[test]
    fn a_viewer_joining_a_room_whose_stream_ended_gets_the_new_one() {
        let edge = Edge::new(&["live/a"]);
        let rooms = Rooms::new(4);
        rooms.create("show", "live/a", &edge).unwrap();
        let second = edge.republish("live/a");
        let room = rooms.get_live("show", &edge).expect("room");
        assert!(Arc::ptr_eq(&room.target(), &second));
        assert!(rooms.get_live("nope", &edge).is_none());
    }

    #[test]
    fn an_operator_switch_is_not_undone_by_following() {
        let edge = Edge::new(&["live/a", "live/b"]);
        let rooms = Rooms::new(4);
        rooms.create("show", "live/a", &edge).unwrap();
        edge.republish("live/a");
        rooms.switch("show", "live/b", &edge).unwrap();
        assert_eq!(rooms.follow_sources(&edge), 0);
        let info = rooms.info_of("show").unwrap();
        assert_eq!((info.source.as_str(), info.generation), ("live/b", 1));
    }
}
