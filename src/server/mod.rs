//! Assembly of the edge: config → hub, transport shards, signaling, HTTP, ingest and origins.
//!
//! Nothing here implements protocol: it builds the parts, wires them to each other and to
//! their listeners, and tears them down in order. [`start`] returns a [`RunningServer`] with
//! the bound addresses (tests run whole servers in-process on ephemeral ports); [`run`] is the
//! binary's entry: start, wait for SIGTERM/SIGINT, drain, stop.

pub mod admin;
pub mod counting;
pub mod media_source;
pub mod rooms;
pub mod streams;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::task::JoinHandle;

use crate::config::{Config, Hashing};
use crate::hub::{Hub, HubConfig, PublisherConfig};
use crate::ingest::demo_source::{self, DemoLoop};
use crate::ingest::flv_out::{FlvOut, FlvOutConfig};
use crate::ingest::rtmp_server::{KeyCheck, RtmpServer, RtmpServerConfig};
use crate::ingest::whip::{self, WhipState};
use crate::ops::admin_api::{self, AdminState};
use crate::ops::{Label as _, Metrics, Shutdown, StatsQueue};
use crate::origin::health::HealthConfig;
use crate::origin::pull::{PullConfig, PullTimeouts};
use crate::origin::sink::HubTarget;
use crate::origin::upstreams::{Selection, Upstream, UpstreamSet};
use crate::origin::{MediaSink, PullManager};
use crate::signal::StreamResolver;
use crate::signal::auth::{TokenAuthority, TokenKind};
use crate::signal::minisdp_udp::{MiniSdpContext, MiniSdpHandler};
use crate::signal::negotiate::LocalDescription;
use crate::signal::player_page;
use crate::signal::whep::{self, WhepState};
use crate::transport::dtls::DtlsIdentity;
use crate::transport::rtcp::NtpClock;
use crate::transport::shard::{Lobby, SessionSnapshot, SignalingHandler};
use crate::transport::socket::{Driver, DriverConfig, Observers};

use streams::{AppOrigins, EdgeStreams};

/// The demo fixture compiled into the binary, so the standalone demo runs from any directory.
static DEMO_FLV: &[u8] = include_bytes!("../../tests/fixtures/demo.flv");

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("DTLS identity: {0}")]
    Dtls(String),
    #[error("demo source: {0}")]
    Demo(#[from] demo_source::DemoError),
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
}

/// A started server.
pub struct RunningServer {
    pub media_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub rtmp_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    /// Session snapshots for statistics consumers (one per session per second; drops counted
    /// in `rtmlive_stats_queue_dropped_total{queue="sessions"}`).
    pub session_stats: Arc<StatsQueue<SessionSnapshot>>,
    /// Pull managers by app, for tests and the admin API.
    pub streams: Arc<EdgeStreams>,
    /// Cleared on drain: signaling refuses new sessions.
    pub accepting: Arc<AtomicBool>,
    driver: Option<Driver>,
    tasks: Vec<JoinHandle<()>>,
    /// Tells the statistics consumer thread to end.
    stats_stop: Arc<AtomicBool>,
}

/// What consumes the session statistics queue. Runs on its own thread: whatever it does
/// (block, crash, crawl), the media path only sees a full queue.
pub type StatsSink = Box<dyn FnMut(SessionSnapshot) + Send>;

/// Start options beyond the configuration (embedding, tests).
#[derive(Default)]
pub struct StartOptions {
    /// Consumer of [`RunningServer::session_stats`]; default: a `debug` log line per sample
    /// (target `rtmlive::stats`).
    pub stats_sink: Option<StatsSink>,
}

/// How often the statistics consumer drains its queue, and at most how much per pass.
const STATS_DRAIN_EVERY: Duration = Duration::from_millis(100);
const STATS_DRAIN_BATCH: usize = 4096;
/// How often rooms whose stream ended look for the new one (a host's reconnect costs its
/// viewers at most this much on top of the wait for the new stream's first keyframe).
const ROOM_FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

