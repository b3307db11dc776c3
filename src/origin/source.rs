//! One connection to one upstream, demuxed: HTTP-FLV bytes through the FLV demuxer, or RTMP
//! tags through the tag demuxer. Both yield the same [`DemuxEvent`]s.

use crate::media::{DemuxEvent, FlvDemuxer, FlvError, TagDemuxer};

use super::error::PullError;
use super::http_flv::{self, HttpFlvBody, HttpFlvOptions};
use super::rtmp_play::{self, RtmpPlay, RtmpPlayOptions};

/// Connect and first-byte timeouts plus redirect limit, for either protocol.
#[derive(Debug, Clone, Copy)]
pub struct SourceOptions {
    pub http: HttpFlvOptions,
    pub rtmp: RtmpPlayOptions,
}

/// An open upstream connection producing demuxed events.
#[derive(Debug)]
pub enum Source {
    Http {
        body: Box<HttpFlvBody>,
        demux: Box<FlvDemuxer>,
    },
    Rtmp {
        play: Box<RtmpPlay>,
        demux: Box<TagDemuxer>,
    },
}

/// Whether a demux error only spoils one tag of an otherwise usable stream (a codec this edge
/// does not carry); anything else means the upstream sends garbage and the connection ends.
pub fn is_tag_local(e: &FlvError) -> bool {
    matches!(
        e,
        FlvError::Unsupported(_)
            | FlvError::UnsupportedAudioCodec(_)
            | FlvError::UnsupportedVideoCodec(_)
            | FlvError::UnsupportedFourCc(_)
            | FlvError::UnknownPacketType(_)
    )
}

impl Source {
    /// When the connection was established and when its first byte arrived (first-frame
    /// stages of the pull).
    pub fn opened_at(&self) -> (std::time::Instant, std::time::Instant) {
        match self {
            Source::Http { body, .. } => (body.connected_at, body.first_byte_at),
            Source::Rtmp { play, .. } => (
                play.connected_at,
                play.first_byte_at.unwrap_or(play.connected_at),
            ),
        }
    }

    /// Opens `url` (`http://` → HTTP-FLV, `rtmp://` → RTMP play).
    pub async fn open(url: &str, opts: &SourceOptions) -> Result<Source, PullError> {
        if url.starts_with("rtmp://") {
            let play = rtmp_play::open(url, &opts.rtmp).await?;
            Ok(Source::Rtmp {
                play: Box::new(play),
                demux: Box::default(),
            })
        } else {
            let body = http_flv::open(url, &opts.http).await?;
            Ok(Source::Http {
                body: Box::new(body),
                demux: Box::default(),
            })
        }
    }

    /// The next event; `Ok(None)` when the upstream ends the stream.
    pub async fn next_event(&mut self) -> Result<Option<DemuxEvent>, PullError> {
        loop {
            match self {
                Source::Http { body, demux } => match demux.poll() {
                    Ok(Some(ev)) => return Ok(Some(ev)),
                    Ok(None) => match body.next_chunk().await? {
                        Some(chunk) => demux.push(&chunk),
                        None => {
                            demux.finish().map_err(|e| PullError::Flv(e.to_string()))?;
                            return Ok(None);
                        }
                    },
                    Err(e) if is_tag_local(&e) => {
                        tracing::debug!(error = %e, "skipping FLV tag");
                    }
                    Err(e) => return Err(PullError::Flv(e.to_string())),
                },
                Source::Rtmp { play, demux } => {
                    if let Some(ev) = demux.poll() {
                        return Ok(Some(ev));
                    }
                    let Some(tag) = play.next_tag().await? else {
                        return Ok(None);
                    };
                    match demux.push_tag(tag.kind.type_id(), tag.timestamp, tag.body) {
                        Ok(()) => {}
                        Err(e) if is_tag_local(&e) => {
                            tracing::debug!(error = %e, "skipping RTMP tag");
                        }
                        Err(e) => return Err(PullError::Flv(e.to_string())),
                    }
                }
            }
        }
    }
}
