//! The stream hub: per stream, one packetizer, a GOP cache and a retransmission cache shared by
//! every viewer, and the non-blocking fan-out path to the transport shards.
