//! The stream hub: per stream, a GOP cache and a retransmission cache shared by every viewer,
//! and the non-blocking fan-out path to the transport shards.
//!
//! ```text
//! packetizer ──push──▶ Stream ─┬─ packet ring: [tail ........ keyframe ....... head)
//!                              │                 retransmission   GOP cache
//!                              │   Subscription = a cursor (position) into the ring
//!                              └─ frame ring (HTTP-FLV out, cascading), same semantics
//! ```
//!
//! One producer per stream pushes; any number of [`Subscription`]s read by position, so
//! fan-out costs one reference-count increment per packet per subscriber and no queue,
//! task or copy per subscriber. The producer never waits for a subscriber: a subscriber that
//! falls out of the ring is jumped to the newest keyframe and receives whole GOPs from there
//! (see `docs/hub.md`). [`room`] moves viewers between streams at keyframes, and
//! [`Continuity`] keeps their RTP sequence numbers and timestamps continuous across those
//! moves and across jumps.

pub mod activity;
pub mod config;
mod item;
pub mod publisher;
mod registry;
pub mod rewrite;
pub mod ring;
pub mod room;
mod stream;
mod subscription;

pub use activity::media_epoch;
pub use config::{GopLimits, HubConfig, HubConfigError, RingLimits};
pub use item::StreamItem;
pub use publisher::{PublishError, Publisher, PublisherConfig, PublisherStats};
pub use registry::Hub;
pub use rewrite::{Continuity, Rewrite, SourceSeq};
pub use ring::{Jump, JumpReason, RingStats, extend_seq};
pub use stream::{FrameSubscription, Stream, StreamStats};
pub use subscription::{Recv, StartAt, Subscription};
