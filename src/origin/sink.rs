//! Where demuxed streams go: the seam between origin/ingest drivers and the hub.
//!
//! Drivers (pulls, RTMP publishers, the demo source) produce [`DemuxEvent`]s; whoever owns the
//! hub implements [`MediaSink`] (packetize once, push to the stream) and [`PullTarget`];
//! [`HubTarget`] is that implementation for the [`Hub`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::hub::{Hub, Publisher, PublisherConfig, PublisherStats};
use crate::ingest::hub_tags::HubTagReader;
use crate::ingest::rtmp_server::{DemuxingTagSink, PlaySource, PublishTarget, TagSink};
use crate::media::DemuxEvent;
use crate::media::flv_mux::HevcMode;
use crate::ops::StreamSource;
use crate::rtmp::{MediaTag, TagKind};

/// Receives one stream's demuxed events, in order.
pub trait MediaSink: Send + Sync + 'static {
    /// Metadata, decoder configurations and frames; frame timestamps are on the stream's
    /// continuous timeline (monotonic per track).
    fn on_event(&self, ev: DemuxEvent);
    /// The source switched (upstream failover): the next frame is a keyframe after a gap.
    fn on_gap(&self) {}
    /// The source ended (idle, every upstream failed, publisher left).
    fn on_end(&self) {}
}

/// Creates the sink of a stream when its pull starts.
pub trait PullTarget: Send + Sync + 'static {
    /// `key` is `app/stream`.
    fn open(&self, key: &str) -> Arc<dyn MediaSink>;
}

/// A [`MediaSink`] that publishes into a hub stream through its [`Publisher`] (packetize once).
/// A gap starts a new source on the publisher's timeline; the end closes the stream.
pub struct PublisherSink {
    publisher: Mutex<Publisher>,
}

impl PublisherSink {
    pub fn new(publisher: Publisher) -> PublisherSink {
        PublisherSink {
            publisher: Mutex::new(publisher),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Publisher> {
        self.publisher.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counters of the publisher.
    pub fn stats(&self) -> PublisherStats {
        self.lock().stats()
    }
}

impl MediaSink for PublisherSink {
    fn on_event(&self, ev: DemuxEvent) {
        let mut p = self.lock();
        if let Err(e) = p.handle(ev) {
            tracing::debug!(stream = p.stream().key(), error = %e, "event refused");
        }
    }

    fn on_gap(&self) {
        self.lock().begin_source();
    }

    fn on_end(&self) {
        self.lock().stream().close();
    }
}

/// Routes pulls and publishes into a [`Hub`]: each source gets the hub stream of its key and a
/// [`Publisher`] for it. At most one RTMP publisher per key at a time.
pub struct HubTarget {
    hub: Arc<Hub>,
    config: PublisherConfig,
    /// Keys being published, and by what (RTMP or WHIP).
    publishing: Publishing,
}

/// The keys being published and their ingest protocol.
type Publishing = Arc<Mutex<HashMap<String, StreamSource>>>;

impl HubTarget {
    pub fn new(hub: Arc<Hub>, config: PublisherConfig) -> HubTarget {
        HubTarget {
            hub,
            config,
            publishing: Arc::default(),
        }
    }

    /// The hub stream of `key`, replacing a closed one left behind by an ended source.
    pub fn sink_for(&self, key: &str) -> Arc<PublisherSink> {
        let (mut stream, _) = self.hub.get_or_create(key);
        if stream.is_closed() {
            self.hub.remove(key);
            stream = self.hub.get_or_create(key).0;
        }
        Arc::new(PublisherSink::new(Publisher::new(
            stream,
            self.config.clone(),
        )))
    }
}

/// Why a publisher cannot have a stream name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// `room/<name>` plays a co-host room: a stream published there could never be played.
    #[error(
        "{0} is reserved: room/<name> plays a co-host room (admin API /api/v1/rooms); publish under another app"
    )]
    Reserved(String),
    #[error("{0} is already being published")]
    Busy(String),
}