fn spawn_stats_consumer(
    queue: Arc<StatsQueue<SessionSnapshot>>,
    mut sink: StatsSink,
    stop: Arc<AtomicBool>,
) -> Result<(), ServerError> {
    std::thread::Builder::new()
        .name("rtm-stats".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                queue.drain(STATS_DRAIN_BATCH, &mut sink);
                std::thread::sleep(STATS_DRAIN_EVERY);
            }
        })
        .map(|_| ())
        .map_err(ServerError::Runtime)
}

fn log_session_sample(s: SessionSnapshot) {
    tracing::debug!(
        target: "rtmlive::stats",
        id = %s.id,
        protocol = s.protocol.as_str(),
        state = s.state.as_str(),
        stream = s.stream_key.as_deref().unwrap_or(""),
        bytes_sent = s.stats.bytes_sent,
        packets_sent = s.stats.packets_sent,
        nacked = s.stats.nacked_seqs,
        retransmits = s.stats.retransmits,
        rtt_ms = s.stats.rtt.map(|d| d.as_millis() as u64),
        egress_bps = s.egress_bps,
        "session sample"
    );
}

impl RunningServer {
    /// Starts the drain: new sessions are refused (`/readyz` turns 503), every session is
    /// counted as draining and every miniSDP player is sent a stop packet telling it to re-pull
    /// elsewhere, while media keeps flowing until [`Self::stop`]. Idempotent.
    pub fn begin_drain(&self) {
        self.shutdown.begin_drain();
        self.accepting.store(false, Ordering::Relaxed);
        if let Some(d) = &self.driver {
            d.begin_drain();
        }
    }

    /// Stops accepting, ends every task and the shard workers.
    pub async fn stop(mut self) {
        self.stats_stop.store(true, Ordering::Relaxed);
        self.shutdown.stop();
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Some(d) = self.driver.take() {
            // Joining threads must not block the runtime.
            let _ = tokio::task::spawn_blocking(move || d.shutdown()).await;
        }
    }
}

fn hub_config(config: &Config) -> HubConfig {
    let mut h = HubConfig::default();
    let gop_ms = config.limits.gop_cache_max_duration.as_millis() as u64;
    h.packet_gop.max_bytes = config.limits.gop_cache_max_bytes as usize;
    h.packet_gop.max_duration_ms = gop_ms;
    // The retransmission ring covers at least two GOPs (the current one and the previous).
    h.packet_ring.max_bytes =
        (config.limits.retransmit_cache_max_bytes as usize).max(2 * h.packet_gop.max_bytes);
    h.packet_ring.max_duration_ms = h.packet_ring.max_duration_ms.max(2 * gop_ms);
    h.frame_gop = h.packet_gop;
    h.frame_ring.max_bytes = h.packet_ring.max_bytes;
    h.frame_ring.max_duration_ms = h.packet_ring.max_duration_ms;
    h.linger = config.timeouts.stream_linger;
    h.max_lag_ms = config.limits.viewer_max_lag.map(|d| d.as_millis() as u64);
    h
}

