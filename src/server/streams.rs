//! Which streams this edge can serve, and starting the origin pull for those it does not have.

use std::sync::Arc;

use crate::hub::Hub;
use crate::origin::PullManager;
use crate::server::rooms::{ROOM_APP, Rooms};
use crate::signal::{ResolveError, Resolved, StreamResolver};

/// The pull manager serving one app (`*` = every app).
pub struct AppOrigins {
    pub app: String,
    pub pulls: PullManager,
}

/// Resolves viewers' streams against the hub and the configured origins.
///
/// * A stream published here (RTMP, WHIP, the demo) is in the hub: served as is.
/// * Otherwise, if an origin serves the stream's app, the pull is started (or joined: single
///   flight) and the viewer holds a lease on it; the stream exists in the hub at once, so the
///   viewer's session is created and answered while the origin connects.
/// * Otherwise the stream is not found.
pub struct EdgeStreams {
    hub: Arc<Hub>,
    rooms: Arc<Rooms>,
    origins: Vec<AppOrigins>,
    runtime: tokio::runtime::Handle,
    max_streams: usize,
}

impl EdgeStreams {
    pub fn new(
        hub: Arc<Hub>,
        origins: Vec<AppOrigins>,
        runtime: tokio::runtime::Handle,
        max_streams: usize,
    ) -> Self {
        Self {
            hub,
            rooms: Arc::new(Rooms::new(0)),
            origins,
            runtime,
            max_streams,
        }
    }

    /// The pull manager of `app`, if any origin serves it.
    pub fn origins_for(&self, app: &str) -> Option<&PullManager> {
        self.origins
            .iter()
            .find(|o| o.app == app || o.app == "*")
            .map(|o| &o.pulls)
    }

    pub fn all_origins(&self) -> &[AppOrigins] {
        &self.origins
    }

    /// Serves `room/<name>` from `rooms`.
    pub fn with_rooms(mut self, rooms: Arc<Rooms>) -> Self {
        self.rooms = rooms;
        self
    }

    pub fn rooms(&self) -> &Arc<Rooms> {
        &self.rooms
    }
}

impl StreamResolver for EdgeStreams {
    fn resolve(&self, key: &str) -> Result<Resolved, ResolveError> {
        let app = key.split('/').next().unwrap_or_default();
        if app == ROOM_APP {
            // A room, never a stream: its source is kept alive by the room directory.
            let name = key.strip_prefix(ROOM_APP).and_then(|k| k.strip_prefix('/'));
            let name = name.unwrap_or_default();
            let room = self
                .rooms
                .get_live(name, self)
                .ok_or(ResolveError::NotFound)?;
            return Ok(Resolved {
                stream: room.target(),
                hold: None,
                room: Some(room),
            });
        }
        let pulls = self.origins_for(app);
        if let Some(stream) = self.hub.get(key).filter(|s| !s.is_closed()) {
            // Published here, or already pulled: join the pull (if any) for its linger count.
            let hold = pulls
                .filter(|p| p.is_pulling(key))
                .map(|p| Box::new(self.lease(p, key)) as Box<dyn Send>);
            return Ok(Resolved {
                stream,
                hold,
                room: None,
            });
        }
        let Some(pulls) = pulls else {
            return Err(ResolveError::NotFound);
        };
        if self.hub.len() >= self.max_streams {
            return Err(ResolveError::Unavailable);
        }
        // Start the pull first: the viewer's answer must not wait for the origin.
        let lease = self.lease(pulls, key);
        let (stream, _) = self.hub.get_or_create(key);
        Ok(Resolved {
            stream,
            hold: Some(Box::new(lease)),
            room: None,
        })
    }
}

impl EdgeStreams {
    fn lease(&self, pulls: &PullManager, key: &str) -> crate::origin::PullLease {
        // Shard workers are plain threads: enter the runtime the pull task is spawned on.
        let _guard = self.runtime.enter();
        pulls.acquire(key)
    }
}
