//! The edge's start-up and recovery in virtual time, through the whole server side.
//!
//! The client is player-test's sans-IO [`Session`] (plus its miniSDP offer/answer code); the
//! server is rtmlive's real transport [`Shard`] with the real [`MiniSdpHandler`], a stream
//! resolver over a real [`Hub`], and viewers fed by the hub's `HubSource` through
//! `Shard::pump_media`. The origin is simulated: once the resolver starts a "pull", the
//! fixture's demuxed events reach a real [`Publisher`] after the origin's latency, paced by
//! their timestamps. Between client and server runs a [`SimLink`]: RTT/2 each way, seeded
//! random loss per direction. Time is `base + offset` only, advanced 1 ms per step, so every
//! figure below is exact and every run identical.
//!
//! Proves issue 4's acceptance point: the answer leaves before the origin responds; on a
//! cache hit the first keyframe is complete ≤ 3 RTT after the offer; with 10 % loss each way
//! every lost packet is recovered by NACK within the GOP and no frame is lost.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use player_test::client::dtls::DtlsClient;
use player_test::jitter::{AssembledFrame, JitterConfig};
use player_test::measure::{Stage, StageClock};
use player_test::session::{LocalParams, Session, SessionConfig};
use player_test::signal::{minisdp_offer, minisdp_url, read_answer};
use player_test::sim::{Direction, Kind, SimLink};
use player_test::url::MiniSdpVersion;
use rtc_dtls::crypto_provider::{RTCCryptoProvider, default_provider};
use rtm_sdp::minisdp::MiniSdp;
use rtmlive::hub::{Hub, HubConfig, Publisher, PublisherConfig};
use rtmlive::media::flv::{DemuxEvent, FlvDemuxer};
use rtmlive::media::{FrameKind, TrackKind};
use rtmlive::signal::auth::{Claims, TokenAuthority, TokenKind};
use rtmlive::signal::minisdp_udp::{MiniSdpContext, MiniSdpHandler};
use rtmlive::signal::negotiate::LocalDescription;
use rtmlive::signal::{ResolveError, Resolved, StreamResolver};
use rtmlive::transport::dtls::DtlsIdentity;
use rtmlive::transport::rtcp::NtpClock;
use rtmlive::transport::shard::{Shard, ShardConfig};

const STREAM: &str = "live/sim";
const SECRET: &[u8] = b"sim-secret";
const STEP: Duration = Duration::from_millis(1);

fn client_addr() -> SocketAddr {
    "10.0.0.2:50000".parse().unwrap()
}
fn server_addr() -> SocketAddr {
    "10.0.0.1:8000".parse().unwrap()
}
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The fixture's demuxed events, each with its time (ms) from the first frame.
fn fixture(name: &str) -> (Vec<(i64, DemuxEvent)>, i64) {
    let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut d = FlvDemuxer::new();
    d.push(&data);
    let mut events = Vec::new();
    let mut t0 = None;
    let mut last = 0;
    while let Some(ev) = d.poll().unwrap() {
        let t = match &ev {
            DemuxEvent::Frame(f) => {
                let t0 = *t0.get_or_insert(f.dts);
                last = last.max(f.dts - t0);
                f.dts - t0
            }
            _ => 0,
        };
        events.push((t, ev));
    }
    (events, last + 40)
}

/// The simulated origin of one stream: the fixture, looped like a live source that never
/// ends, published into the hub from `first_byte` on, paced by timestamps.
struct SimOrigin {
    publisher: Publisher,
    events: Vec<(i64, DemuxEvent)>,
    pass_ms: i64,
    first_byte: Instant,
    next: usize,
    pass: i64,
    /// Publish time of every video frame, by DTS (ms).
    video_published: HashMap<i64, (Instant, FrameKind)>,
}

impl SimOrigin {
    fn new(publisher: Publisher, fixture_name: &str, first_byte: Instant) -> Self {
        let (events, pass_ms) = fixture(fixture_name);
        Self {
            publisher,
            events,
            pass_ms,
            first_byte,
            next: 0,
            pass: 0,
            video_published: HashMap::new(),
        }
    }

