//! The async driver: one playback from URL to [`SessionReport`], re-pulling like a production
//! player when the jitter buffer overflows. Thin by design: every decision lives in the sans-IO
//! [`Session`]; this file moves datagrams between it, the socket and the receive-side
//! [`Impairment`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rtc_dtls::crypto_provider::{RTCCryptoProvider, default_provider};
use rtmlive::media::TrackKind;
use rtmlive::media::flv::{DemuxEvent, FlvDemuxer};
use tokio::net::UdpSocket;

use crate::client::dtls::DtlsClient;
use crate::http;
use crate::impair::{Impairment, LinkSpec};
use crate::jitter::JitterStats;
use crate::measure::{BitrateMeter, Stage, StageClock};
use crate::playout::Playout;
use crate::report::{LossReport, SessionReport};
use crate::session::{DtlsStart, LocalParams, Session, SessionConfig, SessionError};
use crate::signal::{self, SignalError};
use crate::url::{DEFAULT_RTM_PORT, Target};

/// Everything one playback needs.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    pub url: String,
    /// How long to play, from the start of the session (signaling included).
    pub duration: Duration,
    /// A session without a first frame by then has failed.
    pub first_frame_timeout: Duration,
    pub session: SessionConfig,
    /// Receive-side impairment (loss/delay/jitter) applied before the session sees a datagram.
    pub impair: LinkSpec,
    pub seed: u64,
    /// Re-pulls allowed after jitter-buffer overflow before giving up.
    pub max_repulls: u32,
    /// Decode video with a real decoder (`decode` feature) so first frame = first picture.
    pub decode: bool,
    /// Index of this session in a run (reports, seeds).
    pub index: usize,
}

impl Default for PlayOptions {
    fn default() -> Self {
        Self {
            url: String::new(),
            duration: Duration::from_secs(10),
            first_frame_timeout: Duration::from_secs(10),
            session: SessionConfig::default(),
            impair: LinkSpec::default(),
            seed: 1,
            max_repulls: 3,
            decode: false,
            index: 0,
        }
    }
}

/// Plays `opts.url` on a fresh current-thread runtime. The library entry point for tests.
pub fn play(opts: PlayOptions) -> SessionReport {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(play_async(&opts)),
        Err(e) => SessionReport::failed(&opts.url, "?", opts.index, format!("runtime: {e}")),
    }
}

/// Plays `opts.url` on the current runtime.
pub async fn play_async(opts: &PlayOptions) -> SessionReport {
    let target = match Target::parse(&opts.url) {
        Ok(t) => t,
        Err(e) => return SessionReport::failed(&opts.url, "?", opts.index, e.to_string()),
    };
    match &target {
        Target::Flv { .. } => play_flv(&target, opts).await,
        _ => play_webrtc(&target, opts).await,
    }
}

async fn resolve(authority: &str) -> Result<SocketAddr, String> {
    tokio::net::lookup_host(authority)
        .await
        .map_err(|e| format!("resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {authority}: no address"))
}

async fn play_webrtc(target: &Target, opts: &PlayOptions) -> SessionReport {
    let proto = target.protocol();
    let provider = match default_provider() {
        Ok(p) => p,
        Err(e) => return SessionReport::failed(&opts.url, proto, opts.index, e.to_string()),
    };
    let end = Instant::now() + opts.duration;
    let mut merged: Option<SessionReport> = None;
    let mut attempt_no = 0u64;
    loop {
        let (report, repull) = attempt(target, opts, &provider, end, attempt_no).await;
        merged = Some(match merged {
            None => report,
            Some(prev) => merge_repull(prev, report),
        });
        attempt_no += 1;
        if !(repull && attempt_no <= u64::from(opts.max_repulls) && Instant::now() < end) {
            break;
        }
    }
    merged
        .unwrap_or_else(|| SessionReport::failed(&opts.url, proto, opts.index, "no attempt".into()))
}

