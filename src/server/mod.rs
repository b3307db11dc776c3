//! Assembly of the edge: config → hub, transport shards, signaling, HTTP, ingest and origins.

pub mod media_source;
