//! A parsed RTP packet (RFC 3550) with its RTM extensions, borrowing the packet's `Bytes`.

use std::ops::Range;

use bytes::Bytes;

use super::ext::{BlockError, Elements, ExtError, ExtensionIds, RtmExtensions};

/// Errors parsing an RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("packet of {0} bytes is shorter than the 12-byte RTP header")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    #[error("CSRC list or extension header runs past the packet end")]
    TruncatedHeader,
    #[error("extension block of {words} words runs past the packet end")]
    TruncatedExtension { words: u16 },
    #[error("padding count {pad} does not fit a payload of {available} bytes")]
    BadPadding { pad: u8, available: usize },
    #[error("header extension: {0}")]
    Extension(#[from] ExtError),
}

/// A parsed RTP packet. Cheap to clone (the payload is a slice of the packet's `Bytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpView {
    /// The whole packet as received.
    pub packet: Bytes,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Number of CSRCs (their values are at `packet[12..12 + 4 × csrc_count]`).
    pub csrc_count: u8,
    /// Extension block profile and the byte range of its data in `packet`, when X is set.
    pub extension: Option<(u16, Range<usize>)>,
    /// The RTM extension values `ids` negotiated.
    pub rtm: RtmExtensions,
    /// Payload, without padding.
    pub payload: Bytes,
    /// Number of padding bytes removed from the end.
    pub padding: u8,
}

impl RtpView {
    /// Parses `packet`, interpreting the extension IDs `ids` negotiated. Never panics; every
    /// malformation is an [`RtpError`].
    pub fn parse(packet: Bytes, ids: &ExtensionIds) -> Result<RtpView, RtpError> {
        let b = &packet[..];
        let [b0, b1, s0, s1, t0, t1, t2, t3, c0, c1, c2, c3, ..] = *b else {
            return Err(RtpError::TooShort(b.len()));
        };
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = b0 & 0x20 != 0;
        let has_ext = b0 & 0x10 != 0;
        let csrc_count = b0 & 0x0F;
        let mut pos = 12 + 4 * usize::from(csrc_count);
        if pos > b.len() {
            return Err(RtpError::TruncatedHeader);
        }
        let mut extension = None;
        let mut rtm = RtmExtensions::default();
        if has_ext {
            let Some(&[p0, p1, w0, w1]) = b.get(pos..pos + 4) else {
                return Err(RtpError::TruncatedHeader);
            };
            let profile = u16::from_be_bytes([p0, p1]);
            let words = u16::from_be_bytes([w0, w1]);
            let start = pos + 4;
            let end = start + 4 * usize::from(words);
            let Some(data) = b.get(start..end) else {
                return Err(RtpError::TruncatedExtension { words });
            };
            // Non-RFC 8285 profiles are legal RTP; they just carry nothing we understand.
            if super::ext::Form::from_profile(profile).is_some() {
                rtm = RtmExtensions::parse(profile, data, ids)?;
            }
            extension = Some((profile, start..end));
            pos = end;
        }
        let mut end = b.len();
        let mut padding = 0;
        if has_padding {
            let pad = b[b.len() - 1];
            let available = end - pos;
            if pad == 0 || usize::from(pad) > available {
                return Err(RtpError::BadPadding { pad, available });
            }
            end -= usize::from(pad);
            padding = pad;
        }
        let payload = packet.slice(pos..end);
        Ok(RtpView {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7F,
            sequence: u16::from_be_bytes([s0, s1]),
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            ssrc: u32::from_be_bytes([c0, c1, c2, c3]),
            csrc_count,
            extension,
            rtm,
            payload,
            padding,
            packet,
        })
    }

