//! Pulling streams from upstream origins (HTTP-FLV, RTMP play), with failover and health.
