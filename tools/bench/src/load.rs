//! The load generator: posts `bench.event` events to Herald's intake with bounded concurrency,
//! either as fast as possible or at a fixed rate, and notes when each 202 arrived (the start of a
//! delivery's latency). It also prints the progress line once per second.
//!
//! It never retries: a refused or failed request is counted as an error (a few are kept as
//! samples), and a phase with errors is reported as not complete.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::receiver::Receiver;

/// The timeout of every request the bench sends to Herald.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ERROR_SAMPLES: usize = 5;

/// An event whose 202 arrived.
#[derive(Debug)]
pub struct Accepted {
    pub id: String,
    pub sent: Instant,
    pub accepted: Instant,
}

/// What the load generator has done so far, for the progress line.
#[derive(Debug, Default)]
pub struct LoadCounters {
    sent: AtomicU64,
    accepted: AtomicU64,
    errors: AtomicU64,
}

/// What the load generator did.
#[derive(Debug)]
pub struct LoadResult {
    pub started: Instant,
    pub first_send: Option<Instant>,
    pub sent: u64,
    pub accepted: Vec<Accepted>,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub stopped_by_time_cap: bool,
}

/// The request body, padded so that `data` is about `payload_bytes` long.
#[derive(Debug)]
pub struct Payload {
    bytes: usize,
    pad: String,
    /// When set, every event carries `Idempotency-Key: <prefix><seq>`.
    key_prefix: Option<String>,
}

impl Payload {
    pub fn new(bytes: usize) -> Self {
        Self {
            bytes,
            pad: words(bytes),
            key_prefix: None,
        }
    }

    /// Sends each event with an `Idempotency-Key` unique to this run (intake then stores an
    /// idempotency record too).
    pub fn with_idempotency_keys(mut self) -> Self {
        self.key_prefix = Some(format!(
            "bench-{}-",
            jiff::Timestamp::now().as_millisecond()
        ));
        self
    }

    pub fn idempotency_key(&self, seq: u64) -> Option<String> {
        self.key_prefix.as_ref().map(|p| format!("{p}{seq}"))
    }

