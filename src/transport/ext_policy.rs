//! What one viewer receives of the RTP header extensions in the shared packets.
//!
//! A stream is packetized once, with the RTM extensions under the stream's ids. Viewers differ:
//! an RTM player negotiates those ids (the packets go out as they are), a browser negotiates
//! none of them (it must get plain RTP: the block is stripped), and a player may negotiate other
//! ids for the same extensions (they are renumbered; extensions it did not negotiate are
//! removed). The work happens in the copy the session makes for SRTP anyway.

use bytes::BytesMut;
use thiserror::Error;

use crate::rtp::ext::block::locate;

/// A malformed extension block in a shared packet (a packetizer bug, never network input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("RTP header extension block is malformed")]
pub struct ExtBlockError;

/// Per-viewer treatment of the header-extension block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExtensionPolicy {
    /// The viewer negotiated the stream's own ids: the block is sent unchanged.
    #[default]
    Keep,
    /// The viewer negotiated none of the stream's extensions: the block is removed.
    Strip,
    /// `map[stream id] = viewer id`, 0 = not negotiated (the element is removed).
    Remap(Box<[u8; 256]>),
}

impl ExtensionPolicy {
    /// The policy for a viewer that negotiated `pairs` of (stream id, viewer id); pairs whose
    /// extension the viewer did not negotiate are absent.
    pub fn from_pairs(pairs: &[(u8, u8)]) -> Self {
        if pairs.is_empty() {
            return ExtensionPolicy::Strip;
        }
        if pairs.iter().all(|(s, v)| s == v) {
            return ExtensionPolicy::Keep;
        }
        let mut map = Box::new([0u8; 256]);
        for &(s, v) in pairs {
            map[usize::from(s)] = v;
        }
        ExtensionPolicy::Remap(map)
    }

    pub fn is_keep(&self) -> bool {
        matches!(self, ExtensionPolicy::Keep)
    }

    /// The id the viewer knows the stream's extension `stream_id` by; 0 if it does not get it.
    pub fn viewer_id(&self, stream_id: u8) -> u8 {
        match self {
            ExtensionPolicy::Keep => stream_id,
            ExtensionPolicy::Strip => 0,
            ExtensionPolicy::Remap(map) => map[usize::from(stream_id)],
        }
    }

    /// Copies the RTP packet `src` into `out` (cleared first) with the policy applied. Returns
    /// the offset in `out` of the value of extension `track_id` (the stream id of an element
    /// whose value position the caller needs, e.g. frame-seq-range), if it survived.
    pub fn copy(
        &self,
        src: &[u8],
        out: &mut BytesMut,
        track_id: Option<u8>,
    ) -> Result<Option<usize>, ExtBlockError> {
        out.clear();
        let Some(&b0) = src.first() else {
            return Err(ExtBlockError);
        };
        let header_len = 12 + 4 * usize::from(b0 & 0x0F);
        let has_ext = b0 & 0x10 != 0;
        if src.len() < header_len {
            return Err(ExtBlockError);
        }
        if !has_ext {
            out.extend_from_slice(src);
            return Ok(None);
        }
        let map = match self {
            ExtensionPolicy::Keep => {
                out.extend_from_slice(src);
                return Ok(track_id.and_then(|id| find_value(src, id)));
            }
            ExtensionPolicy::Strip => None,
            ExtensionPolicy::Remap(map) => Some(map),
        };
        let block = locate(src)
            .map_err(|()| ExtBlockError)?
            .ok_or(ExtBlockError)?;
        let profile = block.profile;
        let body = &src[block.data_start..block.data_end];
        let payload = &src[block.data_end..];
        let Some(map) = map else {
            // Strip.
            out.extend_from_slice(&src[..header_len]);
            out[0] &= !0x10;
            out.extend_from_slice(payload);
            return Ok(None);
        };
        // Collect the surviving elements, renumbered.
        let mut kept: [(u8, usize, usize, bool); 16] = [(0, 0, 0, false); 16];
        let mut n = 0;
        let mut need_two_byte = false;
        for_each_element(profile, body, |id, start, len| {
            let to = map[usize::from(id)];
            if to != 0 && n < kept.len() {
                kept[n] = (to, start, len, track_id == Some(id));
                n += 1;
                need_two_byte |= to > 14 || len > 16 || len == 0;
            }
        })?;
        out.extend_from_slice(&src[..header_len]);
        if n == 0 {
            out[0] &= !0x10;
            out.extend_from_slice(payload);
            return Ok(None);
        }
        let block_start = out.len();
        out.extend_from_slice(if need_two_byte {
            &[0x10, 0x00, 0, 0]
        } else {
            &[0xBE, 0xDE, 0, 0]
        });
        let mut found = None;
        for &(id, start, len, wanted) in &kept[..n] {
            if need_two_byte {
                out.extend_from_slice(&[id, len as u8]);
            } else {
                out.extend_from_slice(&[(id << 4) | (len as u8 - 1)]);
            }
            if wanted {
                found = Some(out.len());
            }
            out.extend_from_slice(&body[start..start + len]);
        }
        while !(out.len() - block_start).is_multiple_of(4) {
            out.extend_from_slice(&[0]);
        }
        let words = ((out.len() - block_start - 4) / 4) as u16;
        out[block_start + 2..block_start + 4].copy_from_slice(&words.to_be_bytes());
        out.extend_from_slice(payload);
        Ok(found)
    }
}

