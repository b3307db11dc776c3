//! `rtmlive`: command line → configuration → logging → server. Nothing else lives here.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 configuration or usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use rtmlive::config::{self, Config, LogFormat};

/// Ultra-low-latency live-streaming edge: FLV/RTMP in, WebRTC (miniSDP/WHEP) out.
///
/// Without --config, runs the standalone demo (open mode, demo stream live/demo).
/// Environment overrides: RTMLIVE_<SECTION>__<KEY>=value (see docs/operations.md).
#[derive(Debug, Parser)]
#[command(name = "rtmlive", version, about)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(short, long, value_name = "PATH", env = "RTMLIVE_CONFIG")]
    config: Option<PathBuf>,

    /// Validate the configuration (file + environment), print warnings, and exit.
    #[arg(long)]
    check_config: bool,

    /// Print the effective configuration (secrets redacted) as TOML and exit.
    #[arg(long)]
    print_config: bool,

    /// Log format; overrides log.format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormatArg>,

    /// Log filter, e.g. `info` or `info,rtmlive::transport=debug`; overrides log.level.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Human,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// Applies the command-line overrides (highest precedence).
fn apply_cli(cli: &Cli, config: &mut Config) {
    if let Some(f) = cli.log_format {
        config.log.format = f.into();
    }
    if let Some(l) = &cli.log_level {
        config.log.level = l.clone();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut loaded = match config::load(cli.config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    apply_cli(&cli, &mut loaded.config);
    let source = loaded.file.as_ref().map_or_else(
        || "built-in defaults (standalone demo)".to_owned(),
        |p| p.display().to_string(),
    );

    if cli.check_config {
        // A log level given on the command line must be valid too.
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&loaded.config.log.level) {
            eprintln!(
                "--log-level: `{}` is not a valid filter ({e})",
                loaded.config.log.level
            );
            return ExitCode::from(2);
        }
        for w in &loaded.warnings {
            println!("{w}");
        }
        println!("configuration OK: {source}");
        return ExitCode::SUCCESS;
    }
    if cli.print_config {
        print!("{}", loaded.config.redacted().to_toml_string());
        return ExitCode::SUCCESS;
    }

    if let Err(e) = rtmlive::ops::logging::init(loaded.config.log.format, &loaded.config.log.level)
    {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    tracing::info!(config = %source, version = env!("CARGO_PKG_VERSION"), "starting rtmlive");
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    serve(loaded.config)
}

/// Runs the edge until SIGTERM/SIGINT (then drains; see `docs/operations.md`).
fn serve(config: Config) -> ExitCode {
    match rtmlive::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "rtmlive failed");
            eprintln!("rtmlive: {e}");
            ExitCode::FAILURE
        }
    }
}