impl HubTarget {
    /// Claims `key` for one publisher (`by` RTMP or WHIP; at most one at a time): its sink and
    /// the claim that frees the key when dropped. Every publisher comes through here, so this
    /// is where the room namespace is kept free of streams.
    pub fn claim(
        &self,
        key: &str,
        by: StreamSource,
    ) -> Result<(Arc<PublisherSink>, PublishClaim), ClaimError> {
        if crate::hub::room::is_room_key(key) {
            return Err(ClaimError::Reserved(key.to_owned()));
        }
        {
            let mut publishing = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
            if publishing.contains_key(key) {
                return Err(ClaimError::Busy(key.to_owned()));
            }
            publishing.insert(key.to_owned(), by);
        }
        let claim = PublishClaim {
            key: key.to_owned(),
            publishing: self.publishing.clone(),
        };
        Ok((self.sink_for(key), claim))
    }
}

impl HubTarget {
    /// How `key` is being published here, if it is (the admin API's stream source).
    pub fn publisher_of(&self, key: &str) -> Option<StreamSource> {
        self.publishing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }
}

impl PullTarget for HubTarget {
    fn open(&self, key: &str) -> Arc<dyn MediaSink> {
        self.sink_for(key)
    }
}

/// The right to publish one key (RTMP or WHIP): frees the key when dropped.
pub struct PublishClaim {
    key: String,
    publishing: Publishing,
}

impl PublishClaim {
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// An RTMP publish in progress.
struct PublishSlot {
    _claim: PublishClaim,
    inner: DemuxingTagSink,
}

impl TagSink for PublishSlot {
    fn on_tag(&mut self, tag: MediaTag) -> Result<(), String> {
        self.inner.on_tag(tag)
    }
}

impl Drop for PublishClaim {
    fn drop(&mut self) {
        self.publishing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// Plays a hub stream over RTMP.
struct HubPlay(HubTagReader);

impl PlaySource for HubPlay {
    fn next_tags(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<MediaTag>>> + Send + '_>>
    {
        Box::pin(async move {
            let tags = self.0.next().await?;
            Some(
                tags.into_iter()
                    .filter_map(|t| {
                        let kind = match t.tag_type {
                            8 => TagKind::Audio,
                            9 => TagKind::Video,
                            18 => TagKind::Script,
                            _ => return None,
                        };
                        Some(MediaTag {
                            kind,
                            timestamp: t.timestamp,
                            body: t.body,
                        })
                    })
                    .collect(),
            )
        })
    }
}

impl PublishTarget for HubTarget {
    fn start_play(&self, app: &str, stream: &str) -> Result<Box<dyn PlaySource>, String> {
        let key = format!("{app}/{stream}");
        if crate::hub::room::is_room_key(&key) {
            return Err(format!(
                "{key}: co-host rooms play over WebRTC (miniSDP or WHEP), not RTMP"
            ));
        }
        match self.hub.get(&key) {
            Some(s) if !s.is_closed() => Ok(Box::new(HubPlay(HubTagReader::new(
                s,
                HevcMode::Enhanced,
                64,
            )))),
            _ => Err(format!("no stream {key}")),
        }
    }

    fn start_publish(&self, app: &str, stream: &str) -> Result<Box<dyn TagSink>, String> {
        let (sink, claim) = self
            .claim(&format!("{app}/{stream}"), StreamSource::Rtmp)
            .map_err(|e| e.to_string())?;
        Ok(Box::new(PublishSlot {
            _claim: claim,
            inner: DemuxingTagSink::new(sink),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubConfig;

    #[test]
    fn one_publisher_per_name_and_none_in_the_room_namespace() {
        let hub = Arc::new(Hub::new(HubConfig::default()));
        let target = HubTarget::new(hub.clone(), PublisherConfig::default());
        let (_sink, claim) = target.claim("live/a", StreamSource::Rtmp).expect("free");
        assert_eq!(
            target.claim("live/a", StreamSource::Rtmp).err(),
            Some(ClaimError::Busy("live/a".into()))
        );
        drop(claim);
        assert!(
            target.claim("live/a", StreamSource::Rtmp).is_ok(),
            "freed by the claim's drop"
        );
        let refused = target
            .claim("room/show", StreamSource::Rtmp)
            .err()
            .expect("reserved");
        assert_eq!(refused, ClaimError::Reserved("room/show".into()));
        assert!(refused.to_string().contains("co-host room"));
        assert!(hub.get("room/show").is_none());
        assert!(
            target
                .start_play("room", "show")
                .err()
                .is_some_and(|e| e.contains("WebRTC"))
        );
    }
}
