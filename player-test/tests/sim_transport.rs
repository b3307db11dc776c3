//! Whole-protocol tests in virtual time: player-test's client [`Session`] against the edge's
//! real sans-IO [`ViewerSession`] (rtmlive::transport), with media demuxed from the committed
//! FLV fixtures and packetized by `rtmlive::rtp`, over a seeded emulated link.
//!
//! Nothing here touches a socket or the clock, so the runs are exact and take milliseconds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use player_test::impair::{Impairment, LinkSpec};
use player_test::jitter::{AssembledFrame, JitterConfig};
use player_test::measure::{Stage, StageClock};
use player_test::rtp_in::{RtpInput, TrackMap};
use player_test::session::{LocalParams, RemoteParams, Session, SessionConfig};
use rtc_dtls::crypto_provider::default_provider;
use rtmlive::media::flv::{DemuxEvent, FlvDemuxer};
use rtmlive::media::{AudioConfig, Frame, FrameKind, TrackKind};
use rtmlive::rtp::{
    AudioPacketizer, AudioPacketizerConfig, ExtensionIds, MediaPacket, VideoPacketizer,
    VideoPacketizerConfig,
};
use rtmlive::transport::dtls::{DtlsIdentity, Fingerprint as ServerFingerprint};
use rtmlive::transport::ice_lite::IceConfig;
use rtmlive::transport::rtcp::NtpClock;
use rtmlive::transport::session::{SessionEvent, SessionParams, TrackParams, ViewerSession};

const VIDEO_SSRC: u32 = 0x1111_0001;
const AUDIO_SSRC: u32 = 0x2222_0002;
const VIDEO_PT: u8 = 102;
const AUDIO_PT: u8 = 97;

fn fixture(name: &str) -> (Vec<Frame>, AudioConfig) {
    let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut d = FlvDemuxer::new();
    d.push(&data);
    let mut frames = Vec::new();
    let mut audio = None;
    while let Some(ev) = d.poll().unwrap() {
        match ev {
            DemuxEvent::Frame(f) => frames.push(f),
            DemuxEvent::AudioConfig(c) => audio = Some(c),
            _ => {}
        }
    }
    (frames, audio.expect("fixture has AAC"))
}

/// Packets of every frame, with the time (ms from the first frame) the origin would emit them.
fn packetize(frames: &[Frame], audio: AudioConfig) -> Vec<(i64, MediaPacket)> {
    let mut vp = VideoPacketizer::new(VideoPacketizerConfig::new(
        rtmlive::media::Codec::H264,
        VIDEO_SSRC,
        VIDEO_PT,
    ))
    .unwrap();
    let mut ap =
        AudioPacketizer::new(AudioPacketizerConfig::new(AUDIO_SSRC, AUDIO_PT), audio).unwrap();
    let t0 = frames.first().map_or(0, |f| f.dts);
    let mut out = Vec::new();
    for f in frames {
        let mut pkts = Vec::new();
        if f.codec.is_video() {
            vp.push(f, &mut pkts).unwrap();
        } else {
            ap.push(f, &mut pkts).unwrap();
        }
        out.extend(pkts.into_iter().map(|p| (f.dts - t0, p)));
    }
    out
}

struct Outcome {
    session: Session,
    /// Last DTS (ms) of the first pass.
    pass_end: i64,
    released: Vec<AssembledFrame>,
    video_frames: usize,
    audio_frames: usize,
    retransmits_sent: u64,
    end: Instant,
}

