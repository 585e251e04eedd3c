//! CloudWatch Embedded Metric Format: the metrics of one Lambda invocation as JSON log lines that
//! CloudWatch Logs turns into metrics (no PutMetricData call, no extra permission).
//!
//! Observations are kept here between flushes; [`Emf::drain`] renders them and starts over. The
//! Lambda functions drain after every invocation (an SQS batch, an HTTP request) and print the
//! lines to stdout. Dimensions stay bounded: `function`, `platform`, `outcome` (a few dozen series
//! in all); tenant and subscription ids are properties of the line, never dimensions.
//!
//! Limits of the format, kept here: at most 100 values per metric in one line (more values go on
//! further lines), at most 30 dimensions per set, at most 100 metrics per directive.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde_json::{json, Map, Value};

/// Values of one metric in one line (the format's limit).
pub const MAX_VALUES_PER_LINE: usize = 100;
/// Values kept between two flushes, per metric and series; past it only the count grows (a flush
/// that never comes must not grow memory without bound).
const MAX_VALUES_KEPT: usize = 10_000;
/// Ids listed per line as properties, to find the line's subscriptions in the logs.
const MAX_IDS: usize = 20;

/// What became of a delivery: the `outcome` dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeliveryOutcome {
    Succeeded,
    /// The attempt failed and another is scheduled.
    Retried,
    /// Given up: retries exhausted, a permanent failure, or not attempted at all.
    Failed,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 3] = [Self::Succeeded, Self::Retried, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Retried => "retried",
            Self::Failed => "failed",
        }
    }
}

/// Counters kept per platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PlatformCount {
    SubscriptionsDisabled,
    DeliveriesPaused,
    DeliveriesRateLimited,
}

impl PlatformCount {
    fn metric(self) -> &'static str {
        match self {
            Self::SubscriptionsDisabled => "SubscriptionsDisabled",
            Self::DeliveriesPaused => "DeliveriesPaused",
            Self::DeliveriesRateLimited => "DeliveriesRateLimited",
        }
    }
}

#[derive(Debug, Default)]
struct Deliveries {
    count: u64,
    latency_ms: Vec<u64>,
    lag_ms: Vec<u64>,
    tenants: BTreeSet<String>,
    subscriptions: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Buffer {
    deliveries: BTreeMap<(&'static str, DeliveryOutcome), Deliveries>,
    per_platform: BTreeMap<(&'static str, PlatformCount), u64>,
    events_accepted: u64,
    queue_age_ms: Vec<u64>,
}

fn keep(values: &mut Vec<u64>, value: u64) {
    if values.len() < MAX_VALUES_KEPT {
        values.push(value);
    }
}

fn note(ids: &mut BTreeSet<String>, id: String) {
    if ids.len() < MAX_IDS {
        ids.insert(id);
    }
}

/// One delivery's outcome, as recorded.
#[derive(Debug, Clone)]
pub struct DeliveryObservation {
    pub platform: &'static str,
    pub outcome: DeliveryOutcome,
    /// The attempt's latency, when a request was made.
    pub attempt_ms: Option<u64>,
    /// Accepted → delivered, for a delivery that succeeded.
    pub lag_ms: Option<u64>,
    pub tenant: String,
    pub subscription: String,
}

/// The buffer of one process, under the metrics namespace it publishes to.
#[derive(Debug)]
pub struct Emf {
    namespace: String,
    buffer: Mutex<Buffer>,
}

impl Emf {
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            buffer: Mutex::new(Buffer::default()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Buffer) -> R) -> R {
        // A panic while holding the lock leaves counts that are still counts.
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut buffer)
    }

    pub fn delivery(&self, o: DeliveryObservation) {
        self.with(|b| {
            let d = b.deliveries.entry((o.platform, o.outcome)).or_default();
            d.count += 1;
            if let Some(ms) = o.attempt_ms {
                keep(&mut d.latency_ms, ms);
            }
            if let Some(ms) = o.lag_ms {
                keep(&mut d.lag_ms, ms);
            }
            note(&mut d.tenants, o.tenant);
            note(&mut d.subscriptions, o.subscription);
        });
    }

    pub fn count(&self, platform: &'static str, what: PlatformCount) {
        self.with(|b| *b.per_platform.entry((platform, what)).or_default() += 1);
    }

    pub fn events_accepted(&self, n: u64) {
        self.with(|b| b.events_accepted += n);
    }

    pub fn queue_age(&self, ms: u64) {
        self.with(|b| keep(&mut b.queue_age_ms, ms));
    }

    /// The lines for everything observed since the last drain, stamped `timestamp_ms`, with
    /// `function` as the function dimension; empty when nothing was observed.
    pub fn drain(&self, function: &str, timestamp_ms: i64) -> Vec<String> {
        let buffer = self.with(std::mem::take);
        let line = Line {
            namespace: &self.namespace,
            function,
            timestamp_ms,
        };
        let mut out = Vec::new();
        for ((platform, outcome), d) in buffer.deliveries {
            let mut props = Map::new();
            props.insert("platform".into(), json!(platform));
            props.insert("outcome".into(), json!(outcome.as_str()));
            props.insert("tenants".into(), json!(d.tenants));
            props.insert("subscriptions".into(), json!(d.subscriptions));
            line.series(
                &mut out,
                &[
                    &["function", "platform", "outcome"],
                    &["function", "outcome"],
                ],
                props,
                Some(("Deliveries", d.count)),
                &[
                    ("AttemptLatency", d.latency_ms.as_slice()),
                    ("DeliveryLag", d.lag_ms.as_slice()),
                ],
            );
        }
        for ((platform, what), n) in buffer.per_platform {
            let mut props = Map::new();
            props.insert("platform".into(), json!(platform));
            line.series(
                &mut out,
                &[&["function", "platform"], &["function"]],
                props,
                Some((what.metric(), n)),
                &[],
            );
        }
        if buffer.events_accepted > 0 {
            line.series(
                &mut out,
                &[&["function"]],
                Map::new(),
                Some(("EventsAccepted", buffer.events_accepted)),
                &[],
            );
        }
        if !buffer.queue_age_ms.is_empty() {
            line.series(
                &mut out,
                &[&["function"]],
                Map::new(),
                None,
                &[("QueueAge", buffer.queue_age_ms.as_slice())],
            );
        }
        out
    }
}

struct Line<'a> {
    namespace: &'a str,
    function: &'a str,
    timestamp_ms: i64,
}