    /// Publishes every event due by `now`.
    fn pump(&mut self, now: Instant) {
        if now < self.first_byte {
            return;
        }
        loop {
            if self.next == self.events.len() {
                self.next = 0;
                self.pass += 1;
            }
            let (t, ev) = &self.events[self.next];
            let shift = self.pass * self.pass_ms;
            // Decoder configurations are sent once, on the first pass.
            if self.pass > 0 && !matches!(ev, DemuxEvent::Frame(_)) {
                self.next += 1;
                continue;
            }
            let due = self.first_byte + Duration::from_millis((t + shift) as u64);
            if due > now {
                return;
            }
            let mut ev = ev.clone();
            if let DemuxEvent::Frame(f) = &mut ev {
                f.dts += shift;
                if f.codec.is_video() {
                    self.video_published.insert(f.dts, (now, f.kind));
                }
            }
            self.publisher.handle(ev).expect("fixture publishes");
            self.next += 1;
        }
    }
}

/// A resolver over a real hub: streams in the hub are served as they are; any other stream
/// of app `live` is created and its pull started (recorded for the simulation to act on).
struct SimResolver {
    hub: Arc<Hub>,
    pulls_started: Mutex<Vec<String>>,
}

impl StreamResolver for SimResolver {
    fn resolve(&self, key: &str) -> Result<Resolved, ResolveError> {
        if let Some(stream) = self.hub.get(key).filter(|s| !s.is_closed()) {
            return Ok(Resolved {
                stream,
                hold: None,
                room: None,
            });
        }
        if !key.starts_with("live/") {
            return Err(ResolveError::NotFound);
        }
        let (stream, created) = self.hub.get_or_create(key);
        if created {
            self.pulls_started.lock().unwrap().push(key.to_owned());
        }
        Ok(Resolved {
            stream,
            hold: None,
            room: None,
        })
    }
}

/// How the client starts DTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientStart {
    /// ClientHello right behind the miniSDP offer (before the answer).
    WithOffer,
    /// ClientHello right behind the first STUN check (after the answer).
    AfterAnswer,
}

enum Client {
    AwaitingAnswer { early: Option<Box<DtlsClient>> },
    Playing(Box<Session>),
}

struct Scenario {
    rtt: Duration,
    loss: f64,
    seed: u64,
    /// Origin latency from the pull start to its first byte; `None` = cache hit (the stream
    /// is published `warmup` before the offer).
    origin_latency: Option<Duration>,
    warmup: Duration,
    start: ClientStart,
    /// Virtual time to run after the offer.
    run_for: Duration,
    /// Sign a pull token (base64url, as `?token=` carries it) valid until this many seconds
    /// after the virtual wall clock's start; `None` = open mode.
    token_valid_for: Option<u64>,
}

struct Run {
    link: SimLink,
    rtt: Duration,
    offer_at: Instant,
    answer_sent: Option<Instant>,
    pull_started: Option<Instant>,
    origin_first_byte: Option<Instant>,
    session: Session,
    released: Vec<AssembledFrame>,
    video_published: HashMap<i64, (Instant, FrameKind)>,
    gop: Duration,
    shard: Shard,
    end: Instant,
}