/// Calls `f(id, value start, value len)` (offsets into `body`) for each element.
fn for_each_element(
    profile: u16,
    body: &[u8],
    mut f: impl FnMut(u8, usize, usize),
) -> Result<(), ExtBlockError> {
    let two_byte = match profile {
        0xBEDE => false,
        p if p & 0xFFF0 == 0x1000 => true,
        _ => return Ok(()),
    };
    let mut i = 0;
    while i < body.len() {
        let id = body[i];
        if id == 0 {
            i += 1;
            continue;
        }
        let (id, len, hdr) = if two_byte {
            let len = usize::from(*body.get(i + 1).ok_or(ExtBlockError)?);
            (id, len, 2)
        } else {
            if id >> 4 == 15 {
                break;
            }
            (id >> 4, usize::from(id & 0x0F) + 1, 1)
        };
        let start = i + hdr;
        if start + len > body.len() {
            return Err(ExtBlockError);
        }
        f(id, start, len);
        i = start + len;
    }
    Ok(())
}

/// Offset in `src` of the value of element `id`, if present.
fn find_value(src: &[u8], id: u8) -> Option<usize> {
    let block = locate(src).ok()??;
    let body = &src[block.data_start..block.data_end];
    let mut found = None;
    for_each_element(block.profile, body, |e, start, _| {
        if e == id && found.is_none() {
            found = Some(block.data_start + start);
        }
    })
    .ok()?;
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet with a two-byte block: id 18 (4 bytes), id 21 (4 bytes); payload 9 9.
    fn pkt() -> Vec<u8> {
        let mut b = vec![0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        b.extend_from_slice(&[0x10, 0x00, 0, 3]);
        b.extend_from_slice(&[18, 4, 1, 2, 3, 4, 21, 4, 5, 6, 7, 8]);
        b.extend_from_slice(&[9, 9]);
        b
    }

    #[test]
    fn keep_copies_and_finds() {
        let mut out = BytesMut::new();
        let at = ExtensionPolicy::Keep
            .copy(&pkt(), &mut out, Some(21))
            .unwrap();
        assert_eq!(out, pkt());
        assert_eq!(at, Some(24));
        assert_eq!(&out[24..28], &[5, 6, 7, 8]);
    }

    #[test]
    fn strip_gives_plain_rtp() {
        let mut out = BytesMut::new();
        let at = ExtensionPolicy::Strip
            .copy(&pkt(), &mut out, Some(21))
            .unwrap();
        assert_eq!(at, None);
        assert_eq!(out[0], 0x80);
        assert_eq!(&out[12..], &[9, 9]);
    }

    #[test]
    fn remap_renumbers_drops_and_picks_the_smaller_form() {
        let policy = ExtensionPolicy::from_pairs(&[(21, 3)]);
        let mut out = BytesMut::new();
        let at = policy.copy(&pkt(), &mut out, Some(21)).unwrap();
        // One-byte form: BEDE, 1 word: (3<<4 | 3) 5 6 7 8 -> 5 bytes, padded to 8.
        assert_eq!(&out[12..16], &[0xBE, 0xDE, 0, 2]);
        assert_eq!(out[16], (3 << 4) | 3);
        assert_eq!(at, Some(17));
        assert_eq!(&out[17..21], &[5, 6, 7, 8]);
        assert_eq!(&out[24..], &[9, 9]);
        assert_eq!(
            ExtensionPolicy::from_pairs(&[(18, 18)]),
            ExtensionPolicy::Keep
        );
        assert_eq!(ExtensionPolicy::from_pairs(&[]), ExtensionPolicy::Strip);
    }

    #[test]
    fn truncated_blocks_are_errors_not_panics() {
        let mut p = pkt();
        p[15] = 40;
        let policy = ExtensionPolicy::from_pairs(&[(21, 3)]);
        assert!(policy.copy(&p, &mut BytesMut::new(), None).is_err());
        assert!(
            ExtensionPolicy::Strip
                .copy(&p, &mut BytesMut::new(), None)
                .is_err()
        );
        assert!(policy.copy(&[], &mut BytesMut::new(), None).is_err());
    }
}
