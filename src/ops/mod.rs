//! Operations: metrics, admin API, stats queues, shutdown, logging. Observes the media path
//! through bounded queues and atomics only; never blocks it.

pub mod admin_api;
pub mod labels;
pub mod logging;
pub mod metrics;
pub mod ratelimit;
pub mod shutdown;
pub mod stats_queue;

pub use labels::*;
pub use metrics::Metrics;
pub use shutdown::Shutdown;
pub use stats_queue::StatsQueue;
