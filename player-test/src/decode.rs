//! Optional decode check (`decode` feature): rebuild each released video frame with
//! `rtmlive::rtp::depacketize` and feed it to openh264, so "first frame" can mean the first
//! decoded picture rather than the first complete keyframe.

use rtmlive::media::Codec;
use rtmlive::rtp::depacketize::{Depacketizer, DepacketizerConfig};
use rtmlive::rtp::{ExtensionIds, RtpView};

use crate::jitter::AssembledFrame;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the decode check supports H.264 only (stream is {0:?})")]
    Unsupported(Option<Codec>),
    #[error("openh264: {0}")]
    Decoder(String),
}

/// An H.264 decoder fed with assembled frames.
pub struct VideoDecoder {
    ids: ExtensionIds,
    depacketizer: Depacketizer,
    decoder: openh264::decoder::Decoder,
    errors: u64,
}

impl VideoDecoder {
    pub fn new(codec: Option<Codec>, ids: ExtensionIds) -> Result<Self, DecodeError> {
        if codec != Some(Codec::H264) {
            return Err(DecodeError::Unsupported(codec));
        }
        Ok(Self {
            ids,
            depacketizer: Depacketizer::new(DepacketizerConfig::video(Codec::H264)),
            decoder: openh264::decoder::Decoder::new()
                .map_err(|e| DecodeError::Decoder(e.to_string()))?,
            errors: 0,
        })
    }

    /// Decodes one frame; true when a picture came out.
    pub fn decode(&mut self, frame: &AssembledFrame) -> bool {
        let views: Result<Vec<RtpView>, _> = frame
            .packets
            .iter()
            .map(|p| RtpView::parse(p.raw.clone(), &self.ids))
            .collect();
        let Ok(views) = views else {
            self.errors += 1;
            return false;
        };
        let Ok(f) = self.depacketizer.depacketize(&views) else {
            self.errors += 1;
            return false;
        };
        match self.decoder.decode(&f.frame.data.to_annex_b()) {
            Ok(Some(_)) => true,
            Ok(None) => false,
            Err(_) => {
                self.errors += 1;
                false
            }
        }
    }

    /// Frames that failed to depacketize or decode.
    pub fn errors(&self) -> u64 {
        self.errors
    }
}