/// Runs one session for the whole fixture over a link with `down`/`up` impairment.
fn run(name: &str, down: LinkSpec, up: LinkSpec, seed: u64) -> Outcome {
    let provider = default_provider().unwrap();
    let (frames, audio) = fixture(name);
    let audio_rate = audio.sample_rate;
    // A live source does not end: the fixture plays twice (the second pass shifted in time)
    // so that a loss in the first pass's last frame is revealed by what follows, as it would
    // be live. Assertions cover the first pass.
    let pass_end = frames.iter().map(|f| f.dts).max().unwrap_or(0);
    let shift = pass_end + 40;
    let mut both = frames.clone();
    both.extend(frames.iter().map(|f| Frame {
        dts: f.dts + shift,
        ..f.clone()
    }));
    let media = packetize(&both, audio);
    let video_frames = frames.iter().filter(|f| f.codec.is_video()).count();
    let audio_frames = frames.len() - video_frames;

    let t0 = Instant::now();
    let wall0 = SystemTime::now();
    let client_addr: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let server_addr: SocketAddr = "10.0.0.1:8000".parse().unwrap();

    // Signaling is out of scope here: both sides get what offer and answer would carry.
    let local = LocalParams::generate(&provider).unwrap();
    let identity = Arc::new(DtlsIdentity::generate().unwrap());
    let server_ufrag = "srvUfrag".to_owned();
    let server_pwd = "serverPassword0123456789".to_owned();
    let mut server = ViewerSession::new(
        t0,
        SessionParams::new(
            IceConfig::new(
                server_ufrag.clone(),
                server_pwd.clone(),
                local.ice_ufrag.clone(),
            ),
            ServerFingerprint(local.certificate.fingerprint.0),
            vec![
                TrackParams {
                    kind: TrackKind::Video,
                    ssrc: VIDEO_SSRC,
                    payload_type: VIDEO_PT,
                    clock_rate: 90_000,
                },
                TrackParams {
                    kind: TrackKind::Audio,
                    ssrc: AUDIO_SSRC,
                    payload_type: AUDIO_PT,
                    clock_rate: audio_rate,
                },
            ],
            identity.clone(),
            NtpClock::new(t0, wall0),
        ),
    );
    let remote = RemoteParams {
        ice_ufrag: server_ufrag,
        ice_pwd: server_pwd,
        fingerprint: Some(player_test::client::dtls::Fingerprint(
            identity.fingerprint().0,
        )),
        media_addr: server_addr,
        input: RtpInput::new(
            ExtensionIds::default(),
            TrackMap {
                video_pts: vec![VIDEO_PT],
                audio_pts: vec![AUDIO_PT],
                video_ssrc: Some(VIDEO_SSRC),
                audio_ssrc: Some(AUDIO_SSRC),
            },
            audio_rate,
        ),
        audio_clock: audio_rate,
    };
    let mut stages = StageClock::new(t0);
    stages.mark(Stage::OfferSent, t0);
    stages.mark(Stage::Answer, t0 + up.delay + down.delay);
    let config = SessionConfig {
        jitter: JitterConfig {
            max_buffered: Duration::from_secs(3),
            ..JitterConfig::default()
        },
        keep_presentation_log: true,
        deliver_frames: true,
        ..SessionConfig::default()
    };
    let start = t0 + up.delay + down.delay;
    let mut client =
        Session::new(config, client_addr, &local, remote, provider, stages, start).unwrap();

    let mut uplink: Impairment<Vec<u8>> = Impairment::new(up, seed);
    let mut downlink: Impairment<Vec<u8>> = Impairment::new(down, seed.wrapping_add(1));
    let mut cache: HashMap<(TrackKind, u16), MediaPacket> = HashMap::new();
    let mut next_media = 0usize;
    let mut media_t0: Option<Instant> = None;
    let mut released = Vec::new();
    let mut retransmits_sent = 0u64;
    let last_ms = media.last().map_or(0, |(t, _)| *t);
    let step = Duration::from_millis(1);
    let mut now = start;
    let end_limit = start + Duration::from_millis(last_ms as u64) + Duration::from_secs(8);
    while now < end_limit {
        let wall = wall0 + now.duration_since(t0);
        while let Some(d) = uplink.pop(now) {
            let _ = server.handle_datagram(now, client_addr, &d);
        }
        while let Some(d) = downlink.pop(now) {
            client
                .handle_datagram(now, wall, &d)
                .expect("no re-pull on this link");
        }
        client.handle_timeout(now).unwrap();
        server.handle_timeout(now);
        while let Some(ev) = server.poll_event() {
            match ev {
                SessionEvent::Nack { track, seqs } => {
                    for s in seqs {
                        if let Some(p) = cache.get(&(track, s))
                            && let Ok(Some(t)) = server.send_retransmit(now, p)
                        {
                            retransmits_sent += 1;
                            downlink.push(now, t.data.to_vec());
                        }
                    }
                }
                SessionEvent::Closed(r) => panic!("server closed the session: {r:?}"),
                _ => {}
            }
        }
        // Live media: paced on the origin's clock from the moment the viewer is established.
        if server.is_established() {
            let mt0 = *media_t0.get_or_insert(now);
            while let Some((ms, p)) = media.get(next_media) {
                if mt0 + Duration::from_millis(*ms as u64) > now {
                    break;
                }
                cache.insert((p.track, p.seq as u16), p.clone());
                if let Ok(Some(t)) = server.send_media(now, p) {
                    downlink.push(now, t.data.to_vec());
                }
                next_media += 1;
            }
        }
        while let Some(t) = server.poll_transmit() {
            downlink.push(now, t.data.to_vec());
        }
        while let Some(d) = client.poll_transmit() {
            uplink.push(now, d);
        }
        while let Some(f) = client.poll_frame() {
            released.push(f);
        }
        let done = next_media == media.len()
            && released.iter().filter(|f| f.dts_ms <= pass_end).count()
                >= video_frames + audio_frames;
        if done {
            break;
        }
        now += step;
    }
    Outcome {
        session: client,
        pass_end,
        released,
        video_frames,
        audio_frames,
        retransmits_sent,
        end: now,
    }
}

