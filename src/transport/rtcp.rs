//! RTCP for the edge (`rtc-rtcp`): as a sender (viewers), sender reports out and receiver
//! reports, generic NACK, PLI/FIR and BYE in; as a receiver (WHIP publishers), sender reports in
//! and receiver reports, NACK and PLI out.
//!
//! Sender reports map the RTP clock of each track to wall-clock NTP time (RFC 3550 §6.4.1) so a
//! player can synchronise audio and video; the NTP time comes from an [`NtpClock`] anchored once
//! by the driver, so the session itself never reads a clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc_shared::marshal::Marshal;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// Most sequence numbers one RTCP datagram may make us look up (a full MTU of NACK pairs is
/// ~5,000; a real receiver never needs that many at once).
pub const MAX_NACK_SEQS: usize = 1024;

/// Errors parsing or building RTCP.
#[derive(Debug, thiserror::Error)]
pub enum RtcpError {
    #[error("rtcp: {0}")]
    Rtcp(#[from] rtc_shared::error::Error),
}

/// Maps monotonic `Instant`s to 64-bit NTP timestamps, anchored once from the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct NtpClock {
    anchor: Instant,
    anchor_ntp: u64,
}

impl NtpClock {
    /// Anchors `now` to the given wall-clock time.
    pub fn new(now: Instant, wall: SystemTime) -> Self {
        let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            anchor: now,
            anchor_ntp: duration_to_ntp(since + Duration::from_secs(NTP_UNIX_OFFSET)),
        }
    }

    /// Anchors to the system clock (the driver calls this once).
    pub fn from_system() -> Self {
        Self::new(Instant::now(), SystemTime::now())
    }

    /// NTP timestamp (32.32 fixed point) of `at`.
    pub fn ntp(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.anchor);
        self.anchor_ntp.wrapping_add(duration_to_ntp(d))
    }

    /// Unix time in whole seconds of `at` (token expiry checks), from the same anchor, so
    /// that sans-IO code never reads the wall clock itself.
    pub fn unix_secs(&self, at: Instant) -> u64 {
        (self.ntp(at) >> 32).saturating_sub(NTP_UNIX_OFFSET)
    }
}

fn duration_to_ntp(d: Duration) -> u64 {
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (d.as_secs() << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (the LSR/DLSR unit: 1/65536 s).
pub fn ntp_mid32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time from a report block (RFC 3550 §6.4.1): arrival − LSR − DLSR.
pub fn rtt(arrival_ntp: u64, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let units = ntp_mid32(arrival_ntp).wrapping_sub(lsr).wrapping_sub(dlsr);
    // A negative result (clock error, bogus report) wraps to a huge value: ignore anything
    // above a minute.
    (units < 60 * 65536).then(|| Duration::from_micros(u64::from(units) * 1_000_000 / 65536))
}

/// What a client's RTCP says that the session acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// Generic NACK (RFC 4585 §6.2.1) for `media_ssrc`, as sequence numbers in the viewer's space.
    Nack { media_ssrc: u32, seqs: Vec<u16> },
    /// PLI (RFC 4585 §6.3.1) or FIR (RFC 5104 §4.3.1) for `media_ssrc`.
    KeyframeRequest { media_ssrc: u32 },
    /// A report block about one of our SSRCs.
    Report(ReportBlock),
    /// A sender report's own fields (a publisher's clock, for our receiver reports' LSR).
    SenderReport { ssrc: u32, ntp: u64 },
    /// RTCP BYE.
    Bye,
}

/// The fields of a reception report block a sender uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    pub total_lost: u32,
    pub highest_seq: u32,
    pub jitter: u32,
    pub lsr: u32,
    pub dlsr: u32,
}

