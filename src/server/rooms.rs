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
//! [`SwitchableSubscription`]: crate::hub::room::SwitchableSubscription

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

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

    fn info(name: &str, slot: &Slot) -> RoomInfo {
        RoomInfo {
            room: name.to_owned(),
            source: slot.source.clone(),
            generation: slot.room.generation(),
            // Every viewer's subscription holds one reference; the directory holds one.
            viewers: (Arc::strong_count(&slot.room) - 1) as u64,
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

    /// Creates room `name` showing `source` (pulled from the origin if the edge does not have
    /// it yet).
    pub fn create(
        &self,
        name: &str,
        source: &str,
        streams: &dyn StreamResolver,
    ) -> Result<RoomInfo, RoomError> {
        if !valid_name(name) {
            return Err(RoomError::InvalidName);
        }
        if !valid_source(source) {
            return Err(RoomError::InvalidSource);
        }
        {
            let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
            if rooms.contains_key(name) {
                return Err(RoomError::Exists);
            }
            if rooms.len() >= self.max_rooms {
                return Err(RoomError::Limit);
            }
        }
        // Resolve outside the lock: it may start an origin pull.
        let resolved = streams.resolve(source).map_err(source_error)?;
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        if rooms.contains_key(name) {
            return Err(RoomError::Exists);
        }
        if rooms.len() >= self.max_rooms {
            return Err(RoomError::Limit);
        }
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

fn source_error(e: ResolveError) -> RoomError {
    match e {
        ResolveError::NotFound => RoomError::SourceNotFound,
        ResolveError::Unavailable => RoomError::SourceUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
