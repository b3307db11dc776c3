//! Operations: metrics, admin API, stats queues, shutdown. Observes the media path through bounded
//! queues and atomics only; never blocks it.
