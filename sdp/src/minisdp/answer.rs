//! Answering a decoded miniSDP offer in the client's own version.
//!
//! The offer is expanded to SDP, answered by [`crate::sdp::answer::build_answer`] (one code
//! path for miniSDP and WHEP) and compressed back with the offer's version, seq and URL.

use super::{CompressError, CompressOptions, MiniSdp, SdpKind, Status};
use crate::sdp::answer::{AnswerError, AnswerParams, build_answer};

/// Packet attributes of an answer that are not in the SDP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyAttrs {
    pub status: Status,
    /// `None` uses the offer's ICE ufrag, the reference's convention (the client then
    /// sees `<server ip>:<server ufrag>:<client ufrag>`).
    pub svrsig: Option<String>,
    /// 0-RTT: the edge starts sending before the ICE check completes.
    pub imm_send: bool,
    /// A resumption ticket for the client's next 0-RTT offer (extended format only).
    pub ticket: Option<Vec<u8>>,
}

impl Default for Status {
    fn default() -> Self {
        Status::OK
    }
}

/// Why an offer could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MiniAnswerError {
    #[error(transparent)]
    Answer(#[from] AnswerError),
    #[error(transparent)]
    Compress(#[from] CompressError),
}

/// Builds the answer to `offer` (same version, seq and URL; push/pull echoed).
pub fn answer_offer(
    offer: &MiniSdp,
    params: &AnswerParams,
    attrs: &ReplyAttrs,
) -> Result<MiniSdp, MiniAnswerError> {
    let answer = build_answer(&offer.to_sdp(), params)?;
    let opts = CompressOptions {
        seq: offer.seq,
        status: attrs.status,
        svrsig: attrs
            .svrsig
            .clone()
            .unwrap_or_else(|| offer.ice_ufrag.clone()),
        imm_send: attrs.imm_send,
        aac_fmtp: offer.aac_fmtp,
        push_pull: offer.push_pull,
        ticket: attrs.ticket.clone(),
        ..CompressOptions::new(offer.version, SdpKind::Answer, &offer.url)
    };
    Ok(MiniSdp::from_sdp(&answer, &opts)?)
}
