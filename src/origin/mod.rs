//! Pulling streams from upstream origins (HTTP-FLV, RTMP play), with failover and health.
//!
//! [`pull::PullManager`] is the entry point: one pull per stream, upstreams ordered by
//! [`upstreams::UpstreamSet`], skipped while [`health::HealthTracker`] has them ejected.

pub mod error;
pub mod health;
pub mod http;
pub mod http_flv;
pub mod pull;
pub mod rtmp_play;
pub mod sink;
pub mod source;
pub mod timeline;
pub mod upstreams;
pub mod url;

pub use error::PullError;
pub use pull::{PullConfig, PullLease, PullManager, PullTimeouts};
pub use sink::{HubTarget, MediaSink, PublisherSink, PullTarget};
