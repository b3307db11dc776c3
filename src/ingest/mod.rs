//! Accepting streams from broadcasters (RTMP publish, WHIP), HTTP-FLV out, and the demo source.

pub mod rtmp_server;
