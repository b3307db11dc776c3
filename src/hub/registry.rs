//! The registry of live streams on this edge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::config::HubConfig;
use super::stream::{Stream, StreamStats};

#[derive(Debug)]
struct Entry {
    stream: Arc<Stream>,
    /// Since when the stream has had no subscriber (as seen by the sweeps).
    idle_since: Option<Instant>,
}

/// All streams of this edge, by key ("app/stream").
///
/// Creation is single-flight: concurrent [`Hub::get_or_create`] calls for one key get the same
/// stream and exactly one of them is told it created it (and so starts the origin pull).
/// Removal of idle streams is driven by the caller's clock ([`Hub::sweep_idle`]), so the hub
/// has no timer of its own.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    streams: Mutex<HashMap<String, Entry>>,
}

impl Hub {
    pub fn new(config: HubConfig) -> Self {
        Hub {
            config,
            streams: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stream for `key`, creating it if needed. `created` is true for exactly one caller
    /// per stream lifetime: that caller owns starting its producer.
    pub fn get_or_create(&self, key: &str) -> (Arc<Stream>, bool) {
        let mut m = self.lock();
        if let Some(e) = m.get(key) {
            e.stream.touch();
            return (e.stream.clone(), false);
        }
        let stream = Stream::new(key, self.config.clone());
        m.insert(
            key.to_owned(),
            Entry {
                stream: stream.clone(),
                idle_since: None,
            },
        );
        (stream, true)
    }

    /// The stream for `key` if it exists.
    pub fn get(&self, key: &str) -> Option<Arc<Stream>> {
        let m = self.lock();
        let s = m.get(key)?.stream.clone();
        s.touch();
        Some(s)
    }

    /// Removes and closes a stream (its producer should stop when it sees
    /// [`Stream::is_closed`]).
    pub fn remove(&self, key: &str) -> Option<Arc<Stream>> {
        let e = self.lock().remove(key)?;
        e.stream.close();
        Some(e.stream)
    }

    /// Removes (and closes) every stream that has had no packet or frame subscriber, and was
    /// not looked up, for at least `HubConfig::linger` as of `now`; returns them so the caller
    /// can stop their producers. Streams closed by their producer are removed at once when
    /// nobody is subscribed. Call it periodically (e.g. every second).
    pub fn sweep_idle(&self, now: Instant) -> Vec<Arc<Stream>> {
        let linger = self.config.linger;
        let mut removed = Vec::new();
        self.lock().retain(|_, e| {
            let s = &e.stream;
            let touched = s.take_touched();
            if s.viewers() > 0 || s.frame_subscribers() > 0 {
                e.idle_since = None;
                return true;
            }
            if s.is_closed() {
                removed.push(s.clone());
                return false;
            }
            let since = match e.idle_since {
                Some(t) if !touched => t,
                _ => {
                    e.idle_since = Some(now);
                    now
                }
            };
            if now.saturating_duration_since(since) >= linger {
                s.close();
                removed.push(s.clone());
                false
            } else {
                true
            }
        });
        removed
    }

    /// Number of streams.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stats of every stream, sorted by key (for the admin API).
    pub fn list(&self) -> Vec<StreamStats> {
        let streams: Vec<Arc<Stream>> = self.lock().values().map(|e| e.stream.clone()).collect();
        let mut v: Vec<StreamStats> = streams.iter().map(|s| s.stats()).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(HubConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn single_flight_creation() {
        let hub = Arc::new(Hub::default());
        let created: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let hub = hub.clone();
                    s.spawn(move || usize::from(hub.get_or_create("live/a").1))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(created, 1);
        assert_eq!(hub.len(), 1);
    }

    #[test]
    fn idle_streams_linger_then_go() {
        let hub = Hub::new(HubConfig {
            linger: Duration::from_secs(5),
            ..HubConfig::default()
        });
        let t0 = Instant::now();
        let (s, _) = hub.get_or_create("live/a");
        let sub = s.subscribe();
        assert!(hub.sweep_idle(t0).is_empty());
        drop(sub);
        assert!(hub.sweep_idle(t0 + Duration::from_secs(1)).is_empty());
        assert!(hub.sweep_idle(t0 + Duration::from_secs(5)).is_empty());
        let gone = hub.sweep_idle(t0 + Duration::from_secs(6));
        assert_eq!(gone.len(), 1);
        assert!(gone[0].is_closed());
        assert!(hub.get("live/a").is_none());
        let (_, created) = hub.get_or_create("live/a");
        assert!(created);
    }

    #[test]
    fn lookup_restarts_linger() {
        let hub = Hub::new(HubConfig {
            linger: Duration::from_secs(5),
            ..HubConfig::default()
        });
        let t0 = Instant::now();
        hub.get_or_create("live/a");
        assert!(hub.sweep_idle(t0).is_empty());
        hub.get("live/a");
        assert!(hub.sweep_idle(t0 + Duration::from_secs(4)).is_empty());
        assert!(hub.sweep_idle(t0 + Duration::from_secs(8)).is_empty());
        assert_eq!(hub.sweep_idle(t0 + Duration::from_secs(9)).len(), 1);
    }

    #[test]
    fn list_reports_every_stream_sorted() {
        let hub = Hub::default();
        let (b, _) = hub.get_or_create("live/b");
        hub.get_or_create("live/a");
        let _v1 = b.subscribe();
        let _v2 = b.subscribe();
        let l = hub.list();
        assert_eq!(
            l.iter()
                .map(|s| (s.key.as_str(), s.viewers))
                .collect::<Vec<_>>(),
            [("live/a", 0), ("live/b", 2)]
        );
        assert!(serde_json::to_string(&l).unwrap().contains("\"jumps\":0"));
        assert!(hub.remove("live/b").unwrap().is_closed());
        assert_eq!(hub.len(), 1);
    }
}