fn pull_config(config: &Config, urls: &[String], hashing: Hashing) -> PullConfig {
    let t = &config.timeouts;
    let h = &config.origins.health;
    PullConfig {
        upstreams: UpstreamSet::new(
            urls.iter()
                .map(|u| Upstream::new(u.clone(), u.clone()))
                .collect(),
            match hashing {
                Hashing::Rendezvous => Selection::Rendezvous,
                Hashing::Ordered => Selection::Ordered,
            },
        ),
        health: HealthConfig {
            window: h.window,
            min_samples: h.min_attempts as usize,
            failure_ratio: h.failure_ratio,
            cooldown: h.cooldown,
            ..HealthConfig::default()
        },
        timeouts: PullTimeouts {
            connect: t.origin_connect,
            first_byte: t.origin_first_byte,
            first_keyframe: t.origin_first_keyframe,
            stall: t.origin_stall,
        },
        linger: t.stream_linger,
        ..PullConfig::default()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Starts every component of `config` on the current tokio runtime.
pub async fn start(config: &Config) -> Result<RunningServer, ServerError> {
    start_with(config, StartOptions::default()).await
}

/// [`start`] with [`StartOptions`].
pub async fn start_with(
    config: &Config,
    options: StartOptions,
) -> Result<RunningServer, ServerError> {
    let metrics = Metrics::new();
    let session_stats = Arc::new(StatsQueue::new(
        "sessions",
        config.metrics.stats_queue_capacity as usize,
    ));
    metrics.register_queue(session_stats.clone());
    let stats_stop = Arc::new(AtomicBool::new(false));
    spawn_stats_consumer(
        session_stats.clone(),
        options
            .stats_sink
            .unwrap_or_else(|| Box::new(log_session_sample)),
        stats_stop.clone(),
    )?;
    let shutdown = Shutdown::with_metrics(metrics.clone());
    let hub = Arc::new(Hub::new(hub_config(config)));
    let identity =
        Arc::new(DtlsIdentity::generate().map_err(|e| ServerError::Dtls(e.to_string()))?);
    let tokens = (!config.auth.open && !config.auth.token_secret.is_empty())
        .then(|| TokenAuthority::new(config.auth.token_secret.as_bytes()));
    let target = Arc::new(HubTarget::new(hub.clone(), PublisherConfig::default()));
    let mut tasks = Vec::new();

    // Origins: one pull manager per configured app.
    let origins = config
        .origins
        .upstreams
        .iter()
        .map(|u| {
            let pulls = PullManager::new(pull_config(config, &u.urls, u.hashing), target.clone());
            pulls.set_metrics(metrics.clone());
            AppOrigins {
                app: u.app.clone(),
                pulls,
            }
        })
        .collect();
    let rooms = Arc::new(rooms::Rooms::new(config.limits.max_rooms as usize));
    let streams = Arc::new(
        EdgeStreams::new(
            hub.clone(),
            origins,
            tokio::runtime::Handle::current(),
            config.limits.max_streams as usize,
        )
        .with_rooms(rooms),
    );
    let resolver: Arc<dyn StreamResolver> = streams.clone();
    // Rooms whose stream ended (a host reconnected) move to the new one.
    tasks.push(tokio::spawn(rooms::follow_sources(
        streams.rooms().clone(),
        resolver.clone(),
        ROOM_FOLLOW_INTERVAL,
    )));

    // The media port: shard workers with the miniSDP handler.
    let accepting = Arc::new(AtomicBool::new(true));
    let lobby = Lobby::new(config.limits.max_pending_sessions as usize);
    if let Ok(mut l) = lobby.lock() {
        l.set_metrics(metrics.clone());
    }
    let shards = std::thread::available_parallelism().map_or(1, |n| n.get());
    let driver_config = DriverConfig {
        bind: config.listen.media.bind,
        shards,
        max_sessions_per_shard: (config.limits.max_sessions as usize).div_ceil(shards),
        max_pending_per_shard: (config.limits.max_pending_sessions as usize).div_ceil(shards),
        media_epoch: Some(crate::hub::media_epoch),
        ..DriverConfig::default()
    };
    // The answer's candidates need the bound port: bind first, then hand the handlers the
    // description through a slot filled before the first datagram can be read.
    let local_slot: Arc<std::sync::OnceLock<Arc<MiniSdpContext>>> = Arc::default();
    let slot = local_slot.clone();
    let observers = Observers {
        metrics: Some(metrics.clone()),
        stats: Some(session_stats.clone()),
    };
    let driver = Driver::spawn_with(
        driver_config,
        lobby.clone(),
        move |_| {
            Some(Box::new(LazyHandler {
                ctx: slot.clone(),
                inner: None,
            }) as Box<dyn SignalingHandler>)
        },
        observers,
    )
    .map_err(|source| ServerError::Bind {
        what: "media UDP",
        addr: config.listen.media.bind,
        source,
    })?;
    let media_addr = driver.local_addr();
    let candidates = config
        .listen
        .media
        .advertised()
        .into_iter()
        .map(|mut a| {
            if a.port() == 0 {
                a.set_port(media_addr.port());
            }
            a
        })
        .collect();
    let local = LocalDescription {
        identity,
        candidates,
        ntp: NtpClock::from_system(),
        ice_connect_timeout: config.timeouts.session_setup,
        ice_consent_timeout: config.timeouts.ice_consent,
        dtls_timeout: config.timeouts.dtls_handshake,
    };
    let ctx = Arc::new(MiniSdpContext {
        local: local.clone(),
        resolver: resolver.clone(),
        tokens: tokens.clone(),
        accepting: accepting.clone(),
        metrics: metrics.clone(),
    });
    let _ = local_slot.set(ctx);

    // HTTP: WHEP, WHIP, HTTP-FLV, admin and metrics.
    let whip_state = Arc::new(
        WhipState::new(
            local.clone(),
            lobby.clone(),
            target.clone(),
            ingest_key_check(config, tokens.clone()),
            accepting.clone(),
            driver.kicks().clone(),
        )
        .with_metrics(metrics.clone()),
    );
    let whep_state = Arc::new(
        WhepState::new(
            local,
            resolver,
            lobby,
            tokens.clone(),
            accepting.clone(),
            driver.kicks().clone(),
        )
        .with_metrics(metrics.clone()),
    );
    let mut flv = FlvOut::new(hub.clone(), FlvOutConfig::default()).with_metrics(metrics.clone());
    if let Some(o) = streams.all_origins().first() {
        flv = flv.with_pulls(o.pulls.clone());
    }
    let edge_admin = Arc::new(
        admin::EdgeAdmin::new(
            hub.clone(),
            streams.clone(),
            driver.kicks().clone(),
            driver.sessions().clone(),
            config.demo.enabled.then(|| config.demo.stream.clone()),
        )
        .with_flv(flv.sessions())
        .with_publishers(target.clone()),
    );
    tasks.push(tokio::spawn(
        edge_admin.clone().run_sampler(Duration::from_secs(1)),
    ));
    let admin_state = AdminState {
        backend: edge_admin,
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        token: (!config.auth.admin_token.is_empty())
            .then(|| Arc::from(config.auth.admin_token.as_str())),
    };
    let mut app = whep::router(whep_state)
        .merge(whip::router(whip_state))
        .merge(flv.router())
        .merge(player_page::router());
    let admin_addr = match config.listen.admin.bind {
        Some(bind) => {
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .map_err(|source| ServerError::Bind {
                    what: "admin HTTP",
                    addr: bind,
                    source,
                })?;
            let addr = listener.local_addr().map_err(ServerError::Runtime)?;
            let router = admin_api::router(admin_state);
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "admin HTTP server failed");
                }
            }));
            Some(addr)
        }
        None => {
            app = app.merge(admin_api::router(admin_state));
            None
        }
    };
    let http = tokio::net::TcpListener::bind(config.listen.http.bind)
        .await
        .map_err(|source| ServerError::Bind {
            what: "HTTP",
            addr: config.listen.http.bind,
            source,
        })?;
    let http_addr = http.local_addr().map_err(ServerError::Runtime)?;
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(http, app).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }));

    // RTMP ingest.
    let rtmp_addr = if config.listen.rtmp.enabled {
        let keys = ingest_key_check(config, tokens.clone());
        let server = RtmpServer::bind(
            RtmpServerConfig {
                bind: config.listen.rtmp.bind,
                ..RtmpServerConfig::default()
            },
            keys,
            Arc::new(counting::CountingTarget::new(
                target.clone(),
                metrics.clone(),
            )),
        )
        .await
        .map_err(|source| ServerError::Bind {
            what: "RTMP",
            addr: config.listen.rtmp.bind,
            source,
        })?;
        let addr = server.local_addr().map_err(ServerError::Runtime)?;
        tasks.push(tokio::spawn(server.run()));
        Some(addr)
    } else {
        None
    };

    // The demo stream.
    if config.demo.enabled {
        let demo = match &config.demo.fixture {
            Some(path) => DemoLoop::from_file(path)?,
            None => DemoLoop::from_flv(DEMO_FLV)?,
        };
        let sink: Arc<dyn MediaSink> = target.sink_for(&config.demo.stream);
        tasks.push(tokio::spawn(demo_source::run(demo, sink)));
        tracing::info!(stream = %config.demo.stream, "demo stream looping");
    }

    tracing::info!(%media_addr, %http_addr, ?rtmp_addr, ?admin_addr, "rtmlive serving");
    Ok(RunningServer {
        media_addr,
        http_addr,
        rtmp_addr,
        admin_addr,
        hub,
        metrics,
        shutdown,
        session_stats,
        streams,
        accepting,
        driver: Some(driver),
        tasks,
        stats_stop,
    })
}

