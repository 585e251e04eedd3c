//! What a delivery costs on AWS, from the counters Herald's meter published (`/metrics` of
//! `herald dev --store aws` with `HERALD_METER_AWS`): the arithmetic of `--store aws`, with the
//! prices and the targets as dated constants. Nothing here measures anything.
//!
//! Per delivery = (counter after − counter before) / deliveries of the phase. SQS requests leave
//! out the ReceiveMessage calls that found nothing: polling an idle queue costs by the hour, not
//! by the delivery (on Lambda the event source mapping polls the same way). `herald dev`'s workers
//! receive and delete like the event source mapping would, but delete one message per call where
//! the mapping deletes in batches: the SQS figure is an upper bound of the Lambda one.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// us-east-1 list prices, in dollars per million, as published on aws.amazon.com/<service>/pricing
/// and unchanged since the DynamoDB on-demand price cut of 2024-11-01 (half the old $1.25 and
/// $0.25). Check them before quoting a figure.
pub const PRICES_AS_OF: &str = "2024-11-01 (us-east-1 list prices)";
/// DynamoDB on-demand, Standard table class: per million write request units.
pub const DYNAMODB_WRU_PER_M: f64 = 0.625;
/// DynamoDB on-demand, Standard table class: per million read request units.
pub const DYNAMODB_RRU_PER_M: f64 = 0.125;
/// SQS standard queue, per million requests (after the first million a month, free).
pub const SQS_PER_M: f64 = 0.40;
/// API Gateway HTTP API, per million requests (first 300 million a month).
pub const API_GATEWAY_PER_M: f64 = 1.00;
/// Lambda, per million requests.
pub const LAMBDA_REQUESTS_PER_M: f64 = 0.20;
/// Lambda on arm64 (template.yaml's `Architectures: [arm64]`), per GB-second; x86 is
/// $0.0000166667.
pub const LAMBDA_GB_SECOND_ARM64: f64 = 0.000_013_333_4;

/// The targets per delivery (~1 KB events, custom platform, receiver answering 204).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub fanout: u32,
    pub write_units: f64,
    pub read_units: f64,
    pub sqs_requests: f64,
    /// DynamoDB + SQS, dollars per million deliveries.
    pub usd_per_million: f64,
}

pub const TARGETS: [Target; 2] = [
    Target {
        fanout: 1,
        write_units: 2.2,
        read_units: 0.5,
        sqs_requests: 1.6,
        usd_per_million: 2.00,
    },
    Target {
        fanout: 10,
        write_units: 1.3,
        read_units: 0.2,
        sqs_requests: 0.4,
        usd_per_million: 1.00,
    },
];

/// How the Lambda share is estimated: invocations from full batches, an assumed duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LambdaModel {
    /// template.yaml's `MemorySize`.
    pub memory_mb: u32,
    /// Assumed billed duration of one invocation (not measured: `herald dev` is one process).
    pub ms_per_invocation: f64,
    /// The event source mappings' `BatchSize`.
    pub batch_size: u32,
}

/// The meter's counters at one moment, read from `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// operation → calls (`SQS.SendMessageBatch`, `DynamoDB.PutItem`, …).
    pub calls: BTreeMap<String, f64>,
    pub write_units: f64,
    pub read_units: f64,
    pub sqs_requests: f64,
    pub sqs_empty_receives: f64,
}

impl Counters {
    /// From `scrape_metrics`' map (names without `herald_`).
    pub fn from_metrics(metrics: &BTreeMap<String, f64>) -> Self {
        let mut calls = BTreeMap::new();
        for (name, value) in metrics {
            let Some(labels) = name.strip_prefix("aws_calls_total{") else {
                continue;
            };
            let label = |key: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                    .map(|v| v.trim_end_matches('}').trim_end_matches('"').to_owned())
            };
            if let (Some(service), Some(op)) = (label("service"), label("operation")) {
                calls.insert(format!("{service}.{op}"), *value);
            }
        }
        let get = |k: &str| metrics.get(k).copied().unwrap_or(0.0);
        Self {
            calls,
            write_units: get("dynamodb_write_units_total"),
            read_units: get("dynamodb_read_units_total"),
            sqs_requests: get("sqs_requests_total"),
            sqs_empty_receives: get("sqs_empty_receives_total"),
        }
    }

    pub fn since(&self, before: &Counters) -> Counters {
        Counters {
            calls: self
                .calls
                .iter()
                .map(|(k, v)| (k.clone(), v - before.calls.get(k).copied().unwrap_or(0.0)))
                .filter(|(_, v)| *v > 0.0)
                .collect(),
            write_units: self.write_units - before.write_units,
            read_units: self.read_units - before.read_units,
            sqs_requests: self.sqs_requests - before.sqs_requests,
            sqs_empty_receives: self.sqs_empty_receives - before.sqs_empty_receives,
        }
    }

    /// Calls that are not empty polls (everything but the ReceiveMessage that found nothing).
    pub fn working_calls(&self) -> f64 {
        self.calls.values().sum::<f64>() - self.sqs_empty_receives
    }
}

