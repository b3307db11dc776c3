//! player-test: the QA player and load generator for rtmlive.

pub mod client;
pub mod http;
pub mod impair;
pub mod jitter;
pub mod measure;
pub mod nack;
pub mod packet;
pub mod playout;
pub mod relay;
pub mod report;
pub mod rng;
pub mod rtp_in;
pub mod seq;
pub mod session;
pub mod signal;
pub mod url;