/// Parses a decrypted RTCP compound packet into `out`. At most [`MAX_NACK_SEQS`] NACKed
/// sequence numbers are reported per call.
pub fn parse(plain: &[u8], out: &mut Vec<Feedback>) -> Result<(), RtcpError> {
    let mut buf = plain;
    let packets = rtc_rtcp::packet::unmarshal(&mut buf)?;
    let mut nack_budget = MAX_NACK_SEQS;
    for p in packets {
        let any = p.as_any();
        if let Some(n) = any.downcast_ref::<TransportLayerNack>() {
            let mut seqs = Vec::new();
            for pair in &n.nacks {
                for s in *pair {
                    if nack_budget == 0 {
                        break;
                    }
                    nack_budget -= 1;
                    seqs.push(s);
                }
            }
            if !seqs.is_empty() {
                out.push(Feedback::Nack {
                    media_ssrc: n.media_ssrc,
                    seqs,
                });
            }
        } else if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            out.push(Feedback::KeyframeRequest {
                media_ssrc: pli.media_ssrc,
            });
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            for e in fir.fir.iter().take(8) {
                out.push(Feedback::KeyframeRequest { media_ssrc: e.ssrc });
            }
        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            push_reports(&rr.reports, out);
        } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
            out.push(Feedback::SenderReport {
                ssrc: sr.ssrc,
                ntp: sr.ntp_time,
            });
            push_reports(&sr.reports, out);
        } else if any.downcast_ref::<Goodbye>().is_some() {
            out.push(Feedback::Bye);
        }
    }
    Ok(())
}

fn push_reports(reports: &[rtc_rtcp::reception_report::ReceptionReport], out: &mut Vec<Feedback>) {
    for r in reports.iter().take(4) {
        out.push(Feedback::Report(ReportBlock {
            ssrc: r.ssrc,
            fraction_lost: r.fraction_lost,
            total_lost: r.total_lost,
            highest_seq: r.last_sequence_number,
            jitter: r.jitter,
            lsr: r.last_sender_report,
            dlsr: r.delay,
        }));
    }
}

/// Sender-side counters of one track, for its sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ssrc: u32,
    pub ntp: u64,
    pub rtp_time: u32,
    pub packets: u32,
    pub octets: u32,
}

/// Appends a sender report (no report blocks: the edge receives no media) to `out`.
pub fn write_sender_report(info: &SenderInfo, out: &mut Vec<u8>) -> Result<(), RtcpError> {
    let sr = SenderReport {
        ssrc: info.ssrc,
        ntp_time: info.ntp,
        rtp_time: info.rtp_time,
        packet_count: info.packets,
        octet_count: info.octets,
        ..Default::default()
    };
    out.extend_from_slice(&sr.marshal()?);
    Ok(())
}

/// Appends a receiver report from `sender_ssrc` with `blocks` (at most 31) to `out`. A
/// compound RTCP packet must start with a report, so every feedback we send begins with one.
pub fn write_receiver_report(
    sender_ssrc: u32,
    blocks: &[ReportBlock],
    out: &mut Vec<u8>,
) -> Result<(), RtcpError> {
    let rr = ReceiverReport {
        ssrc: sender_ssrc,
        reports: blocks
            .iter()
            .take(31)
            .map(|b| rtc_rtcp::reception_report::ReceptionReport {
                ssrc: b.ssrc,
                fraction_lost: b.fraction_lost,
                total_lost: b.total_lost.min(0x7F_FFFF),
                last_sequence_number: b.highest_seq,
                jitter: b.jitter,
                last_sender_report: b.lsr,
                delay: b.dlsr,
            })
            .collect(),
        ..Default::default()
    };
    out.extend_from_slice(&rr.marshal()?);
    Ok(())
}

/// Appends a generic NACK (RFC 4585 §6.2.1) for `seqs` of `media_ssrc` to `out`.
pub fn write_nack(
    sender_ssrc: u32,
    media_ssrc: u32,
    seqs: &[u16],
    out: &mut Vec<u8>,
) -> Result<(), RtcpError> {
    let nack = TransportLayerNack {
        sender_ssrc,
        media_ssrc,
        nacks:
            rtc_rtcp::transport_feedbacks::transport_layer_nack::nack_pairs_from_sequence_numbers(
                seqs,
            ),
    };
    out.extend_from_slice(&nack.marshal()?);
    Ok(())
}