fn run(sc: &Scenario) -> Run {
    let provider: Arc<dyn RTCCryptoProvider> = default_provider().unwrap();
    let base = Instant::now();
    // The virtual wall clock starts in 2001: a token checked against the machine's clock
    // instead would be expired.
    let wall0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let mut link = SimLink::symmetric(base, sc.rtt, sc.loss, sc.seed);

    // The edge: hub, resolver, miniSDP handler, one shard.
    let hub = Arc::new(Hub::new(HubConfig::default()));
    let resolver = Arc::new(SimResolver {
        hub: hub.clone(),
        pulls_started: Mutex::new(Vec::new()),
    });
    let ctx = Arc::new(MiniSdpContext {
        local: LocalDescription {
            identity: Arc::new(DtlsIdentity::generate().unwrap()),
            candidates: vec![server_addr()],
            ntp: NtpClock::new(base, wall0),
            ice_connect_timeout: Duration::from_secs(10),
            ice_consent_timeout: Duration::from_secs(30),
            dtls_timeout: Duration::from_secs(10),
        },
        resolver: resolver.clone(),
        tokens: sc.token_valid_for.map(|_| TokenAuthority::new(SECRET)),
        accepting: Arc::new(AtomicBool::new(true)),
        metrics: rtmlive::ops::Metrics::new(),
    });
    let mut shard = Shard::new(ShardConfig::new(0));
    shard.set_signaling(Box::new(MiniSdpHandler::new(ctx)));

    // Cache hit: the stream is already being published when the viewer arrives.
    let offer_at = base + sc.warmup;
    let mut origin = sc.origin_latency.is_none().then(|| {
        let (stream, _) = hub.get_or_create(STREAM);
        SimOrigin::new(
            Publisher::new(stream, PublisherConfig::default()),
            "h264_aac.flv",
            base,
        )
    });
    let gop = gop_of("h264_aac.flv");

    let local = LocalParams::generate(&provider).unwrap();
    let url = minisdp_url("10.0.0.1", "live", "sim");
    let token = sc.token_valid_for.map(|secs| {
        let wall_start = wall0
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        TokenAuthority::new(SECRET)
            .sign_base64(&Claims {
                kind: TokenKind::Pull,
                stream: STREAM.to_owned(),
                expiry: wall_start + secs,
                binding: Vec::new(),
            })
            .unwrap()
    });
    let offer = minisdp_offer(&local, MiniSdpVersion::Extended, &url, 1, token.as_deref()).unwrap();
    let mut client = Client::AwaitingAnswer { early: None };
    let mut stages = Some(StageClock::new(offer_at));
    let (mut answer_sent, mut pull_started) = (None, None);
    let mut released = Vec::new();
    let mut now = base;
    let end = offer_at + sc.run_for;
    let mut transmits = Vec::new();
    while now <= end {
        if let Some(o) = &mut origin {
            o.pump(now);
        }
        if now == offer_at {
            link.send(now, Direction::Up, offer.clone());
            stages.as_mut().unwrap().mark(Stage::OfferSent, now);
            if sc.start == ClientStart::WithOffer {
                let mut dtls = DtlsClient::before_answer(
                    client_addr(),
                    server_addr(),
                    &local.certificate,
                    provider.clone(),
                )
                .unwrap();
                dtls.start(now).unwrap();
                while let Some(d) = dtls.poll_transmit() {
                    link.send(now, Direction::Up, d.to_vec());
                }
                client = Client::AwaitingAnswer {
                    early: Some(Box::new(dtls)),
                };
            }
        }
        // Server side.
        while let Some(d) = link.recv_server(now) {
            shard.handle_datagram(now, client_addr(), &d);
        }
        if let Some(key) = resolver.pulls_started.lock().unwrap().pop() {
            pull_started = Some(now);
            let (stream, _) = hub.get_or_create(&key);
            let latency = sc.origin_latency.expect("a pull only on a cache miss");
            origin = Some(SimOrigin::new(
                Publisher::new(stream, PublisherConfig::default()),
                "h264_aac.flv",
                now + latency,
            ));
        }
        shard.handle_timeout(now);
        shard.pump_media(now);
        shard.drain_transmits(&mut transmits);
        for t in transmits.drain(..) {
            assert_eq!(t.to, client_addr());
            if Kind::of(&t.data) == Kind::MiniSdp && answer_sent.is_none() {
                answer_sent = Some(now);
            }
            link.send(now, Direction::Down, t.data.to_vec());
        }
        // Client side.
        let wall = wall0 + now.duration_since(base);
        while let Some(d) = link.recv_client(now) {
            match &mut client {
                Client::AwaitingAnswer { early } => {
                    if Kind::of(&d) == Kind::MiniSdp {
                        let m = MiniSdp::decode(&d).expect("answer decodes");
                        assert!(m.status.is_ok(), "offer refused: {}", m.status.0);
                        let answer = read_answer(&m.to_sdp(), server_addr()).unwrap();
                        let mut st = stages.take().unwrap();
                        st.mark(Stage::Answer, now);
                        let config = SessionConfig {
                            jitter: JitterConfig {
                                max_buffered: Duration::from_secs(5),
                                ..JitterConfig::default()
                            },
                            deliver_frames: true,
                            ..SessionConfig::default()
                        };
                        let s = match early.take() {
                            Some(dtls) => Session::with_dtls(
                                config,
                                &local,
                                answer.remote,
                                provider.clone(),
                                st,
                                now,
                                *dtls,
                            ),
                            None => Session::new(
                                config,
                                client_addr(),
                                &local,
                                answer.remote,
                                provider.clone(),
                                st,
                                now,
                            ),
                        };
                        client = Client::Playing(Box::new(s.unwrap()));
                    } else if let Some(dtls) = early {
                        // The HelloVerifyRequest overtook the answer.
                        dtls.handle(now, &d).unwrap();
                    }
                }
                Client::Playing(s) => s.handle_datagram(now, wall, &d).unwrap(),
            }
        }
        match &mut client {
            Client::AwaitingAnswer { early } => {
                if let Some(dtls) = early {
                    dtls.handle_timeout(now).unwrap();
                    while let Some(d) = dtls.poll_transmit() {
                        link.send(now, Direction::Up, d.to_vec());
                    }
                }
            }
            Client::Playing(s) => {
                s.handle_timeout(now).unwrap();
                while let Some(d) = s.poll_transmit() {
                    link.send(now, Direction::Up, d);
                }
                while let Some(f) = s.poll_frame() {
                    released.push(f);
                }
            }
        }
        now += STEP;
    }
    let Client::Playing(session) = client else {
        panic!("no answer by the end of the run");
    };
    let origin = origin.expect("an origin ran");
    Run {
        link,
        rtt: sc.rtt,
        offer_at,
        answer_sent,
        pull_started,
        origin_first_byte: sc.origin_latency.and(Some(origin.first_byte)),
        session: *session,
        released,
        video_published: origin.video_published,
        gop,
        shard,
        end: now,
    }
}

