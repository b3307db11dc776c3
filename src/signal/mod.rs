//! Signaling: miniSDP over UDP on the media port, WHEP and WHIP over HTTP, and stream tokens.
pub mod auth;
pub mod http;
pub mod minisdp_udp;
pub mod negotiate;
pub mod player_page;

use std::sync::Arc;

use crate::hub::Stream;

/// Why a viewer's stream cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Nobody publishes it and no origin is configured for its app (miniSDP 104, HTTP 404).
    #[error("stream not found")]
    NotFound,
    /// The edge is at a limit (streams, draining) (miniSDP 102, HTTP 503).
    #[error("stream unavailable")]
    Unavailable,
}

/// Finds the stream a viewer asks for, starting its origin pull when the edge does not have
/// it yet. Must return at once: the pull runs in the background while the viewer's handshake
/// proceeds (first-frame time = max(handshake, origin), not their sum).
pub trait StreamResolver: Send + Sync {
    fn resolve(&self, key: &str) -> Result<Resolved, ResolveError>;
}

/// A stream a viewer may subscribe to, with whatever keeps it alive for that viewer.
pub struct Resolved {
    pub stream: Arc<Stream>,
    /// Held for as long as the viewer's session lives (e.g. an origin-pull lease: the pull
    /// ends a linger time after the last viewer's hold is dropped).
    pub hold: Option<Box<dyn Send>>,
    /// Set when the viewer asked for a co-host room (`room/<name>`): `stream` is the room's
    /// current source, and the viewer follows the room's switches.
    pub room: Option<Arc<crate::hub::room::Room>>,
}
pub mod whep;
