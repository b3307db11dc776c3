//! `player-test`: command line → options → play / load / relay → report. Nothing else here.
//!
//! Exit codes: 0 every session reached its first frame and dropped no frame; 1 otherwise;
//! 2 usage error.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use player_test::impair::{LinkSpec, parse_duration, parse_loss, parse_rate};
use player_test::jitter::JitterConfig;
use player_test::load::{LoadOptions, run as run_load};
use player_test::play::PlayOptions;
use player_test::relay::{RelayConfig, RelayStats};
use player_test::report::{Report, html};
use player_test::session::{DtlsStart, SessionConfig};

/// QA player and load generator for rtmlive: staged first-frame time, stalls, latency,
/// no-drop playback.
///
/// URL forms:
///   rtm://HOST[:8000]/APP/STREAM[?v=0][&token=T]   miniSDP over UDP (v=0: deployed v0 format;
///                                                  default: rtmlive's extended format)
///   whep://HOST[:8080]/whep/APP/STREAM[?token=T]   WHEP (SDP offer over HTTP POST)
///   http://HOST[:8080]/whep/APP/STREAM             WHEP, same
///   http://HOST[:8080]/APP/STREAM.flv              HTTP-FLV (the fallback)
///
/// Examples:
///   player-test rtm://127.0.0.1:8000/live/demo
///   player-test --loss 10% --delay 25ms --duration 20s rtm://127.0.0.1:8000/live/demo
///   player-test --sessions 1000 --concurrency 1000 --ramp 200 --json rtm://127.0.0.1/live/demo
///   player-test relay --listen 0.0.0.0:9000 --upstream 127.0.0.1:8000 --loss 0.1 --delay 25ms
#[derive(Debug, Parser)]
#[command(
    name = "player-test",
    version,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    play: PlayArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Impairing UDP+TCP relay between any client and the server (per-direction loss, delay,
    /// jitter, rate). Loss applies to UDP only.
    Relay(RelayArgs),
}

#[derive(Debug, Args)]
struct PlayArgs {
    /// Stream URL (see the forms above).
    url: Option<String>,
    /// How long each session plays (signaling included).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// A session without a complete keyframe by then has failed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Number of sessions (load mode when > 1).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Sessions alive at once (0 = all).
    #[arg(long, default_value_t = 0)]
    concurrency: usize,
    /// Session starts per second (0 = as fast as concurrency allows).
    #[arg(long, default_value_t = 0.0)]
    ramp: f64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Receive-side emulated loss: fraction (0.1) or percent (10%).
    #[arg(long, default_value = "0", value_parser = parse_loss)]
    loss: f64,
    /// Receive-side emulated one-way delay.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    delay: Duration,
    /// Receive-side emulated jitter (uniform, added to the delay).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    jitter: Duration,
    /// Seed of the emulation (same seed, same packets lost).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Jitter-buffer limit: more buffered media than this is an error and a re-pull.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    max_buffer: Duration,
    /// Re-pulls allowed per session.
    #[arg(long, default_value_t = 3)]
    max_repulls: u32,
    /// Send the DTLS ClientHello only after the ICE check succeeded (default: right behind the
    /// miniSDP offer for RTM, right behind the first STUN request for WHEP).
    #[arg(long, conflicts_with = "dtls_with_check")]
    dtls_after_ice: bool,
    /// Send the DTLS ClientHello right behind the first STUN request, not behind the miniSDP
    /// offer (one round trip more; for comparison).
    #[arg(long)]
    dtls_with_check: bool,
    /// Decode H.264 (build with --features decode): first frame = first decoded picture.
    #[arg(long)]
    decode: bool,
    /// Print the JSON report (schema in docs/player-test.md) instead of the summary.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "PATH")]
    json_out: Option<std::path::PathBuf>,
    /// Write an HTML report with charts to this file.
    #[arg(long, value_name = "PATH")]
    html: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct RelayArgs {
    /// Address to listen on (UDP and TCP).
    #[arg(long)]
    listen: SocketAddr,
    /// Server address to forward to.
    #[arg(long)]
    upstream: SocketAddr,
    /// Loss, both directions (fraction or percent); UDP only.
    #[arg(long, default_value = "0", value_parser = parse_loss)]
    loss: f64,
    /// One-way delay, both directions.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    delay: Duration,
    /// Jitter, both directions.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    jitter: Duration,
    /// Rate cap, both directions (e.g. 4mbit; 0 = none).
    #[arg(long, default_value = "0", value_parser = parse_rate)]
    rate: u64,
    /// Override for server → client loss.
    #[arg(long, value_parser = parse_loss)]
    down_loss: Option<f64>,
    #[arg(long, value_parser = parse_duration)]
    down_delay: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    down_jitter: Option<Duration>,
    #[arg(long, value_parser = parse_rate)]
    down_rate: Option<u64>,
    /// Override for client → server loss.
    #[arg(long, value_parser = parse_loss)]
    up_loss: Option<f64>,
    #[arg(long, value_parser = parse_duration)]
    up_delay: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    up_jitter: Option<Duration>,
    #[arg(long, value_parser = parse_rate)]
    up_rate: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Relay UDP only.
    #[arg(long, conflicts_with = "tcp_only")]
    udp_only: bool,
    /// Relay TCP only.
    #[arg(long)]
    tcp_only: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Relay(r)) => relay(r),
        None => play(cli.play),
    }
}