    /// `{"type":"bench.event","data":{"seq":N,"pad":"<random words>"}}`; `data` is `bytes` long when the
    /// size allows it (at least the `seq` field otherwise).
    pub fn body(&self, seq: u64) -> Vec<u8> {
        let seq_text = seq.to_string();
        // `{"seq":` + N + `,"pad":"` + pad + `"}`
        let overhead = 7 + seq_text.len() + 8 + 2;
        let pad = self
            .pad
            .get(..self.bytes.saturating_sub(overhead))
            .unwrap_or("");
        format!(r#"{{"type":"bench.event","data":{{"seq":{seq_text},"pad":"{pad}"}}}}"#)
            .into_bytes()
    }
}

/// `len` bytes of random lowercase words (a fixed seed, so every run sends the same text). Padding
/// of one repeated letter would deflate to nothing and flatter a store that compresses; random
/// words deflate to about 60 %, less than prose or JSON documents do (30–40 %).
fn words(len: usize) -> String {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut text = String::with_capacity(len);
    while text.len() < len {
        let word = 2 + next() % 8;
        for _ in 0..word {
            text.push(char::from(b'a' + (next() % 26) as u8));
        }
        text.push(' ');
    }
    text.truncate(len);
    text
}

/// Sends `events` events numbered from `seq_offset` (at `rate` per second, 0 = as fast as
/// possible) with at most `concurrency` in flight, and stops sending after `cap`; returns when every
/// request sent has been answered or has failed.
#[allow(clippy::too_many_arguments)]
pub async fn send_events(
    client: &reqwest::Client,
    base: &str,
    api_key: &str,
    payload: &Payload,
    events: u64,
    rate: u64,
    concurrency: usize,
    cap: Duration,
    counters: &Arc<LoadCounters>,
    seq_offset: u64,
) -> LoadResult {
    let url = Arc::new(format!("{base}/v1/events"));
    let auth = Arc::new(format!("Bearer {api_key}"));
    let started = Instant::now();
    let mut result = LoadResult {
        started,
        first_send: None,
        sent: 0,
        accepted: Vec::with_capacity(usize::try_from(events.min(10_000_000)).unwrap_or(0)),
        errors: 0,
        error_samples: Vec::new(),
        stopped_by_time_cap: false,
    };
    let mut tasks: JoinSet<Result<Accepted, String>> = JoinSet::new();
    let mut next: u64 = 0;
    'outer: while next < events {
        if started.elapsed() >= cap {
            result.stopped_by_time_cap = true;
            break;
        }
        let due = if rate == 0 {
            events
        } else {
            ((started.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(events)
        };
        while next < due {
            while tasks.len() >= concurrency {
                if let Some(r) = tasks.join_next().await {
                    collect_one(r, &mut result);
                }
            }
            if started.elapsed() >= cap {
                result.stopped_by_time_cap = true;
                break 'outer;
            }
            let body = payload.body(seq_offset + next);
            let key = payload.idempotency_key(seq_offset + next);
            let client = client.clone();
            let url = url.clone();
            let auth = auth.clone();
            let counters = counters.clone();
            let sent = Instant::now();
            result.first_send.get_or_insert(sent);
            counters.sent.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(async move {
                let r = post_event(&client, &url, &auth, body, key, sent).await;
                match &r {
                    Ok(_) => counters.accepted.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counters.errors.fetch_add(1, Ordering::Relaxed),
                };
                r
            });
            next += 1;
        }
        if rate > 0 && next < events {
            while let Some(r) = tasks.try_join_next() {
                collect_one(r, &mut result);
            }
            let due_at = started + Duration::from_secs_f64(next as f64 / rate as f64);
            tokio::time::sleep_until(due_at.into()).await;
        }
    }
    result.sent = next;
    // Every request has a timeout, so this ends.
    while let Some(r) = tasks.join_next().await {
        collect_one(r, &mut result);
    }
    result
}

fn collect_one(
    r: Result<Result<Accepted, String>, tokio::task::JoinError>,
    result: &mut LoadResult,
) {
    match r {
        Ok(Ok(a)) => result.accepted.push(a),
        Ok(Err(e)) => {
            result.errors += 1;
            if result.error_samples.len() < MAX_ERROR_SAMPLES && !result.error_samples.contains(&e)
            {
                result.error_samples.push(e);
            }
        }
        Err(e) => {
            result.errors += 1;
            if result.error_samples.len() < MAX_ERROR_SAMPLES {
                result.error_samples.push(format!("task failed: {e}"));
            }
        }
    }
}

async fn post_event(
    client: &reqwest::Client,
    url: &str,
    auth: &str,
    body: Vec<u8>,
    idempotency_key: Option<String>,
    sent: Instant,
) -> Result<Accepted, String> {
    let mut request = client
        .post(url)
        .header(reqwest::header::AUTHORIZATION, auth)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    let resp = request
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let accepted = Instant::now();
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    if status != reqwest::StatusCode::ACCEPTED {
        let text = String::from_utf8_lossy(&bytes);
        return Err(format!(
            "{status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        id: String,
    }
    let answer: Answer =
        serde_json::from_slice(&bytes).map_err(|e| format!("the 202 answer has no id: {e}"))?;
    Ok(Accepted {
        id: answer.id,
        sent,
        accepted,
    })
}

/// Prints a progress line to stderr once per second until `stop` is set (or `max_ticks` passed).
pub async fn progress_loop(
    name: &'static str,
    counters: Arc<LoadCounters>,
    receiver: Arc<Receiver>,
    stop: Arc<AtomicBool>,
    max_ticks: u64,
) {
    let start = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.tick().await;
    let mut last_delivered = 0u64;
    for _ in 0..max_ticks {
        interval.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let sent = counters.sent.load(Ordering::Relaxed);
        let accepted = counters.accepted.load(Ordering::Relaxed);
        let errors = counters.errors.load(Ordering::Relaxed);
        let delivered = receiver.delivered();
        eprintln!(
            "[{name} {:>3}s] sent {sent:>8}  accepted {accepted:>8}  delivered {delivered:>8}  (+{}/s)  errors {errors}",
            start.elapsed().as_secs(),
            delivered.saturating_sub(last_delivered)
        );
        last_delivered = delivered;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn payload_data_has_the_requested_size() {
        let p = Payload::new(256);
        let body: Value = serde_json::from_slice(&p.body(12345)).unwrap();
        assert_eq!(body["type"], "bench.event");
        assert_eq!(serde_json::to_string(&body["data"]).unwrap().len(), 256);
        let tiny: Value = serde_json::from_slice(&Payload::new(0).body(7)).unwrap();
        assert_eq!(tiny["data"]["seq"], 7);
        // Words, not one repeated letter, and the same every run.
        let pad = words(1000);
        assert!(
            pad.contains(' ')
                && pad
                    .chars()
                    .filter(|c| *c == pad.as_bytes()[0] as char)
                    .count()
                    < 200
        );
        assert_eq!(pad, words(1000));
    }
}