/// The longest keyframe interval of a fixture.
fn gop_of(name: &str) -> Duration {
    let (events, _) = fixture(name);
    let keys: Vec<i64> = events
        .iter()
        .filter_map(|(t, e)| match e {
            DemuxEvent::Frame(f) if f.codec.is_video() && f.kind == FrameKind::Key => Some(*t),
            _ => None,
        })
        .collect();
    let longest = keys.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(2000);
    Duration::from_millis(longest as u64)
}

/// Milliseconds from the offer to `stage`.
fn stage_ms(r: &Run, stage: Stage) -> f64 {
    let at = r.session.stages().at(stage).unwrap_or_else(|| {
        panic!("{stage:?} not reached");
    });
    ms(at - r.offer_at)
}

/// Prints the message sequence of the start (what docs/signaling.md quotes).
fn print_sequence(r: &Run, title: &str) {
    println!("--- {title}");
    for e in r.link.trace() {
        if matches!(e.kind, Kind::Srtp | Kind::Srtcp) {
            continue;
        }
        let at = e.sent.checked_sub(r.offer_at - r.link.base());
        let Some(at) = at else { continue };
        println!(
            "{:>8.1} ms {} {:<26} {:>5} B{}",
            ms(at),
            if e.direction == Direction::Up {
                "C→S"
            } else {
                "S→C"
            },
            e.kind.to_string(),
            e.len,
            if e.delivered { "" } else { "  (lost)" }
        );
    }
    let s = r.session.stages().times();
    println!(
        "answer {:?} ice {:?} dtls {:?} first_rtp {:?} first_keyframe {:?}",
        s.answer, s.ice_connected, s.dtls_done, s.first_rtp, s.first_keyframe
    );
}

fn cache_hit(rtt_ms: u64, start: ClientStart) -> Run {
    run(&Scenario {
        rtt: Duration::from_millis(rtt_ms),
        loss: 0.0,
        seed: 1,
        origin_latency: None,
        warmup: Duration::from_millis(1500),
        start,
        run_for: Duration::from_millis(8 * rtt_ms),
        token_valid_for: None,
    })
}

/// Acceptance: on a cache hit the first keyframe is complete ≤ 3 RTT after the offer, at 50
/// and 200 ms RTT, with the player's fast start (ClientHello right behind the offer).
#[test]
fn cache_hit_first_keyframe_within_three_rtt() {
    for rtt in [50u64, 200] {
        let r = cache_hit(rtt, ClientStart::WithOffer);
        print_sequence(
            &r,
            &format!("cache hit, RTT {rtt} ms, ClientHello with the offer"),
        );
        let rtt_f = rtt as f64;
        assert_eq!(stage_ms(&r, Stage::Answer), rtt_f, "answer after one RTT");
        let first_key = stage_ms(&r, Stage::FirstKeyframe);
        // No bandwidth cap: the keyframe's packets all arrive with the server's Finished.
        assert!(
            first_key <= 3.0 * rtt_f + 1.0,
            "RTT {rtt}: first keyframe at {first_key} ms = {:.2} RTT",
            first_key / rtt_f
        );
        // The HelloVerifyRequest travelled with the answer, not a round trip later.
        let hvr = r.link.first(|e| e.kind.is_hello_verify()).unwrap();
        assert_eq!(hvr.sent, r.answer_sent.unwrap() - r.link.base());
        // Anti-amplification: until the STUN check verified the client, the edge sent at most
        // 3× what it had received, and nothing but the answer and the HelloVerifyRequest.
        let verified = r.link.first(|e| e.kind == Kind::StunResponse).unwrap().sent;
        let received: usize = r
            .link
            .trace()
            .iter()
            .filter(|e| e.direction == Direction::Up && e.sent + r.rtt / 2 <= verified)
            .map(|e| e.len)
            .sum();
        let early: Vec<_> = r
            .link
            .trace()
            .iter()
            .filter(|e| e.direction == Direction::Down && e.sent < verified)
            .collect();
        let sent: usize = early.iter().map(|e| e.len).sum();
        assert!(
            sent <= 3 * received,
            "{sent} B sent for {received} B received"
        );
        assert!(
            early
                .iter()
                .all(|e| e.kind == Kind::MiniSdp || e.kind.is_hello_verify()),
            "{early:?}"
        );
    }
}

