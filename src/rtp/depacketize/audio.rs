//! AAC (LATM or ADTS framing) and Opus payloads back into one access unit.

use bytes::{Bytes, BytesMut};

use super::DepacketizeError;
use crate::media::Codec;
use crate::rtp::RtpView;
use crate::rtp::packetize::AacMode;

/// Concatenates the payloads of a frame's packets (no copy when there is one packet, the
/// normal case) and strips the AAC framing.
pub(super) fn access_unit(
    codec: Codec,
    mode: AacMode,
    packets: &[RtpView],
) -> Result<Bytes, DepacketizeError> {
    let stream = match packets {
        [one] => one.payload.clone(),
        many => {
            let mut b = BytesMut::with_capacity(many.iter().map(|p| p.payload.len()).sum());
            for p in many {
                b.extend_from_slice(&p.payload);
            }
            b.freeze()
        }
    };
    if stream.is_empty() {
        return Err(DepacketizeError::EmptyPayload(
            packets.first().map_or(0, |p| p.sequence),
        ));
    }
    match (codec, mode) {
        (Codec::Opus, _) => Ok(stream),
        (Codec::Aac, AacMode::Latm) => latm(stream),
        (Codec::Aac, AacMode::Adts) => adts(stream),
        (other, _) => Err(DepacketizeError::UnsupportedCodec(other)),
    }
}

/// One `PayloadLengthInfo` + `PayloadMux` (RFC 6416, cpresent=0, one subframe).
fn latm(stream: Bytes) -> Result<Bytes, DepacketizeError> {
    let mut declared = 0usize;
    let mut pos = 0;
    loop {
        let Some(&b) = stream.get(pos) else {
            return Err(DepacketizeError::LatmLength {
                declared,
                available: 0,
            });
        };
        pos += 1;
        declared += usize::from(b);
        if b != 0xFF {
            break;
        }
    }
    let available = stream.len() - pos;
    if declared != available || declared == 0 {
        return Err(DepacketizeError::LatmLength {
            declared,
            available,
        });
    }
    Ok(stream.slice(pos..))
}

/// One ADTS frame (with or without CRC) to its raw access unit.
fn adts(stream: Bytes) -> Result<Bytes, DepacketizeError> {
    let Some(&[s0, s1, _, s3, s4, s5, _]) = stream.get(..7) else {
        return Err(DepacketizeError::NotAdts);
    };
    if s0 != 0xFF || s1 & 0xF6 != 0xF0 {
        return Err(DepacketizeError::NotAdts);
    }
    let header = if s1 & 1 == 1 { 7 } else { 9 };
    let declared = (usize::from(s3 & 3) << 11) | (usize::from(s4) << 3) | usize::from(s5 >> 5);
    if declared != stream.len() || declared <= header {
        return Err(DepacketizeError::AdtsLength {
            declared,
            available: stream.len(),
        });
    }
    Ok(stream.slice(header..))
}