/// Who may publish: configured per-stream keys, else a signed publish token, else (open mode)
/// anyone.
fn ingest_key_check(config: &Config, tokens: Option<TokenAuthority>) -> KeyCheck {
    let keys = config.auth.ingest_keys.clone();
    let open = config.auth.open;
    // (`room/<name>` is refused after this check, with its own message: see
    // `HubTarget::claim`.)
    Arc::new(move |app: &str, stream: &str, key: Option<&str>| {
        let name = format!("{app}/{stream}");
        if let Some(expected) = keys.get(&name) {
            return key == Some(expected.as_str());
        }
        if let (Some(t), Some(k)) = (&tokens, key)
            && let Ok(bytes) = base64_decode(k)
            && t.verify(&bytes, TokenKind::Publish, &name, unix_now(), &[])
                .is_ok()
        {
            return true;
        }
        open
    })
}

fn base64_decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('='))
}

/// The miniSDP handler of one shard, created before the media port's address (and so the
/// answer's candidates) is known; it binds to the shared context on first use.
struct LazyHandler {
    ctx: Arc<std::sync::OnceLock<Arc<MiniSdpContext>>>,
    inner: Option<MiniSdpHandler>,
}

impl SignalingHandler for LazyHandler {
    fn handle(
        &mut self,
        now: std::time::Instant,
        from: SocketAddr,
        data: &[u8],
        shard: &mut crate::transport::Registrar<'_>,
    ) {
        if self.inner.is_none() {
            let Some(ctx) = self.ctx.get() else {
                return;
            };
            self.inner = Some(MiniSdpHandler::new(ctx.clone()));
        }
        if let Some(h) = &mut self.inner {
            h.handle(now, from, data, shard);
        }
    }
}