/// The same without the early ClientHello (DTLS starts with the first STUN check): one round
/// trip more. Pins the figure docs/signaling.md gives for such clients.
#[test]
fn cache_hit_without_early_client_hello_takes_four_rtt() {
    for rtt in [50u64, 200] {
        let r = cache_hit(rtt, ClientStart::AfterAnswer);
        print_sequence(
            &r,
            &format!("cache hit, RTT {rtt} ms, ClientHello after the answer"),
        );
        let first_key = stage_ms(&r, Stage::FirstKeyframe);
        let rtt_f = rtt as f64;
        assert!(
            first_key > 3.0 * rtt_f && first_key <= 4.0 * rtt_f + 1.0,
            "RTT {rtt}: {first_key} ms"
        );
    }
}

/// Acceptance: a cold stream's offer is answered at once; the answer leaves before the origin
/// delivers its first byte, and the first keyframe comes as soon as both the handshake and
/// the origin are done (their maximum, not their sum).
#[test]
fn answer_leaves_before_the_origin_responds() {
    let rtt = Duration::from_millis(50);
    let latency = Duration::from_millis(300);
    let r = run(&Scenario {
        rtt,
        loss: 0.0,
        seed: 2,
        origin_latency: Some(latency),
        warmup: Duration::ZERO,
        start: ClientStart::WithOffer,
        run_for: Duration::from_secs(2),
        token_valid_for: None,
    });
    print_sequence(&r, "cache miss, RTT 50 ms, origin 300 ms");
    let offer_arrived = r.offer_at + rtt / 2;
    let answer = r.answer_sent.expect("answer sent");
    let pull = r.pull_started.expect("pull started");
    let first_byte = r.origin_first_byte.unwrap();
    assert_eq!(
        answer, offer_arrived,
        "answered on arrival, without waiting"
    );
    assert_eq!(pull, offer_arrived, "pull started by the same offer");
    assert!(answer < first_byte, "answer before the origin's first byte");
    // The handshake (3 RTT = 150 ms) is hidden behind the origin (25 + 300 ms): media flows
    // from the origin's first keyframe + half an RTT to the client.
    let first_key = stage_ms(&r, Stage::FirstKeyframe);
    let first_published = r
        .video_published
        .values()
        .filter(|(_, kind)| *kind == FrameKind::Key)
        .map(|(at, _)| *at)
        .min()
        .unwrap();
    let expected = ms(first_published - r.offer_at) + ms(rtt / 2);
    assert!(
        first_key <= expected + 1.0,
        "first keyframe at {first_key} ms, origin-bound minimum {expected} ms"
    );
    assert!(stage_ms(&r, Stage::DtlsDone) < ms(first_byte - r.offer_at));
}

