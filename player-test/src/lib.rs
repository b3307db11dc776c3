//! player-test: the QA player and load generator for rtmlive.

pub mod jitter;
pub mod nack;
pub mod packet;
pub mod rng;
pub mod seq;
