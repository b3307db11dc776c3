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

/// What one RTP payload of a NAL-unit format carries.
enum Unit {
    /// One whole NAL unit: the payload itself.
    Single,
    /// An aggregation packet: `(u16 size, NAL unit)*` after a `skip`-byte header, each unit at
    /// least `min_nal` bytes.
    Aggregate { skip: usize, min_nal: usize },
    /// A fragment: the reassembled unit starts with `header[..header_len]`, this fragment's
    /// body starts at `body`.
    Fragment {
        header: [u8; 2],
        header_len: usize,
        body: usize,
        start: bool,
        end: bool,
    },
}

/// The two formats differ only in their header layouts (RFC 6184 §5.8 FU-A, RFC 7798 §4.4.3
/// FU); splitting and reassembly are shared.
trait NalFormat {
    /// Shortest payload: the payload header.
    const MIN_PAYLOAD: usize;
    fn unit(payload: &[u8]) -> Result<Unit, DepacketizeError>;
}

/// H.264, packetization mode 1: single NAL unit, STAP-A, FU-A.
struct H264;

impl NalFormat for H264 {
    const MIN_PAYLOAD: usize = 1;

    fn unit(payload: &[u8]) -> Result<Unit, DepacketizeError> {
        let b0 = payload[0];
        match h264::nal_type(b0) {
            1..=23 => Ok(Unit::Single),
            h264::STAP_A => Ok(Unit::Aggregate {
                skip: 1,
                min_nal: 1,
            }),
            h264::FU_A => {
                let &fuh = payload.get(1).ok_or(DepacketizeError::TruncatedFragment)?;
                Ok(Unit::Fragment {
                    header: [(b0 & 0xE0) | (fuh & 0x1F), 0],
                    header_len: 1,
                    body: 2,
                    start: fuh & 0x80 != 0,
                    end: fuh & 0x40 != 0,
                })
            }
            t => Err(DepacketizeError::UnsupportedPacketType(t)),
        }
    }
}

/// H.265 without DONL: single NAL unit, AP, FU.
struct H265;

impl NalFormat for H265 {
    const MIN_PAYLOAD: usize = 2;

    fn unit(payload: &[u8]) -> Result<Unit, DepacketizeError> {
        let (b0, b1) = (payload[0], payload[1]);
        match h265::nal_type(b0) {
            0..=47 => Ok(Unit::Single),
            h265::AP => Ok(Unit::Aggregate {
                skip: 2,
                min_nal: 2,
            }),
            h265::FU => {
                let &fuh = payload.get(2).ok_or(DepacketizeError::TruncatedFragment)?;
                Ok(Unit::Fragment {
                    header: [(b0 & 0x81) | ((fuh & 0x3F) << 1), b1],
                    header_len: 2,
                    body: 3,
                    start: fuh & 0x80 != 0,
                    end: fuh & 0x40 != 0,
                })
            }
            t => Err(DepacketizeError::UnsupportedPacketType(t)),
        }
    }
}

fn depacketize<F: NalFormat>(packets: &[RtpView]) -> Result<Vec<Bytes>, DepacketizeError> {
    let mut nals = Vec::new();
    let mut fu = Fragments::default();
    for p in packets {
        let payload = &p.payload;
        if payload.len() < F::MIN_PAYLOAD {
            return Err(DepacketizeError::EmptyPayload(p.sequence));
        }
        match F::unit(payload)? {
            Unit::Single => {
                fu.check_closed()?;
                nals.push(payload.clone());
            }
            Unit::Aggregate { skip, min_nal } => {
                fu.check_closed()?;
                aggregate(payload, skip, min_nal, &mut nals)?;
            }
            Unit::Fragment {
                header,
                header_len,
                body,
                start,
                end,
            } => fu.fragment(
                &header[..header_len],
                &payload[body..],
                start,
                end,
                &mut nals,
            )?,
        }
    }
    if fu.0.is_some() {
        return Err(DepacketizeError::UnterminatedFragment);
    }
    Ok(nals)
}

/// H.264 packets (mode 1: single NAL, STAP-A, FU-A) to NAL units.
pub(super) fn h264(packets: &[RtpView]) -> Result<Vec<Bytes>, DepacketizeError> {
    depacketize::<H264>(packets)
}

/// H.265 packets (single NAL, AP, FU; no DONL) to NAL units.
pub(super) fn h265(packets: &[RtpView]) -> Result<Vec<Bytes>, DepacketizeError> {
    depacketize::<H265>(packets)
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
