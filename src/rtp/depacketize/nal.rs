//! H.264 (RFC 6184) and H.265 (RFC 7798) payloads back into NAL units. Single NAL units and
//! aggregated units are returned as slices of the packets (no copy); fragmented units are
//! reassembled into one new buffer each.

use bytes::{BufMut, Bytes, BytesMut};

use super::DepacketizeError;
use crate::media::{Codec, FrameKind};
use crate::rtp::RtpView;
use crate::rtp::packetize::{h264, h265};

/// An open fragmented NAL unit.
#[derive(Default)]
struct Fragments(Option<BytesMut>);

impl Fragments {
    fn fragment(
        &mut self,
        header: &[u8],
        body: &[u8],
        start: bool,
        end: bool,
        nals: &mut Vec<Bytes>,
    ) -> Result<(), DepacketizeError> {
        if start {
            if self.0.is_some() {
                return Err(DepacketizeError::NestedFragment);
            }
            let mut b = BytesMut::with_capacity(header.len() + body.len() * 4);
            b.put_slice(header);
            self.0 = Some(b);
        }
        let Some(open) = self.0.as_mut() else {
            return Err(DepacketizeError::FragmentWithoutStart);
        };
        open.put_slice(body);
        if end && let Some(done) = self.0.take() {
            nals.push(done.freeze());
        }
        Ok(())
    }

    fn check_closed(&self) -> Result<(), DepacketizeError> {
        if self.0.is_some() {
            Err(DepacketizeError::UnterminatedFragment)
        } else {
            Ok(())
        }
    }
}

/// Splits the `(u16 size, NAL unit)*` list of an aggregation packet starting at `pos`.
fn aggregate(
    payload: &Bytes,
    mut pos: usize,
    min_nal: usize,
    nals: &mut Vec<Bytes>,
) -> Result<(), DepacketizeError> {
    if pos >= payload.len() {
        return Err(DepacketizeError::TruncatedAggregate(pos));
    }
    while pos < payload.len() {
        let Some(&[a, b]) = payload.get(pos..pos + 2) else {
            return Err(DepacketizeError::TruncatedAggregate(pos));
        };
        let size = usize::from(u16::from_be_bytes([a, b]));
        let start = pos + 2;
        if size < min_nal || start + size > payload.len() {
            return Err(DepacketizeError::TruncatedAggregate(pos));
        }
        nals.push(payload.slice(start..start + size));
        pos = start + size;
    }
    Ok(())
}

/// H.264 packets (mode 1: single NAL, STAP-A, FU-A) to NAL units.
pub(super) fn h264(packets: &[RtpView]) -> Result<Vec<Bytes>, DepacketizeError> {
    let mut nals = Vec::new();
    let mut fu = Fragments::default();
    for p in packets {
        let payload = &p.payload;
        let Some(&b0) = payload.first() else {
            return Err(DepacketizeError::EmptyPayload(p.sequence));
        };
        match h264::nal_type(b0) {
            1..=23 => {
                fu.check_closed()?;
                nals.push(payload.clone());
            }
            h264::STAP_A => {
                fu.check_closed()?;
                aggregate(payload, 1, 1, &mut nals)?;
            }
            h264::FU_A => {
                let Some(&fuh) = payload.get(1) else {
                    return Err(DepacketizeError::TruncatedFragment);
                };
                let header = [(b0 & 0xE0) | (fuh & 0x1F)];
                fu.fragment(
                    &header,
                    &payload[2..],
                    fuh & 0x80 != 0,
                    fuh & 0x40 != 0,
                    &mut nals,
                )?;
            }
            t => return Err(DepacketizeError::UnsupportedPacketType(t)),
        }
    }
    if fu.0.is_some() {
        return Err(DepacketizeError::UnterminatedFragment);
    }
    Ok(nals)
}

/// H.265 packets (single NAL, AP, FU; no DONL) to NAL units.
pub(super) fn h265(packets: &[RtpView]) -> Result<Vec<Bytes>, DepacketizeError> {
    let mut nals = Vec::new();
    let mut fu = Fragments::default();
    for p in packets {
        let payload = &p.payload;
        let Some(&[b0, b1]) = payload.get(..2) else {
            return Err(DepacketizeError::EmptyPayload(p.sequence));
        };
        match h265::nal_type(b0) {
            0..=47 => {
                fu.check_closed()?;
                nals.push(payload.clone());
            }
            h265::AP => {
                fu.check_closed()?;
                aggregate(payload, 2, 2, &mut nals)?;
            }
            h265::FU => {
                let Some(&fuh) = payload.get(2) else {
                    return Err(DepacketizeError::TruncatedFragment);
                };
                let header = [(b0 & 0x81) | ((fuh & 0x3F) << 1), b1];
                fu.fragment(
                    &header,
                    &payload[3..],
                    fuh & 0x80 != 0,
                    fuh & 0x40 != 0,
                    &mut nals,
                )?;
            }
            t => return Err(DepacketizeError::UnsupportedPacketType(t)),
        }
    }
    if fu.0.is_some() {
        return Err(DepacketizeError::UnterminatedFragment);
    }
    Ok(nals)
}

/// The frame kind from NAL unit types, when frame-type was not negotiated: IDR (H.264) or IRAP
/// (H.265) makes a keyframe; anything else is taken as P (telling B from P would need the slice
/// header, which is what frame-type saves the player).
pub(super) fn guess_kind(codec: Codec, nals: &[Bytes]) -> FrameKind {
    let key = nals.iter().filter_map(|n| n.first()).any(|&b| match codec {
        Codec::H264 => h264::nal_type(b) == h264::IDR,
        _ => h265::is_irap(h265::nal_type(b)),
    });
    if key {
        FrameKind::Key
    } else {
        FrameKind::Inter
    }
}