/// One phase's cost, per delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct PerDelivery {
    pub fanout: u32,
    pub deliveries: u64,
    /// operation → calls per delivery; `SQS.ReceiveMessage` without the empty ones.
    pub calls: BTreeMap<String, f64>,
    pub write_units: f64,
    pub read_units: f64,
    /// Without empty receives.
    pub sqs_requests: f64,
    /// Empty receives in the phase (total, not per delivery).
    pub empty_receives: f64,
    pub dynamodb_usd_per_m: f64,
    pub sqs_usd_per_m: f64,
    pub api_gateway_usd_per_m: f64,
    pub lambda_usd_per_m: f64,
}

impl PerDelivery {
    pub fn of(delta: &Counters, deliveries: u64, fanout: u32, lambda: &LambdaModel) -> Self {
        let d = deliveries.max(1) as f64;
        let f = f64::from(fanout.max(1));
        let mut calls: BTreeMap<String, f64> = delta
            .calls
            .iter()
            .map(|(k, v)| (k.clone(), v / d))
            .collect();
        if let Some(receives) = delta.calls.get("SQS.ReceiveMessage") {
            calls.insert(
                "SQS.ReceiveMessage".to_owned(),
                (receives - delta.sqs_empty_receives).max(0.0) / d,
            );
        }
        calls.retain(|_, v| *v > 0.0);
        let write_units = delta.write_units / d;
        let read_units = delta.read_units / d;
        let sqs_requests = (delta.sqs_requests - delta.sqs_empty_receives).max(0.0) / d;
        // Lambda: one ingest invocation per event (1/F per delivery), one fan-out invocation per
        // batch of events, one deliver invocation per batch of deliveries, batches full.
        let batch = f64::from(lambda.batch_size.max(1));
        let invocations = 1.0 / f + 1.0 / (f * batch) + 1.0 / batch;
        let gb_s =
            invocations * f64::from(lambda.memory_mb) / 1024.0 * lambda.ms_per_invocation / 1000.0;
        Self {
            fanout,
            deliveries,
            calls,
            write_units,
            read_units,
            sqs_requests,
            empty_receives: delta.sqs_empty_receives,
            dynamodb_usd_per_m: write_units * DYNAMODB_WRU_PER_M + read_units * DYNAMODB_RRU_PER_M,
            sqs_usd_per_m: sqs_requests * SQS_PER_M,
            api_gateway_usd_per_m: API_GATEWAY_PER_M / f,
            lambda_usd_per_m: invocations * LAMBDA_REQUESTS_PER_M
                + gb_s * LAMBDA_GB_SECOND_ARM64 * 1e6,
        }
    }

    /// DynamoDB + SQS, dollars per million deliveries: what the targets are stated for.
    pub fn data_usd_per_m(&self) -> f64 {
        self.dynamodb_usd_per_m + self.sqs_usd_per_m
    }

    pub fn total_usd_per_m(&self) -> f64 {
        self.data_usd_per_m() + self.api_gateway_usd_per_m + self.lambda_usd_per_m
    }

    pub fn target(&self) -> Option<Target> {
        TARGETS.iter().copied().find(|t| t.fanout == self.fanout)
    }

    /// `(figure, value, target, ok)` rows for the targets of this fan-out.
    pub fn verdicts(&self) -> Vec<(&'static str, f64, f64, bool)> {
        let Some(t) = self.target() else {
            return Vec::new();
        };
        vec![
            ("DynamoDB write units", self.write_units, t.write_units),
            ("DynamoDB read units", self.read_units, t.read_units),
            ("SQS requests", self.sqs_requests, t.sqs_requests),
            (
                "DynamoDB + SQS $/M deliveries",
                self.data_usd_per_m(),
                t.usd_per_million,
            ),
        ]
        .into_iter()
        .map(|(name, value, target)| (name, value, target, value <= target + 1e-9))
        .collect()
    }