/// Appends a PLI (RFC 4585 §6.3.1) for `media_ssrc` to `out`.
pub fn write_pli(sender_ssrc: u32, media_ssrc: u32, out: &mut Vec<u8>) -> Result<(), RtcpError> {
    let pli = PictureLossIndication {
        sender_ssrc,
        media_ssrc,
    };
    out.extend_from_slice(&pli.marshal()?);
    Ok(())
}

/// Appends a BYE for `ssrcs` to `out`.
pub fn write_bye(ssrcs: &[u32], out: &mut Vec<u8>) -> Result<(), RtcpError> {
    let bye = Goodbye {
        sources: ssrcs.to_vec(),
        reason: bytes::Bytes::new(),
    };
    out.extend_from_slice(&bye.marshal()?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_rtcp::reception_report::ReceptionReport;
    use rtc_rtcp::transport_feedbacks::transport_layer_nack::NackPair;

    #[test]
    fn ntp_clock_is_monotonic_and_anchored() {
        let t0 = Instant::now();
        let c = NtpClock::new(t0, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(c.ntp(t0) >> 32, NTP_UNIX_OFFSET + 1);
        let later = c.ntp(t0 + Duration::from_millis(500));
        assert_eq!(later - c.ntp(t0), 1 << 31);
        let c = NtpClock::new(t0, UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        assert_eq!(c.unix_secs(t0), 1_800_000_000);
        assert_eq!(c.unix_secs(t0 + Duration::from_millis(2500)), 1_800_000_002);
    }

    #[test]
    fn rtt_from_lsr_dlsr() {
        let t0 = Instant::now();
        let c = NtpClock::new(t0, SystemTime::now());
        let sent = ntp_mid32(c.ntp(t0));
        let arrival = c.ntp(t0 + Duration::from_millis(150));
        // receiver held the SR for 100 ms
        let dlsr = 100 * 65536 / 1000;
        let r = rtt(arrival, sent, dlsr).unwrap();
        assert!((r.as_millis() as i64 - 50).abs() <= 1, "{r:?}");
        assert_eq!(rtt(arrival, 0, 0), None);
    }

    #[test]
    fn parses_nack_pli_rr_bye() {
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 2,
            nacks: vec![NackPair {
                packet_id: 100,
                lost_packets: 0b101,
            }],
        };
        let pli = PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: 2,
        };
        let rr = ReceiverReport {
            ssrc: 1,
            reports: vec![ReceptionReport {
                ssrc: 2,
                fraction_lost: 3,
                total_lost: 4,
                last_sequence_number: 5,
                jitter: 6,
                last_sender_report: 7,
                delay: 8,
            }],
            ..Default::default()
        };
        let mut raw = Vec::new();
        raw.extend_from_slice(&rr.marshal().unwrap());
        raw.extend_from_slice(&nack.marshal().unwrap());
        raw.extend_from_slice(&pli.marshal().unwrap());
        write_bye(&[1], &mut raw).unwrap();
        let mut out = Vec::new();
        parse(&raw, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                Feedback::Report(ReportBlock {
                    ssrc: 2,
                    fraction_lost: 3,
                    total_lost: 4,
                    highest_seq: 5,
                    jitter: 6,
                    lsr: 7,
                    dlsr: 8
                }),
                Feedback::Nack {
                    media_ssrc: 2,
                    seqs: vec![100, 101, 103]
                },
                Feedback::KeyframeRequest { media_ssrc: 2 },
                Feedback::Bye,
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        for n in 0..64u8 {
            let raw: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x81).collect();
            let _ = parse(&raw, &mut out);
        }
    }
}
