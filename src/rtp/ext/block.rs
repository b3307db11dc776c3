//! The generic RFC 8285 header-extension block: one-byte (`0xBEDE`) and two-byte (`0x100X`)
//! forms, parsing and writing.
//!
//! The block that follows the fixed RTP header (and CSRCs) is
//! `profile: u16, length: u16 (in 32-bit words), data: [u8; 4 × length]`. In the one-byte form
//! each element is `ID(4 bits) | L(4 bits)` followed by `L + 1` value bytes (IDs 1..=14, values
//! 1..=16 bytes); in the two-byte form it is `ID: u8, L: u8` followed by `L` bytes (IDs 1..=255,
//! values 0..=255 bytes). Zero bytes between elements are padding.

use bytes::BufMut;

/// Profile of the one-byte form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Profile of the two-byte form, with the four "appbits" zero (we never set them).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;
/// The largest ID the one-byte form can carry (15 is reserved, 0 is padding).
pub const ONE_BYTE_MAX_ID: u8 = 14;
/// The largest value the one-byte form can carry.
pub const ONE_BYTE_MAX_LEN: usize = 16;

/// Where the extension block sits in a raw RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// Length of the fixed header and CSRCs: the block starts here.
    pub header_len: usize,
    pub profile: u16,
    /// The block's data (after its 4-byte header): `data_start..data_end` in the packet.
    pub data_start: usize,
    pub data_end: usize,
}

/// Finds the extension block of the RTP packet `pkt`: `Ok(None)` when the X bit is clear,
/// `Err(())` when the packet is too short for its header, CSRCs or announced block.
#[allow(clippy::result_unit_err)]
pub fn locate(pkt: &[u8]) -> Result<Option<Located>, ()> {
    let &b0 = pkt.first().ok_or(())?;
    let header_len = 12 + 4 * usize::from(b0 & 0x0F);
    if pkt.len() < header_len {
        return Err(());
    }
    if b0 & 0x10 == 0 {
        return Ok(None);
    }
    let ext = pkt.get(header_len..header_len + 4).ok_or(())?;
    let profile = u16::from_be_bytes([ext[0], ext[1]]);
    let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    let data_start = header_len + 4;
    let data_end = data_start + 4 * words;
    if pkt.len() < data_end {
        return Err(());
    }
    Ok(Some(Located {
        header_len,
        profile,
        data_start,
        data_end,
    }))
}

/// Errors of the generic block layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("extension profile {0:#06x} is neither one-byte (0xBEDE) nor two-byte (0x100X)")]
    UnknownProfile(u16),
    #[error("extension element at offset {offset} runs past the block end")]
    Truncated { offset: usize },
    #[error("one-byte extension element with reserved id 15 at offset {offset}")]
    ReservedId { offset: usize },
    #[error("extension id {0} is not valid in this form")]
    InvalidId(u8),
    #[error("extension value of {len} bytes does not fit this form (id {id})")]
    ValueTooLong { id: u8, len: usize },
    #[error("empty extension value (id {0}) needs the two-byte form")]
    EmptyValue(u8),
    #[error("extension block would be {0} bytes, more than 4 × 65535")]
    BlockTooLong(usize),
}

/// Which RFC 8285 form a block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    OneByte,
    TwoByte,
}

impl Form {
    /// The form a profile value announces, or `None` for a non-RFC 8285 profile.
    pub fn from_profile(profile: u16) -> Option<Form> {
        if profile == ONE_BYTE_PROFILE {
            Some(Form::OneByte)
        } else if profile & 0xFFF0 == TWO_BYTE_PROFILE {
            Some(Form::TwoByte)
        } else {
            None
        }
    }

    /// The profile value written for this form.
    pub fn profile(self) -> u16 {
        match self {
            Form::OneByte => ONE_BYTE_PROFILE,
            Form::TwoByte => TWO_BYTE_PROFILE,
        }
    }

    /// Bytes of element header in front of each value.
    pub fn element_header_len(self) -> usize {
        match self {
            Form::OneByte => 1,
            Form::TwoByte => 2,
        }
    }

    /// The smallest form that can carry every `(id, value length)`: one-byte when all IDs are
    /// 1..=14 and all values 1..=16 bytes, two-byte otherwise.
    pub fn for_elements(elements: impl IntoIterator<Item = (u8, usize)>) -> Form {
        let fits = elements.into_iter().all(|(id, len)| {
            (1..=ONE_BYTE_MAX_ID).contains(&id) && (1..=ONE_BYTE_MAX_LEN).contains(&len)
        });
        if fits { Form::OneByte } else { Form::TwoByte }
    }
}

/// Bytes the whole block (4-byte block header, elements, padding to 32 bits) takes on the wire
/// for elements of the given value lengths. Zero when there are no elements: the X bit stays
/// clear and no block is written.
pub fn block_len(form: Form, value_lens: impl IntoIterator<Item = usize>) -> usize {
    let mut n = 0;
    let mut any = false;
    for len in value_lens {
        any = true;
        n += form.element_header_len() + len;
    }
    if any { 4 + n.next_multiple_of(4) } else { 0 }
}