/// Folds the report of a re-pulled attempt into the session's report: start-up stages are the
/// first attempt's (what the viewer waited for), counters add up.
pub fn merge_repull(a: SessionReport, b: SessionReport) -> SessionReport {
    let add = |x: crate::playout::PlayoutStats, y: crate::playout::PlayoutStats| {
        crate::playout::PlayoutStats {
            frames_presented: x.frames_presented + y.frames_presented,
            stalls: x.stalls + y.stalls,
            stall_time_ms: x.stall_time_ms + y.stall_time_ms,
            out_of_order: x.out_of_order + y.out_of_order,
            played_ms: x.played_ms + y.played_ms,
        }
    };
    let addj = |x: JitterStats, y: JitterStats| JitterStats {
        packets_received: x.packets_received + y.packets_received,
        duplicates: x.duplicates + y.duplicates,
        retransmits_received: x.retransmits_received + y.retransmits_received,
        packets_missing: x.packets_missing + y.packets_missing,
        nacks_sent: x.nacks_sent + y.nacks_sent,
        frames_released: x.frames_released + y.frames_released,
        frames_dropped: x.frames_dropped + y.frames_dropped,
        out_of_order_releases: x.out_of_order_releases + y.out_of_order_releases,
    };
    let expected = a.loss.packets_expected + b.loss.packets_expected;
    let w = |f: fn(&LossReport) -> f64| {
        if expected == 0 {
            0.0
        } else {
            (f(&a.loss) * a.loss.packets_expected as f64
                + f(&b.loss) * b.loss.packets_expected as f64)
                / expected as f64
        }
    };
    let video = add(a.video, b.video);
    let stall_time_ms = a.stall_time_ms + b.stall_time_ms;
    SessionReport {
        ok: a.first_frame_ms.is_some() && b.error.is_none(),
        error: b.error.clone(),
        duration_ms: a.duration_ms + b.duration_ms,
        video,
        audio: add(a.audio, b.audio),
        video_buffer: addj(a.video_buffer, b.video_buffer),
        audio_buffer: addj(a.audio_buffer, b.audio_buffer),
        stalls: a.stalls + b.stalls,
        stall_time_ms,
        stall_ratio: if video.played_ms > 0.0 {
            stall_time_ms / video.played_ms
        } else {
            0.0
        },
        frames_released: a.frames_released + b.frames_released,
        frames_dropped: a.frames_dropped + b.frames_dropped,
        nacks_sent: a.nacks_sent + b.nacks_sent,
        retransmits_received: a.retransmits_received + b.retransmits_received,
        plis_sent: a.plis_sent + b.plis_sent,
        repulls: a.repulls + 1 + b.repulls,
        loss: LossReport {
            packets_expected: expected,
            before_recovery: w(|l| l.before_recovery),
            after_recovery: w(|l| l.after_recovery),
        },
        latency_ms: b.latency_ms.or(a.latency_ms),
        bitrate_kbps: b.bitrate_kbps.or(a.bitrate_kbps),
        bytes_received: a.bytes_received + b.bytes_received,
        frames_decoded: match (a.frames_decoded, b.frames_decoded) {
            (None, None) => None,
            (x, y) => Some(x.unwrap_or(0) + y.unwrap_or(0)),
        },
        video_sizes: a
            .video_sizes
            .iter()
            .chain(&b.video_sizes)
            .copied()
            .collect(),
        ..a
    }
}

