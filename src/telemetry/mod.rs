//! Logging setup (`RUST_LOG` filters, default `info`; human-readable lines on stderr, or
//! JSON lines with `TOXTEMP_LOG_FORMAT=json`), the reference ids that tie user-visible errors
//! to log lines, and the metrics `/metrics` exposes.

pub mod metrics;

use tracing_subscriber::EnvFilter;

pub use metrics::Metrics;

const DEFAULT_FILTER: &str = "info,actix_server=warn,aws_smithy_runtime=warn";

/// Install the global subscriber once; later calls (tests) are ignored.
pub fn init() {
    let filter = crate::config::log_filter()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let lines = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if crate::config::json_logs() {
        // One object per line, fields at the top level: what log collectors index directly.
        lines.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
    } else {
        lines.try_init()
    };
}

/// A short id that ties what a person sees ("quote reference …") to the log line with the
/// internal detail, which is never shown.
pub fn new_reference() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}