impl Line<'_> {
    /// One series as lines: the count (unit Count) on the first, the millisecond values 100 a
    /// line; each line declares only the metrics it carries.
    fn series(
        &self,
        out: &mut Vec<String>,
        dimensions: &[&[&str]],
        props: Map<String, Value>,
        count: Option<(&str, u64)>,
        values: &[(&str, &[u64])],
    ) {
        let chunks = values
            .iter()
            .map(|(_, v)| v.len().div_ceil(MAX_VALUES_PER_LINE))
            .max()
            .unwrap_or(0)
            .max(1);
        for i in 0..chunks {
            let mut root = props.clone();
            root.insert("function".into(), json!(self.function));
            let mut metrics = Vec::new();
            if let (0, Some((name, n))) = (i, count) {
                metrics.push(json!({ "Name": name, "Unit": "Count" }));
                root.insert(name.into(), json!(n));
            }
            for (name, v) in values {
                let chunk: Vec<u64> = v
                    .iter()
                    .skip(i * MAX_VALUES_PER_LINE)
                    .take(MAX_VALUES_PER_LINE)
                    .copied()
                    .collect();
                if !chunk.is_empty() {
                    metrics.push(json!({ "Name": name, "Unit": "Milliseconds" }));
                    root.insert((*name).into(), json!(chunk));
                }
            }
            if metrics.is_empty() {
                continue;
            }
            root.insert(
                "_aws".into(),
                json!({
                    "Timestamp": self.timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": self.namespace,
                        "Dimensions": dimensions,
                        "Metrics": metrics,
                    }],
                }),
            );
            out.push(Value::Object(root).to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format's rules (CloudWatch "Specification: Embedded metric format"), checked on a line.
    pub(crate) fn check_emf_line(line: &str) -> Result<Value, String> {
        let root: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let aws = root.get("_aws").ok_or("no _aws")?;
        aws["Timestamp"]
            .as_i64()
            .ok_or("Timestamp is not a number")?;
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .ok_or("CloudWatchMetrics is not an array")?;
        for d in directives {
            let ns = d["Namespace"].as_str().ok_or("no Namespace")?;
            if ns.is_empty() || ns.len() > 255 {
                return Err("Namespace length".into());
            }
            for set in d["Dimensions"].as_array().ok_or("no Dimensions")? {
                let set = set.as_array().ok_or("a dimension set is not an array")?;
                if set.len() > 30 {
                    return Err("more than 30 dimensions".into());
                }
                for key in set {
                    let key = key.as_str().ok_or("a dimension key is not a string")?;
                    let value = root[key]
                        .as_str()
                        .ok_or(format!("dimension {key} absent"))?;
                    if value.is_empty() || value.len() > 1024 {
                        return Err(format!("dimension {key} length"));
                    }
                }
            }
            let metrics = d["Metrics"].as_array().ok_or("no Metrics")?;
            if metrics.len() > 100 {
                return Err("more than 100 metrics".into());
            }
            for m in metrics {
                let name = m["Name"].as_str().ok_or("a metric without Name")?;
                match &root[name] {
                    Value::Number(_) => {}
                    Value::Array(v) if v.len() <= 100 && v.iter().all(Value::is_number) => {}
                    other => return Err(format!("metric {name} value {other}")),
                }
            }
        }
        Ok(root)
    }

    fn observe(emf: &Emf, platform: &'static str, outcome: DeliveryOutcome, n: u64) {
        for i in 0..n {
            emf.delivery(DeliveryObservation {
                platform,
                outcome,
                attempt_ms: Some(10 + i),
                lag_ms: (outcome == DeliveryOutcome::Succeeded).then_some(100 + i),
                tenant: "ten_A".into(),
                subscription: format!("sub_{}", i % 30),
            });
        }
    }

    #[test]
    fn lines_follow_the_format_and_sum_to_what_was_observed() {
        let emf = Emf::new("Herald");
        observe(&emf, "slack", DeliveryOutcome::Succeeded, 250);
        observe(&emf, "custom", DeliveryOutcome::Retried, 3);
        emf.count("slack", PlatformCount::SubscriptionsDisabled);
        emf.events_accepted(7);
        emf.queue_age(42);
        let lines = emf.drain("deliver", 1_765_000_000_000);
        let roots: Vec<Value> = lines
            .iter()
            .map(|l| check_emf_line(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        // 250 latencies: three lines for slack/succeeded; the count only on the first.
        let slack: Vec<&Value> = roots
            .iter()
            .filter(|r| r["platform"] == "slack" && r["outcome"] == "succeeded")
            .collect();
        assert_eq!(slack.len(), 3);
        assert_eq!(slack[0]["Deliveries"], 250);
        assert!(slack[1].get("Deliveries").is_none());
        let latencies: usize = slack
            .iter()
            .map(|r| r["AttemptLatency"].as_array().unwrap().len())
            .sum();
        assert_eq!(latencies, 250);
        // Ids are properties, bounded, never dimensions.
        assert_eq!(slack[0]["subscriptions"].as_array().unwrap().len(), MAX_IDS);
        let dims = slack[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"].to_string();
        assert!(
            !dims.contains("subscription") && !dims.contains("tenant"),
            "{dims}"
        );
        // A retried delivery has a latency and no lag.
        let retried = roots.iter().find(|r| r["outcome"] == "retried").unwrap();
        assert_eq!(retried["Deliveries"], 3);
        assert!(retried.get("DeliveryLag").is_none());
        assert!(roots.iter().any(|r| r["SubscriptionsDisabled"] == 1));
        assert!(roots.iter().any(|r| r["EventsAccepted"] == 7));
        assert!(roots.iter().any(|r| r["QueueAge"] == json!([42])));
        assert!(roots.iter().all(|r| r["function"] == "deliver"));
        // Drained: the next flush has nothing.
        assert!(emf.drain("deliver", 0).is_empty());
    }

    #[test]
    fn the_checker_refuses_what_the_format_refuses() {
        let ok = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["f"]],"Metrics":[{"Name":"M"}]}]},"f":"x","M":1}"#;
        assert!(check_emf_line(ok).is_ok());
        for bad in [
            ok.replace(r#""f":"x","#, ""),
            ok.replace(r#""M":1"#, r#""M":"1""#),
            ok.replace(r#""Timestamp":1,"#, ""),
        ] {
            assert!(check_emf_line(&bad).is_err(), "{bad}");
        }
    }
}