/// One signaling + transport attempt. Returns its report and whether to re-pull.
async fn attempt(
    target: &Target,
    opts: &PlayOptions,
    provider: &Arc<dyn RTCCryptoProvider>,
    end: Instant,
    attempt_no: u64,
) -> (SessionReport, bool) {
    let proto = target.protocol();
    let fail = |e: String| {
        (
            SessionReport::failed(&opts.url, proto, opts.index, e),
            false,
        )
    };
    let start = Instant::now();
    let mut stages = StageClock::new(start);
    let server = match resolve(&target.authority()).await {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return fail(format!("bind: {e}")),
    };
    let local = match LocalParams::generate(provider) {
        Ok(l) => l,
        Err(e) => return fail(e.to_string()),
    };
    let local_addr = sock.local_addr().unwrap_or(bind);
    // Fast start (RTM): the ClientHello leaves right behind the offer.
    let mut early = match (target, opts.session.dtls_start) {
        (Target::Rtm { .. }, DtlsStart::WithOffer) => {
            match DtlsClient::before_answer(
                local_addr,
                server,
                &local.certificate,
                provider.clone(),
            ) {
                Ok(d) => Some(d),
                Err(e) => return fail(e.to_string()),
            }
        }
        _ => None,
    };
    let signaled: Result<(signal::Answer, Option<signal::WhepResource>), SignalError> = match target
    {
        Target::Rtm {
            host,
            app,
            stream,
            version,
            token,
            ..
        } => {
            let url = signal::minisdp_url(host, app, stream);
            let seq = (opts.index as u64 * 16 + attempt_no) as u16;
            match signal::minisdp_offer(&local, *version, &url, seq, token.as_deref()) {
                Ok(offer) => signal::rtm_exchange(
                    &sock,
                    server,
                    &offer,
                    token.as_deref(),
                    &mut stages,
                    opts.first_frame_timeout,
                    early.as_mut(),
                )
                .await
                .map(|a| (a, None)),
                Err(e) => Err(e),
            }
        }
        Target::Whep { path, token, .. } => {
            let media_fallback = SocketAddr::new(server.ip(), DEFAULT_RTM_PORT);
            signal::whep_exchange(
                &target.authority(),
                path,
                token.as_deref(),
                &local,
                media_fallback,
                &mut stages,
                opts.first_frame_timeout,
            )
            .await
            .map(|(a, r)| (a, Some(r)))
        }
        Target::Flv { .. } => Err(SignalError::Offer("HTTP-FLV has no offer".into())),
    };
    let (answer, whep) = match signaled {
        Ok(x) => x,
        Err(e) => {
            let mut r = SessionReport::failed(&opts.url, proto, opts.index, e.to_string());
            r.stages = stages.times();
            return (r, false);
        }
    };
    let remote = answer.remote.media_addr;
    let now = Instant::now();
    let started = match early {
        Some(dtls) if dtls.is_started() => Session::with_dtls(
            opts.session.clone(),
            &local,
            answer.remote,
            provider.clone(),
            stages,
            now,
            dtls,
        ),
        _ => Session::new(
            opts.session.clone(),
            local_addr,
            &local,
            answer.remote,
            provider.clone(),
            stages,
            now,
        ),
    };
    let mut session = match started {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    session.set_video_codec(answer.video_codec);
    let mut impair: Impairment<Vec<u8>> = Impairment::new(
        opts.impair,
        opts.seed ^ (opts.index as u64) << 16 ^ attempt_no,
    );
    #[cfg(feature = "decode")]
    let mut decoder = if opts.decode {
        crate::decode::VideoDecoder::new(answer.video_codec, session_ids(&session)).ok()
    } else {
        None
    };
    let mut buf = vec![0u8; 2048];
    let mut repull = false;
    let deadline_first = start + opts.first_frame_timeout;
    loop {
        while let Some(d) = session.poll_transmit() {
            let _ = sock.send_to(&d, remote).await;
        }
        while let Some(_f) = session.poll_frame() {
            #[cfg(feature = "decode")]
            if let Some(dec) = decoder.as_mut()
                && _f.track == TrackKind::Video
                && dec.decode(&_f)
            {
                session.on_decoded(Instant::now());
            }
        }
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !session.stages().reached(Stage::FirstKeyframe) && now >= deadline_first {
            session.set_error(format!(
                "no complete keyframe within {:?}",
                opts.first_frame_timeout
            ));
            break;
        }
        let wake = [
            Some(session.poll_timeout()),
            impair.poll_timeout(),
            Some(end),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(end);
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, from)) = r && from.ip() == remote.ip() {
                    let now = Instant::now();
                    if opts.impair.is_clean() {
                        if let Err(e) = session.handle_datagram(now, SystemTime::now(), &buf[..n]) {
                            repull = handle_error(&mut session, e);
                            if !repull { break; }
                            break;
                        }
                    } else {
                        impair.push(now, buf[..n].to_vec());
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        let mut failed = None;
        while let Some(d) = impair.pop(now) {
            if let Err(e) = session.handle_datagram(now, SystemTime::now(), &d) {
                failed = Some(e);
                break;
            }
        }
        if failed.is_none()
            && let Err(e) = session.handle_timeout(now)
        {
            failed = Some(e);
        }
        if let Some(e) = failed {
            repull = handle_error(&mut session, e);
            break;
        }
    }
    let now = Instant::now();
    session.close(now);
    while let Some(d) = session.poll_transmit() {
        let _ = sock.send_to(&d, remote).await;
    }
    if let Some(stop) = &answer.stop_packet {
        let _ = sock.send_to(stop, server).await;
    }
    if let Some(w) = whep {
        w.delete().await;
    }
    (session.report(&opts.url, proto, opts.index, now), repull)
}

#[cfg(feature = "decode")]
fn session_ids(s: &Session) -> rtmlive::rtp::ExtensionIds {
    s.input_ids()
}

/// Records a session error; true when it calls for a re-pull.
fn handle_error(session: &mut Session, e: SessionError) -> bool {
    let repull = matches!(e, SessionError::Repull(_));
    if repull {
        session.discard_for_repull();
    }
    session.set_error(e.to_string());
    repull
}

/// HTTP-FLV: GET, demux, play out. First frame = first keyframe (all of it arrived with its
/// tag, TCP delivers whole tags in order).
async fn play_flv(target: &Target, opts: &PlayOptions) -> SessionReport {
    let Target::Flv { path, .. } = target else {
        return SessionReport::failed(&opts.url, "flv", opts.index, "not an FLV URL".into());
    };
    let start = Instant::now();
    let end = start + opts.duration;
    let mut stages = StageClock::new(start);
    stages.mark(Stage::OfferSent, start);
    let authority = target.authority();
    let req = http::request(&authority, "GET", path, &[], b"");
    let mut resp = match tokio::time::timeout(opts.first_frame_timeout, req).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return SessionReport::failed(&opts.url, "flv", opts.index, e.to_string()),
        Err(_) => {
            return SessionReport::failed(&opts.url, "flv", opts.index, "connect timed out".into());
        }
    };
    stages.mark(Stage::Answer, Instant::now());
    let mut error = None;
    if resp.head.status != 200 {
        error = Some(format!("HTTP {}", resp.head.status));
    }
    let mut demux = FlvDemuxer::new();
    let mut playout = Playout::new(Duration::ZERO, false);
    let mut bitrate = BitrateMeter::default();
    let mut frames = 0u64;
    while error.is_none() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !stages.reached(Stage::FirstKeyframe) && now >= start + opts.first_frame_timeout {
            error = Some(format!("no keyframe within {:?}", opts.first_frame_timeout));
            break;
        }
        let chunk = match tokio::time::timeout_at(end.into(), resp.chunk()).await {
            Err(_) => break,
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => {
                error = Some("server closed the stream".into());
                break;
            }
            Ok(Err(e)) => {
                error = Some(e.to_string());
                break;
            }
        };
        let now = Instant::now();
        bitrate.on_bytes(chunk.len(), now);
        demux.push(&chunk);
        loop {
            match demux.poll() {
                Ok(Some(DemuxEvent::Frame(f))) => {
                    stages.mark(Stage::FirstRtp, now);
                    let track = f.codec.track();
                    if track == TrackKind::Video && f.is_key() {
                        stages.mark(Stage::FirstKeyframe, now);
                    }
                    if track == TrackKind::Audio || stages.reached(Stage::FirstKeyframe) {
                        frames += 1;
                        playout.push(track, f.dts, f.pts(), now);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
    }
    let now = Instant::now();
    playout.flush(now);
    let times = stages.times();
    let v = playout.stats(TrackKind::Video);
    let mut r = SessionReport::failed(&opts.url, "flv", opts.index, String::new());
    r.ok = error.is_none() && times.first_frame().is_some();
    r.error = error.or_else(|| {
        times
            .first_frame()
            .is_none()
            .then(|| "no keyframe".to_owned())
    });
    r.stages = times;
    r.first_frame_ms = times.first_frame();
    r.duration_ms = now.saturating_duration_since(start).as_secs_f64() * 1000.0;
    r.video = v;
    r.audio = playout.stats(TrackKind::Audio);
    r.stalls = v.stalls;
    r.stall_time_ms = v.stall_time_ms;
    r.stall_ratio = if v.played_ms > 0.0 {
        v.stall_time_ms / v.played_ms
    } else {
        0.0
    };
    r.frames_released = frames;
    r.bitrate_kbps = bitrate.kbps();
    r.bytes_received = bitrate.bytes();
    r
}