/// The binary's entry: runs until SIGTERM/SIGINT, then drains for up to
/// `timeouts.shutdown_drain`.
pub fn run(config: Config) -> Result<(), ServerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rtm-io")
        .build()
        .map_err(ServerError::Runtime)?;
    runtime.block_on(async move {
        let server = start(&config).await?;
        let drain = config.timeouts.shutdown_drain;
        match crate::ops::shutdown::signal().await {
            Ok(sig) => tracing::info!(?sig, "shutting down"),
            Err(e) => tracing::warn!(error = %e, "signal handler failed; shutting down"),
        }
        server.begin_drain();
        let hub = server.hub.clone();
        let deadline = tokio::time::Instant::now() + drain;
        // A second signal ends the drain at once.
        let second = crate::ops::shutdown::signal();
        tokio::pin!(second);
        // WebRTC viewers hold packet subscriptions, HTTP-FLV responses (players, and edges
        // pulling from this server) frame subscriptions: both are sessions to wait for.
        let watched = |hub: &crate::hub::Hub| {
            hub.list()
                .iter()
                .any(|s| s.viewers + s.frame_subscribers > 0)
        };
        while tokio::time::Instant::now() < deadline && watched(&hub) {
            tokio::select! {
                _ = &mut second => {
                    tracing::warn!("second signal: ending the drain now");
                    break;
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        // Stopping the shards closes every session with RTCP BYE and DTLS close_notify.
        server.stop().await;
        Ok(())
    })
}

/// Loads a config file (for tests and tools that want the binary's behaviour).
pub fn load_config(path: Option<&Path>) -> Result<Config, crate::config::ConfigError> {
    crate::config::load(path).map(|l| l.config)
}
