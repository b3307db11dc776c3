//! RTCP for a receiver: reception statistics and receiver reports (RFC 3550 6.4.2, A.3, A.8),
//! generic NACK (RFC 4585 6.2.1), PLI (6.3.1), and sender reports in (for latency).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::packet::{Packet, marshal, unmarshal};
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};

#[derive(Debug, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP: {0}")]
    Codec(String),
}

/// Reception statistics of one media SSRC.
#[derive(Debug, Clone)]
pub struct ReceptionStats {
    pub ssrc: u32,
    clock_rate: u32,
    base_seq: Option<u64>,
    max_seq: u64,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Interarrival jitter in RTP timestamp units, scaled by 16 (RFC 3550 A.8).
    jitter_q4: u64,
    last_transit: Option<i64>,
    epoch: Instant,
    /// Middle 32 bits of the last SR's NTP time, and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl ReceptionStats {
    pub fn new(ssrc: u32, clock_rate: u32, epoch: Instant) -> Self {
        Self {
            ssrc,
            clock_rate: clock_rate.max(1),
            base_seq: None,
            max_seq: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            last_transit: None,
            epoch,
            last_sr: None,
        }
    }

    /// A media packet with extended sequence number `ext_seq` arrived at `now`.
    pub fn on_rtp(&mut self, ext_seq: u64, rtp_ts: u32, now: Instant) {
        self.received += 1;
        if self.base_seq.is_none_or(|b| ext_seq < b) {
            self.base_seq = Some(ext_seq);
        }
        self.max_seq = self.max_seq.max(ext_seq);
        let arrival = (now.saturating_duration_since(self.epoch).as_secs_f64()
            * f64::from(self.clock_rate)) as i64;
        let transit = arrival - i64::from(rtp_ts);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, in Q4 fixed point.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// A sender report for this SSRC arrived.
    pub fn on_sender_report(&mut self, ntp: u64, now: Instant) {
        self.last_sr = Some(((ntp >> 16) as u32, now));
    }

    /// Packets expected so far (highest − first + 1).
    pub fn expected(&self) -> u64 {
        self.base_seq.map_or(0, |b| self.max_seq - b + 1)
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// Interarrival jitter.
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64((self.jitter_q4 >> 4) as f64 / f64::from(self.clock_rate))
    }

    /// The report block for the next RR; advances the "since last report" interval.
    pub fn report(&mut self, now: Instant) -> ReceptionReport {
        let expected = self.expected();
        let lost_total = expected.saturating_sub(self.received);
        let exp_int = expected - self.expected_prior.min(expected);
        let rec_int = self.received - self.received_prior.min(self.received);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_int = exp_int.saturating_sub(rec_int);
        let fraction_lost = (lost_int << 8)
            .checked_div(exp_int)
            .map_or(0, |f| f.min(255) as u8);
        let (lsr, dlsr) = self.last_sr.map_or((0, 0), |(lsr, at)| {
            let d = now.saturating_duration_since(at).as_secs_f64() * 65536.0;
            (lsr, d as u32)
        });
        ReceptionReport {
            ssrc: self.ssrc,
            fraction_lost,
            total_lost: lost_total.min(0x7F_FFFF) as u32,
            last_sequence_number: self.max_seq as u32,
            jitter: (self.jitter_q4 >> 4) as u32,
            last_sender_report: lsr,
            delay: dlsr,
        }
    }
}

/// What a player needs from the server's RTCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpIn {
    SenderReport {
        ssrc: u32,
        ntp: u64,
        rtp_ts: u32,
    },
    /// The server ends the session (RFC 3550 §6.6).
    Bye,
}

/// Parses a (decrypted) compound RTCP packet, keeping what a player acts on.
pub fn parse(data: &[u8]) -> Result<Vec<RtcpIn>, RtcpError> {
    let mut b = Bytes::copy_from_slice(data);
    let pkts = unmarshal(&mut b).map_err(|e| RtcpError::Codec(e.to_string()))?;
    Ok(pkts
        .iter()
        .filter_map(|p| {
            let any = p.as_any();
            if any.is::<Goodbye>() {
                return Some(RtcpIn::Bye);
            }
            any.downcast_ref::<SenderReport>()
                .map(|sr| RtcpIn::SenderReport {
                    ssrc: sr.ssrc,
                    ntp: sr.ntp_time,
                    rtp_ts: sr.rtp_time,
                })
        })
        .collect())
}

