//! Accepting streams from broadcasters (RTMP publish, WHIP), HTTP-FLV out, and the demo source.
