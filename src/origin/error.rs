//! Why a pull from an upstream failed.

use std::time::Duration;

use super::http::HttpError;
use super::url::UrlError;
use crate::rtmp::RtmpError;

/// Why a pull failed. Every variant counts as one failure of the upstream in
/// [`super::health::HealthTracker`], except [`PullError::Ended`] once media has flowed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("bad upstream URL: {0}")]
    Url(#[from] UrlError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("no data within {0:?} of the request")]
    FirstByteTimeout(Duration),
    #[error("no keyframe within {0:?} of the request")]
    FirstKeyframeTimeout(Duration),
    #[error("stalled: no data for {0:?}")]
    Stall(Duration),
    #[error("HTTP: {0}")]
    Http(#[from] HttpError),
    #[error("upstream answered HTTP {0}")]
    HttpStatus(u16),
    #[error("more than {0} redirects")]
    TooManyRedirects(u8),
    #[error("RTMP: {0}")]
    Rtmp(#[from] RtmpError),
    #[error("FLV: {0}")]
    Flv(String),
    #[error("upstream closed the stream")]
    Ended,
    #[error("no upstream configured or available")]
    NoUpstream,
}