fn assert_all_frames_in_order(o: &Outcome) {
    let first_pass: Vec<&AssembledFrame> = o
        .released
        .iter()
        .filter(|f| f.dts_ms <= o.pass_end)
        .collect();
    let v: Vec<&AssembledFrame> = first_pass
        .iter()
        .copied()
        .filter(|f| f.track == TrackKind::Video)
        .collect();
    let a = first_pass.len() - v.len();
    assert_eq!(v.len(), o.video_frames, "every video frame released");
    assert_eq!(a, o.audio_frames, "every audio frame released");
    assert!(
        v.windows(2).all(|w| w[0].dts_ms <= w[1].dts_ms),
        "video in decode order"
    );
    assert_eq!(v[0].kind, FrameKind::Key);
    for t in [TrackKind::Video, TrackKind::Audio] {
        let s = o.session.buffer_stats(t);
        assert_eq!(s.frames_dropped, 0, "{t:?}: no drops");
        assert_eq!(s.out_of_order_releases, 0, "{t:?}");
        assert_eq!(
            o.session.playout().stats(t).out_of_order,
            0,
            "{t:?} presented in PTS order"
        );
    }
}

#[test]
fn clean_link_plays_every_frame_with_staged_start() {
    let link = LinkSpec {
        delay: Duration::from_millis(10),
        ..LinkSpec::default()
    };
    let mut o = run("h264_aac.flv", link, link, 1);
    assert_all_frames_in_order(&o);
    let r = o.session.report("sim", "rtm", 0, o.end);
    let s = r.stages;
    let order = [
        s.answer,
        s.ice_connected,
        s.dtls_done,
        s.first_rtp,
        s.first_keyframe,
    ];
    assert!(order.iter().all(Option::is_some), "{s:?}");
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "stages in order: {s:?}"
    );
    // Answer (1 RTT) + STUN with ClientHello behind it, HelloVerifyRequest, full handshake:
    // DTLS done at 4 RTT of 20 ms from the start, media right behind.
    assert!(s.dtls_done.unwrap() <= 4.0 * 20.0 + 5.0, "{s:?}");
    assert_eq!(r.nacks_sent, 0);
    assert_eq!(r.frames_dropped, 0);
    assert!(r.latency_ms.is_some(), "sender reports give a latency");
}

/// Acceptance: 10 % loss each way and 50 ms RTT: zero dropped frames, everything released in
/// order, losses recovered by NACK, stall ratio reported.
#[test]
fn ten_percent_loss_50ms_rtt_drops_nothing() {
    let link = LinkSpec {
        loss: 0.10,
        delay: Duration::from_millis(25),
        ..LinkSpec::default()
    };
    for seed in [1, 2, 3] {
        let mut o = run("h264_aac.flv", link, link, seed);
        assert_all_frames_in_order(&o);
        let r = o.session.report("sim", "rtm", 0, o.end);
        assert_eq!(r.frames_dropped, 0);
        assert!(
            r.nacks_sent > 0 && r.retransmits_received > 0,
            "seed {seed}: {r:?}"
        );
        assert!(o.retransmits_sent > 0);
        assert!(r.loss.before_recovery > 0.03, "seed {seed}: {:?}", r.loss);
        assert_eq!(
            r.loss.after_recovery, 0.0,
            "seed {seed}: {:?} {:?} {:?}",
            r.loss, r.video_buffer, r.audio_buffer
        );
        assert!(r.stall_ratio >= 0.0 && r.video.played_ms > 1000.0);
    }
}

/// Acceptance: the B-frame fixture is presented in PTS order, asserted from DTS/CTS.
#[test]
fn b_frames_are_presented_in_pts_order() {
    let link = LinkSpec {
        delay: Duration::from_millis(5),
        ..LinkSpec::default()
    };
    let mut o = run("h264_bframes_aac.flv", link, link, 4);
    assert_all_frames_in_order(&o);
    // Ending the session presents what waits for reordering.
    let _ = o.session.report("sim", "rtm", 0, o.end);
    let video: Vec<&AssembledFrame> = o
        .released
        .iter()
        .filter(|f| f.track == TrackKind::Video)
        .collect();
    assert!(
        video.iter().any(|f| f.kind == FrameKind::B),
        "fixture has B-frames"
    );
    // Decode order differs from presentation order...
    let pts: Vec<i64> = video.iter().map(|f| f.pts_ms()).collect();
    assert!(pts.windows(2).any(|w| w[1] < w[0]));
    // ...and the presentation is the sorted PTS sequence.
    let mut sorted = pts.clone();
    sorted.sort_unstable();
    let presented: Vec<i64> = o
        .session
        .playout()
        .log()
        .iter()
        .filter(|p| p.track == TrackKind::Video)
        .map(|p| p.pts_ms)
        .collect();
    assert_eq!(presented, sorted);
}