    /// Byte range in [`Self::packet`] of the value of extension element `id`, if present:
    /// lets a session that rewrites timestamps or sequence numbers patch its copy in place.
    pub fn extension_value_range(&self, id: u8) -> Result<Option<Range<usize>>, BlockError> {
        let Some((profile, range)) = &self.extension else {
            return Ok(None);
        };
        let Some(data) = self.packet.get(range.clone()) else {
            return Ok(None);
        };
        for el in Elements::new(*profile, data)? {
            let el = el?;
            if el.id == id {
                let start = range.start + el.offset;
                return Ok(Some(start..start + el.value.len()));
            }
        }
        Ok(None)
    }
}

/// Byte range of the value of extension element `id` in a raw RTP packet, without a full
/// parse: for a session that rewrites timestamps or sequence numbers in its copy of a
/// [`MediaPacket`](super::MediaPacket) (decoding-timestamp shares the RTP timestamp's clock and
/// origin, so a timestamp shift must be applied to it as well). `None` when the packet has no
/// such element or is malformed.
pub fn extension_value_range(packet: &[u8], id: u8) -> Option<Range<usize>> {
    let &b0 = packet.first()?;
    if b0 >> 6 != 2 || b0 & 0x10 == 0 {
        return None;
    }
    let pos = 12 + 4 * usize::from(b0 & 0x0F);
    let &[p0, p1, w0, w1] = packet.get(pos..pos + 4)? else {
        return None;
    };
    let start = pos + 4;
    let end = start + 4 * usize::from(u16::from_be_bytes([w0, w1]));
    let data = packet.get(start..end)?;
    for el in Elements::new(u16::from_be_bytes([p0, p1]), data).ok()? {
        let el = el.ok()?;
        if el.id == id {
            return Some(start + el.offset..start + el.offset + el.value.len());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_csrc_extension_padding() {
        let mut p = vec![
            0xB1, 0xE0, 0x12, 0x34, 0, 0, 0x03, 0xE8, 0xDE, 0xAD, 0xBE, 0xEF,
        ];
        p.extend_from_slice(&[0, 0, 0, 9]); // one CSRC
        p.extend_from_slice(&[0x10, 0x00, 0, 2, 18, 4, 0, 0, 0x01, 0x2C, 0, 0]);
        p.extend_from_slice(b"hello");
        p.extend_from_slice(&[0, 0, 3]);
        let v = RtpView::parse(Bytes::from(p), &ExtensionIds::default()).unwrap();
        assert!(v.marker);
        assert_eq!(v.payload_type, 0x60);
        assert_eq!(v.sequence, 0x1234);
        assert_eq!(v.timestamp, 1000);
        assert_eq!(v.ssrc, 0xDEADBEEF);
        assert_eq!(v.csrc_count, 1);
        assert_eq!(v.rtm.decoding_timestamp, Some(300));
        assert_eq!(&v.payload[..], b"hello");
        assert_eq!(v.padding, 3);
        assert_eq!(v.extension_value_range(18).unwrap(), Some(22..26));
        assert_eq!(extension_value_range(&v.packet, 18), Some(22..26));
        assert_eq!(extension_value_range(&v.packet, 19), None);
        assert_eq!(extension_value_range(&v.packet[..20], 18), None);
    }

    #[test]
    fn malformed_packets_are_errors() {
        let ids = ExtensionIds::default();
        assert_eq!(
            RtpView::parse(Bytes::from_static(&[0x80; 5]), &ids),
            Err(RtpError::TooShort(5))
        );
        assert_eq!(
            RtpView::parse(Bytes::from_static(&[0x40; 12]), &ids),
            Err(RtpError::Version(1))
        );
        let p = [0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            RtpView::parse(Bytes::copy_from_slice(&p), &ids),
            Err(RtpError::TruncatedHeader)
        );
        let p = [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0, 1];
        assert_eq!(
            RtpView::parse(Bytes::copy_from_slice(&p), &ids),
            Err(RtpError::TruncatedExtension { words: 1 })
        );
        let p = [0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5];
        assert!(matches!(
            RtpView::parse(Bytes::copy_from_slice(&p), &ids),
            Err(RtpError::BadPadding { .. })
        ));
    }
}
