//! Moving a packet's RTM time values along with its RTP timestamp.
//!
//! The decoding-timestamp and reference-frame-timestamp values share the RTP timestamp's
//! origin (`RTP timestamp = DTS + CTS`), so whoever adds an offset to the RTP timestamp (a
//! session continuing a viewer's timeline across a GOP jump or a co-host switch) must add the
//! same offset to them, or a player that times frames by DTS sees time jump. The composition
//! time is a difference and stays.

use super::block::{Elements, locate};

/// Adds `delta` (wrapping) to the 4-byte values of the elements `ids` (a packet's
/// decoding-timestamp and reference-frame-timestamp ids, as that packet numbers them) in the
/// RTP packet `pkt`. Returns false, changing nothing more, if the header or block is malformed.
pub fn shift_time_values(pkt: &mut [u8], ids: [u8; 2], delta: u32) -> bool {
    if delta == 0 {
        return true;
    }
    let block = match locate(pkt) {
        Ok(Some(b)) => b,
        Ok(None) => return true, // no extension block
        Err(()) => return false,
    };
    let data_start = block.data_start;
    let data = &pkt[data_start..block.data_end];
    // Offsets first (the iterator borrows the packet), then the patch.
    let mut at = [None::<usize>; 2];
    let Ok(elements) = Elements::new(block.profile, data) else {
        return true; // a profile we do not know carries none of ours
    };
    for e in elements {
        let Ok(e) = e else { return false };
        if e.value.len() == 4
            && let Some(i) = ids.iter().position(|&id| id != 0 && id == e.id)
        {
            at[i] = Some(data_start + e.offset);
        }
    }
    for off in at.into_iter().flatten() {
        let v = &mut pkt[off..off + 4];
        let shifted = u32::from_be_bytes([v[0], v[1], v[2], v[3]]).wrapping_add(delta);
        v.copy_from_slice(&shifted.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet() -> Vec<u8> {
        let mut p = vec![0x90, 96, 0, 1, 0, 0, 0x10, 0, 1, 2, 3, 4];
        // two-byte block (ids above 14): 18 (DTS) = 0x1000, 19 (CTS) = 5, 23 (ref ts) = 0x0F00
        p.extend_from_slice(&[0x10, 0x00, 0, 5]);
        p.extend_from_slice(&[18, 4, 0, 0, 0x10, 0]);
        p.extend_from_slice(&[19, 4, 0, 0, 0, 5]);
        p.extend_from_slice(&[23, 4, 0, 0, 0x0F, 0]);
        p.extend_from_slice(&[0, 0]); // padding to 20 bytes
        p.extend_from_slice(b"payload");
        p
    }

    #[test]
    fn shifts_dts_and_reference_but_not_cts() {
        let mut p = packet();
        assert!(shift_time_values(&mut p, [18, 23], 0x10));
        assert_eq!(&p[18..22], &[0, 0, 0x10, 0x10]);
        assert_eq!(&p[24..28], &[0, 0, 0, 5]);
        assert_eq!(&p[30..34], &[0, 0, 0x0F, 0x10]);
        assert_eq!(&p[36..], b"payload");
        // Wrapping, and ids the packet does not carry.
        let mut p = packet();
        assert!(shift_time_values(&mut p, [18, 0], u32::MAX));
        assert_eq!(&p[18..22], &[0, 0, 0x0F, 0xFF]);
        assert_eq!(&p[30..34], &[0, 0, 0x0F, 0]);
    }

    #[test]
    fn malformed_packets_are_refused_without_panic() {
        let p = packet();
        for n in 0..p.len() {
            let mut cut = p[..n].to_vec();
            let _ = shift_time_values(&mut cut, [18, 23], 7);
        }
        let mut plain = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 9];
        assert!(shift_time_values(&mut plain, [18, 23], 7));
        assert_eq!(plain[12], 9);
    }
}