    pub fn json(&self) -> Value {
        let r = |v: f64| (v * 1000.0).round() / 1000.0;
        json!({
            "fanout": self.fanout,
            "deliveries": self.deliveries,
            "calls_per_delivery": self.calls.iter().map(|(k, v)| (k.clone(), json!(r(*v)))).collect::<serde_json::Map<_, _>>(),
            "dynamodb_write_units": r(self.write_units),
            "dynamodb_read_units": r(self.read_units),
            "sqs_requests": r(self.sqs_requests),
            "sqs_empty_receives_total": self.empty_receives,
            "usd_per_million_deliveries": {
                "dynamodb": r(self.dynamodb_usd_per_m),
                "sqs": r(self.sqs_usd_per_m),
                "dynamodb_and_sqs": r(self.data_usd_per_m()),
                "api_gateway": r(self.api_gateway_usd_per_m),
                "lambda": r(self.lambda_usd_per_m),
                "total": r(self.total_usd_per_m()),
            },
            "targets": self.verdicts().iter().map(|(name, value, target, ok)| json!({
                "figure": name, "value": r(*value), "target": target, "ok": ok,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(rows: &[(&str, f64)]) -> BTreeMap<String, f64> {
        rows.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn counters_are_read_from_the_metrics_page() {
        let m = metrics(&[
            (
                "aws_calls_total{service=\"DynamoDB\",operation=\"PutItem\"}",
                4.0,
            ),
            (
                "aws_calls_total{service=\"SQS\",operation=\"ReceiveMessage\"}",
                3.0,
            ),
            ("dynamodb_write_units_total", 12.0),
            ("dynamodb_read_units_total", 2.5),
            ("sqs_requests_total", 3.0),
            ("sqs_empty_receives_total", 1.0),
            ("events_accepted_total", 9.0),
        ]);
        let c = Counters::from_metrics(&m);
        assert_eq!(c.calls.get("DynamoDB.PutItem"), Some(&4.0));
        assert_eq!(c.calls.get("SQS.ReceiveMessage"), Some(&3.0));
        assert_eq!((c.write_units, c.read_units), (12.0, 2.5));
        assert_eq!(c.working_calls(), 6.0);
    }

    #[test]
    fn per_delivery_leaves_out_empty_polls_and_prices_at_list() {
        let delta = Counters {
            calls: [
                ("DynamoDB.PutItem".to_owned(), 20.0),
                ("SQS.ReceiveMessage".to_owned(), 14.0),
            ]
            .into(),
            write_units: 100.0,
            read_units: 40.0,
            sqs_requests: 24.0,
            sqs_empty_receives: 4.0,
        };
        let lambda = LambdaModel {
            memory_mb: 1024,
            ms_per_invocation: 1000.0,
            batch_size: 10,
        };
        let p = PerDelivery::of(&delta, 10, 1, &lambda);
        assert_eq!(p.calls.get("SQS.ReceiveMessage"), Some(&1.0));
        assert_eq!(
            (p.write_units, p.read_units, p.sqs_requests),
            (10.0, 4.0, 2.0)
        );
        // 10 WRU × 0.625 + 4 RRU × 0.125 = 6.75; 2 × 0.40 = 0.80.
        assert!((p.dynamodb_usd_per_m - 6.75).abs() < 1e-9);
        assert!((p.sqs_usd_per_m - 0.80).abs() < 1e-9);
        assert!((p.api_gateway_usd_per_m - 1.0).abs() < 1e-9);
        // 1 + 0.1 + 0.1 invocations of 1 GB-s each.
        let lambda_usd = 1.2 * 0.20 + 1.2 * LAMBDA_GB_SECOND_ARM64 * 1e6;
        assert!((p.lambda_usd_per_m - lambda_usd).abs() < 1e-9);
        let verdicts = p.verdicts();
        assert_eq!(verdicts.len(), 4);
        assert!(verdicts.iter().all(|(_, _, _, ok)| !ok));
        assert!(PerDelivery::of(&delta, 10, 3, &lambda)
            .verdicts()
            .is_empty());
    }
}
