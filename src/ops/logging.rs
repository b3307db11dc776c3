//! Process logging through `tracing`: human-readable by default, JSON lines for log pipelines.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    #[error("invalid log level `{level}`: {source}")]
    Filter {
        level: String,
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a global logger is already installed")]
    AlreadySet,
}

/// Installs the global subscriber writing to stderr. `level` is a `tracing` filter directive
/// (`info`, `info,rtmlive::transport=debug`).
pub fn init(format: LogFormat, level: &str) -> Result<(), LogInitError> {
    let filter = EnvFilter::builder()
        .parse(level)
        .map_err(|source| LogInitError::Filter {
            level: level.to_owned(),
            source,
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|_| LogInitError::AlreadySet)
}
