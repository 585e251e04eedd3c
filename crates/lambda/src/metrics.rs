//! Publishing the application's metrics from Lambda: after every invocation the EMF lines of what
//! it observed are written to stdout, where Lambda's log agent hands them to CloudWatch Logs and
//! CloudWatch extracts the metrics (`herald_app::metrics::emf`). One write per line, so a line is
//! never interleaved with a log line.
//!
//! The function dimension is the function's role (`api`, `ingest`, `fanout`, `deliver`), not its
//! deployed name, so dashboards and alarms name it without knowing the stack.

use std::io::Write;

use aws_lambda_events::event::sqs::SqsMessage;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use herald_app::AppState;

/// Writes the lines observed since the last flush to `out`.
pub fn flush_to(app: &AppState, function: &str, out: &mut impl Write) {
    let now_ms = app.clock.now().as_millisecond();
    for line in app.metrics.drain_emf(function, now_ms) {
        // Metrics must never fail an invocation: a closed stdout loses them, nothing else.
        let _ = out.write_all(format!("{line}\n").as_bytes());
    }
    let _ = out.flush();
}

/// Writes the lines observed since the last flush to stdout.
pub fn flush(app: &AppState, function: &str) {
    flush_to(app, function, &mut std::io::stdout().lock());
}

/// Notes how long `record` waited in its queue once due: from Herald's due-time attribute
/// (`herald_aws::DUE_ATTRIBUTE`: sent + delay, so a retry's delay is not counted as waiting), else
/// from SQS's `SentTimestamp` (a message sent by something else).
pub fn observe_queue_age(app: &AppState, record: &SqsMessage) {
    let due = record
        .message_attributes
        .get(herald_aws::DUE_ATTRIBUTE)
        .and_then(|a| a.string_value.as_deref())
        .or_else(|| record.attributes.get("SentTimestamp").map(String::as_str));
    if let Some(waited) = due.and_then(herald_aws::waited_since) {
        app.metrics.queue_age(waited);
    }
}

/// `router` with a flush after every request it answers (an HTTP function's invocation).
pub fn with_metrics(router: Router, app: &AppState, function: &'static str) -> Router {
    let app = app.clone();
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let app = app.clone();
            async move {
                let response: Response = next.run(request).await;
                flush(&app, function);
                response
            }
        },
    ))
}
