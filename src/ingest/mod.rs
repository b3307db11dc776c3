//! Accepting streams from broadcasters (RTMP publish, WHIP), HTTP-FLV out, and the demo source.

pub mod demo_source;
pub mod flv_out;
pub mod hub_tags;
pub mod rtmp_server;
pub mod rtp_ingest;
pub mod whip;
