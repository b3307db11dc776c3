//! The FLV byte-stream demuxer: file header, PreviousTagSize fields and tag framing around
//! [`TagDemuxer`].

use bytes::{Buf, BytesMut};

use super::{DemuxEvent, FILE_HEADER_LEN, FlvError, TAG_HEADER_LEN, TagDemuxer};

/// The flags of the FLV file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvHeader {
    pub version: u8,
    pub has_audio: bool,
    pub has_video: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for the 9-byte file header.
    Header,
    /// Skipping the rest of the header (data offset beyond 9) and PreviousTagSize0.
    Skip(usize),
    /// At a tag boundary.
    Tag,
    /// A framing error: the stream cannot be resynchronised.
    Failed(FlvError),
}

/// Incremental FLV demuxer. Push bytes in any chunking with [`FlvDemuxer::push`], then call
/// [`FlvDemuxer::poll`] until it returns `Ok(None)` (needs more bytes).
///
/// Each complete tag is split off the input buffer as one `Bytes`, and frame payloads (NAL
/// units, AAC frames) are slices of it: the only copy is the one `push` makes of the chunk.
/// No allocation is sized from a length field: the buffer holds what was pushed, and a tag is
/// at most 16 MiB (24-bit size).
#[derive(Debug)]
pub struct FlvDemuxer {
    buf: BytesMut,
    state: State,
    header: Option<FlvHeader>,
    tags: TagDemuxer,
}

impl Default for FlvDemuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvDemuxer {
    pub fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            state: State::Header,
            header: None,
            tags: TagDemuxer::new(),
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        if !matches!(self.state, State::Failed(_)) {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// The file header, once parsed.
    pub fn header(&self) -> Option<FlvHeader> {
        self.header
    }

    /// The tag-level demuxer (current video/audio configuration).
    pub fn tags(&self) -> &TagDemuxer {
        &self.tags
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Call at end of input: an error if the stream stopped inside the header or a tag.
    pub fn finish(&self) -> Result<(), FlvError> {
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            State::Tag if self.buf.is_empty() => Ok(()),
            _ => Err(FlvError::Truncated(self.buf.len())),
        }
    }

    /// The next event. `Ok(None)` means more input is needed. A tag-level error rejects that
    /// tag only (the next call continues after it); a framing error is returned on every call.
    pub fn poll(&mut self) -> Result<Option<DemuxEvent>, FlvError> {
        loop {
            if let Some(ev) = self.tags.poll() {
                return Ok(Some(ev));
            }
            match self.state.clone() {
                State::Failed(e) => return Err(e),
                State::Header => {
                    let Some(h) = self.buf.get(..FILE_HEADER_LEN) else {
                        return Ok(None);
                    };
                    if &h[..3] != b"FLV" {
                        return Err(self.fail(FlvError::BadSignature));
                    }
                    let header = FlvHeader {
                        version: h[3],
                        has_audio: h[4] & 4 != 0,
                        has_video: h[4] & 1 != 0,
                    };
                    let offset = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
                    // Real files use 9; anything past 64 KiB is garbage, not a header extension.
                    if !(9..=65536).contains(&offset) {
                        return Err(self.fail(FlvError::BadDataOffset(offset)));
                    }
                    self.header = Some(header);
                    self.buf.advance(FILE_HEADER_LEN);
                    self.state = State::Skip(offset as usize - FILE_HEADER_LEN + 4);
                }
                State::Skip(n) => {
                    let k = n.min(self.buf.len());
                    self.buf.advance(k);
                    if k < n {
                        self.state = State::Skip(n - k);
                        return Ok(None);
                    }
                    self.state = State::Tag;
                }
                State::Tag => {
                    let Some(h) = self.buf.get(..TAG_HEADER_LEN) else {
                        return Ok(None);
                    };
                    let filter = h[0] & 0x20 != 0;
                    let tag_type = h[0] & 0x1f;
                    let size = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
                    let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
                    // Tag header, body, and the PreviousTagSize that follows it.
                    let total = TAG_HEADER_LEN + size + 4;
                    if self.buf.len() < total {
                        return Ok(None);
                    }
                    let mut tag = self.buf.split_to(total).freeze();
                    tag.advance(TAG_HEADER_LEN);
                    tag.truncate(size);
                    // PreviousTagSize is not checked: muxers get it wrong and it carries no data.
                    if filter {
                        return Err(FlvError::Encrypted);
                    }
                    self.tags.push_tag(tag_type, timestamp, tag)?;
                }
            }
        }
    }

    fn fail(&mut self, e: FlvError) -> FlvError {
        self.state = State::Failed(e.clone());
        self.buf = BytesMut::new();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_flv() {
        let mut d = FlvDemuxer::new();
        d.push(b"GIF89a\x00\x00\x00\x00");
        assert_eq!(d.poll(), Err(FlvError::BadSignature));
        assert_eq!(d.poll(), Err(FlvError::BadSignature));
    }

    #[test]
    fn header_only_then_truncated() {
        let mut d = FlvDemuxer::new();
        d.push(&[b'F', b'L', b'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]);
        assert_eq!(d.poll(), Ok(None));
        assert_eq!(
            d.header(),
            Some(FlvHeader {
                version: 1,
                has_audio: true,
                has_video: true
            })
        );
        assert_eq!(d.finish(), Ok(()));
        d.push(&[9, 0, 0]);
        assert_eq!(d.poll(), Ok(None));
        assert_eq!(d.finish(), Err(FlvError::Truncated(3)));
    }
}
