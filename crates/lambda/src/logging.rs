//! One log format for Herald everywhere: with `json`, one JSON object per line with the event's
//! fields at the top level (`tenant`, `subscription`, `event`, `delivery`, `attempt`, `status`,
//! `latency_ms`, …) beside `timestamp`, `level`, `target` and `message`, so CloudWatch Logs
//! Insights and `jq` filter on them directly (`filter delivery = "del_…"`). The Lambda functions
//! and `herald dev --log-format json` share it.
//!
//! What may be logged is decided where the lines are written: ids, statuses, latencies, reasons;
//! never a secret, token, API key, header value or callback URL (`herald_app::api::trace`, and a
//! system test greps a whole run's log for every secret it made).

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: JSON or compact text (coloured when `ansi`) to `writer`,
/// filtered by `RUST_LOG`, else `default_level`.
pub fn init<W>(json: bool, ansi: bool, default_level: &str, writer: W)
where
    W: for<'a> MakeWriter<'a, Writer: Write> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    init_with(json, ansi, filter, writer);
}

/// The Lambda functions' logging: JSON when the function's log format is JSON (Lambda's advanced
/// logging controls set `AWS_LAMBDA_LOG_FORMAT`; template.yaml asks for JSON), to stdout; level
/// from `AWS_LAMBDA_LOG_LEVEL` (the function's setting wins), else `RUST_LOG`, else info.
pub fn init_lambda() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    match std::env::var("AWS_LAMBDA_LOG_LEVEL") {
        Ok(level) => init_with(
            json,
            false,
            EnvFilter::new(level.to_ascii_lowercase()),
            std::io::stdout,
        ),
        Err(_) => init(json, false, "info", std::io::stdout),
    }
}

fn init_with<W>(json: bool, ansi: bool, filter: EnvFilter, writer: W)
where
    W: for<'a> MakeWriter<'a, Writer: Write> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi && !json);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init();
    } else {
        builder.compact().init();
    }
}