/// Acceptance: 10 % random loss each way at 50 ms RTT for several seconds of media: every lost
/// media packet is recovered by NACK from the edge's retransmission cache within the GOP; no
/// frame is lost; frames are released in order.
#[test]
fn ten_percent_loss_every_packet_recovered_within_the_gop() {
    for seed in [11u64, 12, 13] {
        let mut r = run(&Scenario {
            rtt: Duration::from_millis(50),
            loss: 0.10,
            seed,
            origin_latency: None,
            warmup: Duration::from_millis(1500),
            start: ClientStart::WithOffer,
            run_for: Duration::from_secs(6),
            token_valid_for: None,
        });
        // Judge frames published up to 1.5 s before the end: later ones may still be in flight.
        let horizon = r.end - Duration::from_millis(1500);
        let video: Vec<&AssembledFrame> = r
            .released
            .iter()
            .filter(|f| f.track == TrackKind::Video)
            .collect();
        assert!(!video.is_empty(), "seed {seed}: video played");
        assert_eq!(video[0].kind, FrameKind::Key, "starts on a keyframe");
        assert!(
            video.windows(2).all(|w| w[0].dts_ms < w[1].dts_ms),
            "seed {seed}: video released in decode order"
        );
        // Every frame the origin published from the first keyframe on was released: none lost.
        let mut expected: Vec<i64> = r
            .video_published
            .iter()
            .filter(|(dts, (at, _))| **dts >= video[0].dts_ms && *at <= horizon)
            .map(|(dts, _)| *dts)
            .collect();
        expected.sort_unstable();
        let got: Vec<i64> = video
            .iter()
            .map(|f| f.dts_ms)
            .filter(|d| expected.binary_search(d).is_ok())
            .collect();
        assert_eq!(got, expected, "seed {seed}: every video frame, in order");
        assert!(
            expected.len() > 100,
            "seed {seed}: several seconds of video"
        );
        // Recovered within the GOP: no frame completed later than a GOP after its publication
        // (or after the session's start, for the cached GOP sent in a burst).
        let start = r.session.stages().at(Stage::DtlsDone).unwrap();
        let mut worst = Duration::ZERO;
        for f in &video {
            if let Some((published, _)) = r.video_published.get(&f.dts_ms) {
                let late = f.completed_at - (*published).max(start);
                worst = worst.max(late);
            }
        }
        assert!(
            worst < r.gop,
            "seed {seed}: a frame took {worst:?} (GOP {:?})",
            r.gop
        );
        let report = r.session.report("sim", "rtm", 0, r.end);
        let shard = r.shard.stats();
        let down = r.link.stats(Direction::Down);
        println!(
            "seed {seed}: downlink lost {}/{}; missing {} nacks {} retransmits {} (server {}, misses {}); worst frame {:?}; GOP {:?}",
            down.lost,
            down.offered,
            report.video_buffer.packets_missing + report.audio_buffer.packets_missing,
            report.nacks_sent,
            report.retransmits_received,
            shard.retransmits_sent,
            shard.retransmit_misses,
            worst,
            r.gop
        );
        assert!(down.lost > 20, "seed {seed}: the link did lose packets");
        assert_eq!(shard.retransmit_misses, 0, "every NACK found in the cache");
        assert!(report.retransmits_received > 0);
        assert_eq!(
            report.loss.after_recovery, 0.0,
            "seed {seed}: {:?}",
            report.loss
        );
        assert_eq!(report.frames_dropped, 0);
        for t in [TrackKind::Video, TrackKind::Audio] {
            let b = r.session.buffer_stats(t);
            assert_eq!(b.frames_dropped, 0, "{t:?}");
            assert_eq!(b.out_of_order_releases, 0, "{t:?}");
            // Packet by packet: every NACKed packet arrived, except those NACKed in the last
            // moments of the run (still inside their recovery window); none waited a GOP.
            let n = r.session.buffer(t).nack();
            assert_eq!(n.unrecovered(r.end, r.gop), 0, "seed {seed} {t:?}");
            assert_eq!(
                n.packets_nacked(),
                n.recovered() + n.outstanding() as u64,
                "seed {seed} {t:?}"
            );
            assert!(n.outstanding() <= 2, "seed {seed} {t:?}: {:?}", n.missing());
            if let Some(m) = n.mean_recovery_time() {
                assert!(m < r.gop, "seed {seed} {t:?}: mean recovery {m:?}");
            }
        }
    }
}

/// A signed pull token is checked against the *virtual* wall clock (the server's NTP anchor,
/// starting in 2001), not the machine's: a token valid for a minute from the virtual start is
/// accepted, and played.
#[test]
fn token_expiry_follows_the_servers_clock_anchor() {
    let r = run(&token_scenario(60));
    assert_eq!(stage_ms(&r, Stage::FirstKeyframe), 150.0);
}

/// ...and one that expired at the virtual start is refused with status 103 when the offer
/// comes 1.5 s later.
#[test]
#[should_panic(expected = "offer refused: 103")]
fn expired_token_is_refused() {
    run(&token_scenario(0));
}

fn token_scenario(valid_for: u64) -> Scenario {
    Scenario {
        rtt: Duration::from_millis(50),
        loss: 0.0,
        seed: 3,
        origin_latency: None,
        warmup: Duration::from_millis(1500),
        start: ClientStart::WithOffer,
        run_for: Duration::from_millis(400),
        token_valid_for: Some(valid_for),
    }
}
