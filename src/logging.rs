//! Tracing output: human-readable lines by default, one JSON object per line with
//! `TURTLEMEN_LOG_FORMAT=json`; the filter comes from `log_level` (`RUST_LOG` syntax).

use tracing_subscriber::EnvFilter;
use turtlemen_config::LogFormat;

/// Installs the global subscriber; later calls (in tests) are ignored.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("warning: log_level {filter:?} is not a valid filter ({e}); using \"info\"");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}
