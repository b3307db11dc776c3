//! H.264 (RFC 6184) and H.265 (RFC 7798) payloads back into NAL units. Single NAL units and
//! aggregated units are returned as slices of the packets (no copy); fragmented units are
//! reassembled into one new buffer each.

use bytes::{BufMut, Bytes, BytesMut};

use super::DepacketizeError;
use crate::media::{Codec, FrameKind};
use crate::rtp::RtpView;
use crate::rtp::packetize::NalCodec;
use crate::rtp::packetize::h264::{self, H264};
use crate::rtp::packetize::h265::{self, H265};

/// An open fragmented NAL unit.
#[derive(Default)]
struct Fragments(Option<BytesMut>);

impl Fragments {
    /// Adds one FU packet: a start fragment opens a NAL unit (with its header rebuilt from the
    /// payload and FU headers), an end fragment completes it into `nals`.
    fn fragment<C: NalCodec>(
        &mut self,
        payload: &[u8],
        nals: &mut Vec<Bytes>,
    ) -> Result<(), DepacketizeError> {
        let Some(&fu_header) = payload.get(C::HEADER_LEN) else {
            return Err(DepacketizeError::TruncatedFragment);
        };
        let body = &payload[C::FU_OVERHEAD..];
        if fu_header & 0x80 != 0 {
            if self.0.is_some() {
                return Err(DepacketizeError::NestedFragment);
            }
            let mut b = BytesMut::with_capacity(C::HEADER_LEN + body.len() * 4);
            C::write_unfragmented_header(payload, fu_header, &mut b);
            self.0 = Some(b);
        }
        let Some(open) = self.0.as_mut() else {
            return Err(DepacketizeError::FragmentWithoutStart);
        };
        open.put_slice(body);
        if fu_header & 0x40 != 0
            && let Some(done) = self.0.take()
        {
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
    nal_units::<H264>(packets)
}

/// H.265 packets (single NAL, AP, FU; no DONL) to NAL units.
pub(super) fn h265(packets: &[RtpView]) -> Result<Vec<Bytes>, DepacketizeError> {
    nal_units::<H265>(packets)
}

/// Single NAL unit, aggregation and fragmentation packets to NAL units: the same three payload
/// structures in both formats, which differ only in header layout ([`NalCodec`]).
fn nal_units<C: NalCodec>(packets: &[RtpView]) -> Result<Vec<Bytes>, DepacketizeError> {
    let mut nals = Vec::new();
    let mut fu = Fragments::default();
    for p in packets {
        let payload = &p.payload;
        let Some(header) = payload.get(..C::HEADER_LEN) else {
            return Err(DepacketizeError::EmptyPayload(p.sequence));
        };
        let t = C::nal_type(header[0]);
        if C::can_be_single(payload) {
            fu.check_closed()?;
            nals.push(payload.clone());
        } else if t == C::AGG_TYPE {
            fu.check_closed()?;
            aggregate(payload, C::HEADER_LEN, C::HEADER_LEN, &mut nals)?;
        } else if t == C::FU_TYPE {
            fu.fragment::<C>(payload, &mut nals)?;
        } else {
            return Err(DepacketizeError::UnsupportedPacketType(t));
        }
    }
    fu.check_closed()?;
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