/// Writes a complete block (header, elements, zero padding). Returns the offset, relative to the
/// start of what this call wrote, of each element's value (same order as `elements`) through
/// `value_offsets` so callers can point at values (for in-place patching).
pub fn write_block(
    form: Form,
    elements: &[(u8, &[u8])],
    out: &mut impl BufMut,
    mut value_offsets: impl FnMut(usize, usize),
) -> Result<usize, BlockError> {
    if elements.is_empty() {
        return Ok(0);
    }
    for &(id, value) in elements {
        validate(form, id, value.len())?;
    }
    let total = block_len(form, elements.iter().map(|(_, v)| v.len()));
    let words = (total - 4) / 4;
    let words = u16::try_from(words).map_err(|_| BlockError::BlockTooLong(total))?;
    out.put_u16(form.profile());
    out.put_u16(words);
    let mut at = 4;
    for (i, &(id, value)) in elements.iter().enumerate() {
        match form {
            Form::OneByte => out.put_u8((id << 4) | (value.len() as u8 - 1)),
            Form::TwoByte => {
                out.put_u8(id);
                out.put_u8(value.len() as u8);
            }
        }
        at += form.element_header_len();
        value_offsets(i, at);
        out.put_slice(value);
        at += value.len();
    }
    out.put_bytes(0, total - at);
    Ok(total)
}

/// Checks that `(id, len)` can be written in `form`.
pub fn validate(form: Form, id: u8, len: usize) -> Result<(), BlockError> {
    match form {
        Form::OneByte => {
            if !(1..=ONE_BYTE_MAX_ID).contains(&id) {
                return Err(BlockError::InvalidId(id));
            }
            if len == 0 {
                return Err(BlockError::EmptyValue(id));
            }
            if len > ONE_BYTE_MAX_LEN {
                return Err(BlockError::ValueTooLong { id, len });
            }
        }
        Form::TwoByte => {
            if id == 0 {
                return Err(BlockError::InvalidId(id));
            }
            if len > 255 {
                return Err(BlockError::ValueTooLong { id, len });
            }
        }
    }
    Ok(())
}

/// One element of a parsed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    pub id: u8,
    pub value: &'a [u8],
    /// Offset of `value` within the block data (after the 4-byte block header).
    pub offset: usize,
}

/// Iterator over the elements of a block's data (the bytes after the 4-byte block header).
/// Yields an error once and then stops if the data is malformed.
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    form: Form,
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Elements<'a> {
    /// Starts iterating `data` of a block announced with `profile`.
    pub fn new(profile: u16, data: &'a [u8]) -> Result<Self, BlockError> {
        let form = Form::from_profile(profile).ok_or(BlockError::UnknownProfile(profile))?;
        Ok(Elements {
            form,
            data,
            pos: 0,
            failed: false,
        })
    }

    pub fn form(&self) -> Form {
        self.form
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Element<'a>, BlockError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let offset = self.pos;
            let &first = self.data.get(offset)?;
            if first == 0 {
                // Padding between or after elements.
                self.pos += 1;
                continue;
            }
            let (id, len, header) = match self.form {
                Form::OneByte => {
                    let id = first >> 4;
                    if id == 15 {
                        // RFC 8285: id 15 stops processing of the block.
                        self.failed = true;
                        return Some(Err(BlockError::ReservedId { offset }));
                    }
                    (id, usize::from(first & 0x0F) + 1, 1)
                }
                Form::TwoByte => {
                    let Some(&len) = self.data.get(offset + 1) else {
                        self.failed = true;
                        return Some(Err(BlockError::Truncated { offset }));
                    };
                    (first, usize::from(len), 2)
                }
            };
            let start = offset + header;
            let Some(value) = self.data.get(start..start + len) else {
                self.failed = true;
                return Some(Err(BlockError::Truncated { offset }));
            };
            self.pos = start + len;
            return Some(Ok(Element {
                id,
                value,
                offset: start,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_round_trip() {
        let mut out = Vec::new();
        let mut offs = Vec::new();
        let n = write_block(
            Form::OneByte,
            &[(1, &[0xAA]), (14, &[1, 2, 3, 4])],
            &mut out,
            |_, o| offs.push(o),
        )
        .unwrap();
        assert_eq!(n, 12);
        assert_eq!(out, [0xBE, 0xDE, 0, 2, 0x10, 0xAA, 0xE3, 1, 2, 3, 4, 0]);
        assert_eq!(offs, [5, 7]);
        let els: Vec<_> = Elements::new(0xBEDE, &out[4..])
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(els.len(), 2);
        assert_eq!((els[1].id, els[1].value), (14, &[1u8, 2, 3, 4][..]));
    }

    #[test]
    fn two_byte_round_trip_and_empty_value() {
        let mut out = Vec::new();
        write_block(
            Form::TwoByte,
            &[(18, &[9; 4]), (200, &[])],
            &mut out,
            |_, _| {},
        )
        .unwrap();
        assert_eq!(&out[..8], &[0x10, 0x00, 0, 2, 18, 4, 9, 9]);
        let els: Vec<_> = Elements::new(0x1000, &out[4..])
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(els[1].id, 200);
        assert!(els[1].value.is_empty());
    }

    #[test]
    fn form_choice() {
        assert_eq!(Form::for_elements([(1, 4), (14, 16)]), Form::OneByte);
        assert_eq!(Form::for_elements([(18, 4)]), Form::TwoByte);
        assert_eq!(Form::for_elements([(3, 17)]), Form::TwoByte);
        assert!(write_block(Form::OneByte, &[(15, &[1])], &mut Vec::new(), |_, _| {}).is_err());
    }

    #[test]
    fn malformed_blocks_are_errors() {
        assert!(Elements::new(0x1234, &[]).is_err());
        let r: Result<Vec<_>, _> = Elements::new(0xBEDE, &[0x13, 1]).unwrap().collect();
        assert_eq!(r, Err(BlockError::Truncated { offset: 0 }));
        let r: Result<Vec<_>, _> = Elements::new(0x1000, &[5]).unwrap().collect();
        assert_eq!(r, Err(BlockError::Truncated { offset: 0 }));
        let r: Result<Vec<_>, _> = Elements::new(0xBEDE, &[0xF0]).unwrap().collect();
        assert_eq!(r, Err(BlockError::ReservedId { offset: 0 }));
    }
}
