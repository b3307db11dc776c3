//! Pulling streams from upstream origins (HTTP-FLV, RTMP play), with failover and health.

pub mod health;
pub mod http;
pub mod upstreams;
pub mod url;
