//! Opus payload format, RFC 7587: one Opus packet per RTP packet, 48 kHz clock, never
//! fragmented (an Opus packet is at most 1275 bytes, so it must fit `max_packet_size`).

/// The RTP clock of Opus, whatever the coded bandwidth.
pub const OPUS_CLOCK_RATE: u32 = 48_000;

/// Samples (at 48 kHz) an Opus packet decodes to, from its TOC byte and frame count
/// (RFC 6716 §3.1). `None` for a malformed packet.
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let &toc = packet.first()?;
    let config = toc >> 3;
    // Frame size in units of 2.5 ms (120 samples) per configuration.
    let frame = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)], // SILK: 10, 20, 40, 60 ms
        12..=15 => [4, 8][usize::from(config % 2)],        // hybrid: 10, 20 ms
        _ => [1, 2, 4, 8][usize::from(config % 4)],        // CELT: 2.5, 5, 10, 20 ms
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3F),
    };
    let samples = frame * 120 * frames;
    (samples > 0 && samples <= 5760).then_some(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toc_durations() {
        assert_eq!(packet_samples(&[0xFC]), Some(960)); // CELT FB 20 ms, one frame
        assert_eq!(packet_samples(&[0x78 | 1]), Some(1920)); // hybrid 20 ms ×2
        assert_eq!(packet_samples(&[0x03, 3]), Some(1440)); // SILK 10 ms ×3
        assert_eq!(packet_samples(&[0x03]), None);
        assert_eq!(packet_samples(&[]), None);
    }
}