/// One outgoing compound RTCP packet: an RR first (RFC 3550 requires a report first), then
/// NACKs and PLIs.
#[derive(Debug, Default)]
pub struct Feedback {
    pub reports: Vec<ReceptionReport>,
    /// (media SSRC, sequence numbers) to NACK.
    pub nacks: Vec<(u32, Vec<u16>)>,
    /// Media SSRCs to send a PLI for.
    pub plis: Vec<u32>,
}

impl Feedback {
    pub fn is_empty(&self) -> bool {
        self.reports.is_empty() && self.nacks.is_empty() && self.plis.is_empty()
    }

    /// Serializes to a compound packet (not yet SRTCP-protected).
    pub fn marshal(self, sender_ssrc: u32) -> Result<Vec<u8>, RtcpError> {
        let mut pkts: Vec<Box<dyn Packet>> = vec![Box::new(ReceiverReport {
            ssrc: sender_ssrc,
            reports: self.reports,
            profile_extensions: Bytes::new(),
        })];
        for (media_ssrc, seqs) in self.nacks {
            // A NACK packet holds any number of pairs; chunk to stay well inside one MTU.
            for chunk in seqs.chunks(256) {
                pkts.push(Box::new(TransportLayerNack {
                    sender_ssrc,
                    media_ssrc,
                    nacks: nack_pairs_from_sequence_numbers(chunk),
                }));
            }
        }
        for media_ssrc in self.plis {
            pkts.push(Box::new(PictureLossIndication {
                sender_ssrc,
                media_ssrc,
            }));
        }
        marshal(&pkts)
            .map(|b| b.to_vec())
            .map_err(|e| RtcpError::Codec(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_report_counts_loss_and_lsr() {
        let t0 = Instant::now();
        let mut s = ReceptionStats::new(42, 90_000, t0);
        for q in (100u64..200).filter(|q| q % 10 != 0) {
            s.on_rtp(q, (q * 3000) as u32, t0 + Duration::from_millis(q * 33));
        }
        s.on_sender_report(0x1234_5678_9ABC_DEF0, t0);
        let r = s.report(t0 + Duration::from_millis(500));
        assert_eq!(r.total_lost, 9, "101..=199 expected (99), 90 received");
        assert_eq!(r.last_sequence_number, 199);
        assert_eq!(r.last_sender_report, 0x5678_9ABC);
        assert_eq!(r.delay, 32768, "0.5 s in 1/65536 s");
        assert!(r.fraction_lost > 0);
        // No traffic since: the interval's fraction is zero.
        assert_eq!(s.report(t0).fraction_lost, 0);
    }

    #[test]
    fn feedback_round_trips_through_rtc_rtcp() {
        let fb = Feedback {
            reports: vec![ReceptionReport {
                ssrc: 9,
                ..Default::default()
            }],
            nacks: vec![(9, vec![1, 2, 3, 20, 65535, 0])],
            plis: vec![9],
        };
        let bytes = fb.marshal(77).unwrap();
        let mut b = Bytes::from(bytes);
        let pkts = unmarshal(&mut b).unwrap();
        assert_eq!(pkts.len(), 3);
        let nack = pkts[1]
            .as_any()
            .downcast_ref::<TransportLayerNack>()
            .unwrap();
        let mut got: Vec<u16> = nack.nacks.iter().flat_map(|p| p.packet_list()).collect();
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3, 20, 65535]);
        assert!(
            pkts[2]
                .as_any()
                .downcast_ref::<PictureLossIndication>()
                .is_some()
        );
    }

    #[test]
    fn sender_report_is_parsed() {
        let sr: Vec<Box<dyn Packet>> = vec![Box::new(SenderReport {
            ssrc: 5,
            ntp_time: 99,
            rtp_time: 1234,
            ..Default::default()
        })];
        let b = marshal(&sr).unwrap();
        assert_eq!(
            parse(&b).unwrap(),
            vec![RtcpIn::SenderReport {
                ssrc: 5,
                ntp: 99,
                rtp_ts: 1234
            }]
        );
        assert!(parse(&[0x80, 200]).is_err());
    }
}
