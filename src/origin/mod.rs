//! Pulling streams from upstream origins (HTTP-FLV, RTMP play), with failover and health.

pub mod error;
pub mod health;
pub mod http;
pub mod http_flv;
pub mod rtmp_play;
pub mod upstreams;
pub mod url;

pub use error::PullError;
