//! The media port's entry point: any sequence of datagrams from any addresses, fed to the RFC 7983
//! classifier and to a shard holding one pending session, must never panic and never create
//! state beyond that session's bounded indexes.
//!
//! Input: repeated `[addr selector: 1 byte][len: 2 bytes BE][datagram: len bytes]`.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use rtmlive::media::TrackKind;
use rtmlive::rtp::MediaPacket;
use rtmlive::transport::dtls::{DtlsIdentity, Fingerprint};
use rtmlive::transport::ice_lite::IceConfig;
use rtmlive::transport::rtcp::NtpClock;
use rtmlive::transport::shard::{MediaSource, Shard, ShardConfig};
use rtmlive::transport::{SessionParams, TrackParams, ViewerSession, classify};

struct NoMedia;
impl MediaSource for NoMedia {
    fn poll_packets(&mut self, _out: &mut Vec<MediaPacket>) {}
    fn lookup(&self, _track: TrackKind, _seq16: u16) -> Option<MediaPacket> {
        None
    }
    fn request_keyframe(&mut self, _track: TrackKind) {}
}

fn identity() -> Arc<DtlsIdentity> {
    static ID: OnceLock<Arc<DtlsIdentity>> = OnceLock::new();
    ID.get_or_init(|| Arc::new(DtlsIdentity::generate().expect("identity")))
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut shard = Shard::new(ShardConfig::new(0));
    let params = SessionParams::new(
        IceConfig::new("0000srv".into(), "password".into(), "cli".into()),
        Fingerprint([7; 32]),
        vec![TrackParams {
            kind: TrackKind::Video,
            ssrc: 1,
            payload_type: 96,
            clock_rate: 90_000,
        }],
        identity(),
        NtpClock::new(t0, SystemTime::UNIX_EPOCH),
    );
    let offer_from = SocketAddr::from(([10, 0, 0, 1], 5000));
    shard
        .insert(ViewerSession::new(t0, params), Box::new(NoMedia), Some(offer_from))
        .expect("insert");

    let mut rest = data;
    let mut now = t0;
    while rest.len() >= 3 {
        let sel = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let datagram = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let from = SocketAddr::from(([10, 0, 0, 1 + (sel & 3)], 5000 + u16::from(sel >> 2)));
        let _ = classify(datagram);
        shard.handle_datagram(now, from, datagram);
        now += Duration::from_millis(u64::from(sel));
        shard.handle_timeout(now);
        shard.pump_media(now);
    }
    let mut out = Vec::new();
    shard.drain_transmits(&mut out);
    assert!(shard.len() <= 1);
    assert!(shard.indexed_addresses() <= 5);
});