fn relay(a: RelayArgs) -> ExitCode {
    let both = LinkSpec {
        loss: a.loss,
        delay: a.delay,
        jitter: a.jitter,
        rate_bps: a.rate,
        keep_order: false,
    };
    let up = LinkSpec {
        loss: a.up_loss.unwrap_or(both.loss),
        delay: a.up_delay.unwrap_or(both.delay),
        jitter: a.up_jitter.unwrap_or(both.jitter),
        rate_bps: a.up_rate.unwrap_or(both.rate_bps),
        keep_order: false,
    };
    let down = LinkSpec {
        loss: a.down_loss.unwrap_or(both.loss),
        delay: a.down_delay.unwrap_or(both.delay),
        jitter: a.down_jitter.unwrap_or(both.jitter),
        rate_bps: a.down_rate.unwrap_or(both.rate_bps),
        keep_order: false,
    };
    let cfg = RelayConfig {
        listen: a.listen,
        upstream: a.upstream,
        up,
        down,
        seed: a.seed,
        udp: !a.tcp_only,
        tcp: !a.udp_only,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "relay {} -> {} (up {:?}, down {:?})",
        cfg.listen, cfg.upstream, up, down
    );
    let stats = Arc::new(RelayStats::default());
    let result = rt.block_on(async {
        tokio::select! {
            r = player_test::relay::run(cfg, stats.clone()) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    });
    eprintln!("{}", stats.summary());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn play(a: PlayArgs) -> ExitCode {
    let Some(url) = a.url.clone() else {
        eprintln!("player-test: a stream URL is required (see --help)");
        return ExitCode::from(2);
    };
    if let Err(e) = player_test::url::Target::parse(&url) {
        eprintln!("player-test: {e}");
        return ExitCode::from(2);
    }
    if a.decode && !cfg!(feature = "decode") {
        eprintln!("player-test: --decode needs a build with --features decode");
        return ExitCode::from(2);
    }
    let base = PlayOptions {
        url: url.clone(),
        duration: a.duration,
        first_frame_timeout: a.timeout,
        session: SessionConfig {
            jitter: JitterConfig {
                max_buffered: a.max_buffer,
                ..JitterConfig::default()
            },
            dtls_start: if a.dtls_after_ice {
                DtlsStart::AfterIce
            } else if a.dtls_with_check {
                DtlsStart::WithFirstCheck
            } else {
                DtlsStart::WithOffer
            },
            deliver_frames: a.decode,
            ..SessionConfig::default()
        },
        impair: LinkSpec {
            loss: a.loss,
            delay: a.delay,
            jitter: a.jitter,
            rate_bps: 0,
            keep_order: false,
        },
        seed: a.seed,
        max_repulls: a.max_repulls,
        decode: a.decode,
        index: 0,
    };
    let load = LoadOptions {
        base,
        sessions: a.sessions.max(1),
        concurrency: a.concurrency,
        ramp: a.ramp,
        threads: a.threads,
    };
    let (sessions, cost) = run_load(&load);
    let options = serde_json::json!({
        "duration_ms": a.duration.as_millis() as u64,
        "sessions": a.sessions,
        "concurrency": a.concurrency,
        "ramp": a.ramp,
        "threads": a.threads,
        "loss": a.loss,
        "delay_ms": a.delay.as_secs_f64() * 1000.0,
        "jitter_ms": a.jitter.as_secs_f64() * 1000.0,
        "seed": a.seed,
        "max_buffer_ms": a.max_buffer.as_millis() as u64,
        "dtls_after_ice": a.dtls_after_ice,
        "decode": a.decode,
    });
    let report = Report::new(&url, options, sessions, cost);
    let json = report.to_json();
    if a.json {
        println!("{json}");
    } else {
        print!("{}", report.summary());
    }
    if let Some(p) = &a.json_out
        && let Err(e) = std::fs::write(p, &json)
    {
        eprintln!("player-test: writing {}: {e}", p.display());
    }
    if let Some(p) = &a.html {
        match html::render(&report) {
            Ok(h) => {
                if let Err(e) = std::fs::write(p, h) {
                    eprintln!("player-test: writing {}: {e}", p.display());
                }
            }
            Err(e) => eprintln!("player-test: HTML report: {e}"),
        }
    }
    let agg = &report.aggregate;
    if agg.failed == 0 && agg.frames_dropped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
