//! Delivery statistics ([`StatsStore`]) in the store's table: one item per subscription and hour,
//! `pk` = `ten_…#STATS#sub_…`, `sk` = `hour#2026-12-06T09` (UTC; text order is time order), with a
//! number attribute per count (`ok`, `fail`, `retry`, `att`) and per latency bin that is not zero
//! (`l0` … `l29`, the bins of `herald_core::stats::LATENCY_BOUNDS_MS`), and `expires_at` (TTL)
//! [`RETENTION`](herald_core::stats::RETENTION) after the hour ended.
//!
//! - Adding: one UpdateItem per delta, `ADD` of its non-zero counts (atomic, so every instance
//!   adds to the same item without reading it) and `SET expires_at`. The buffer flushed at the end
//!   of each SQS batch holds one delta per subscription and hour touched, so this is one write per
//!   (subscription, hour) per batch, not one per delivery. An item stays well under 1 KB: one
//!   write unit.
//! - Reading a window: one Query of the partition, `sk BETWEEN` the window's first and last hour,
//!   eventually consistent (statistics need not be read-after-write; half the read units).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::join_all;
use herald_core::ids::{SubscriptionId, TenantId};
use herald_core::ports::StoreError;
use herald_core::stats::{Hour, HourStats, LatencyHistogram, StatsDelta, StatsStore, LATENCY_BINS};

use super::codec::{n, s, Item, EXPIRES_AT, PK, SK};
use super::DynamoStore;
use crate::error::store_backend;

const SUCCEEDED: &str = "ok";
const FAILED: &str = "fail";
const RETRYING: &str = "retry";
const ATTEMPTS: &str = "att";
const HOUR_PREFIX: &str = "hour#";
/// UpdateItems in flight at once for one flush.
const CONCURRENCY: usize = 16;

fn stats_pk(tenant: &TenantId, subscription: &SubscriptionId) -> String {
    format!("{tenant}#STATS#{subscription}")
}

fn hour_sk(hour: Hour) -> String {
    format!("{HOUR_PREFIX}{}", hour.key())
}

fn bin_name(bin: usize) -> String {
    format!("l{bin}")
}

/// The non-zero counts of `stats`, by attribute name.
fn counts(stats: &HourStats) -> Vec<(String, u64)> {
    let fixed = [
        (SUCCEEDED, stats.succeeded),
        (FAILED, stats.failed),
        (RETRYING, stats.retrying),
        (ATTEMPTS, stats.attempts),
    ];
    fixed
        .into_iter()
        .map(|(name, v)| (name.to_owned(), v))
        .chain(
            stats
                .latency
                .bins()
                .iter()
                .enumerate()
                .map(|(bin, v)| (bin_name(bin), *v)),
        )
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn number(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        None => Ok(0),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|e| StoreError::backend(format!("statistic {name} is not a count: {e}"))),
        Some(_) => Err(StoreError::backend(format!(
            "statistic {name} is not a number"
        ))),
    }
}

fn decode(item: &Item) -> Result<(Hour, HourStats), StoreError> {
    let hour = match item.get(SK) {
        Some(AttributeValue::S(sk)) => sk.strip_prefix(HOUR_PREFIX).and_then(Hour::parse_key),
        _ => None,
    }
    .ok_or_else(|| StoreError::backend("a statistics item has a malformed sort key"))?;
    let mut bins = [0u64; LATENCY_BINS];
    for (bin, count) in bins.iter_mut().enumerate() {
        *count = number(item, &bin_name(bin))?;
    }
    let stats = HourStats {
        succeeded: number(item, SUCCEEDED)?,
        failed: number(item, FAILED)?,
        retrying: number(item, RETRYING)?,
        attempts: number(item, ATTEMPTS)?,
        latency: LatencyHistogram::from_bins(bins),
    };
    Ok((hour, stats))
}

impl DynamoStore {
    /// One UpdateItem adding `delta` to its item.
    async fn add_one(&self, delta: &StatsDelta) -> Result<(), StoreError> {
        let mut names = HashMap::from([("#exp".to_owned(), EXPIRES_AT.to_owned())]);
        let mut values = HashMap::from([(":exp".to_owned(), n(delta.hour.expires_at()))]);
        let mut adds = Vec::new();
        for (k, (name, count)) in counts(&delta.stats).into_iter().enumerate() {
            adds.push(format!("#a{k} :a{k}"));
            names.insert(format!("#a{k}"), name);
            values.insert(format!(":a{k}"), AttributeValue::N(count.to_string()));
        }
        if adds.is_empty() {
            return Ok(());
        }
        self.client
            .update_item()
            .table_name(&self.config.table)
            .key(PK, s(stats_pk(&delta.tenant, &delta.subscription)))
            .key(SK, s(hour_sk(delta.hour)))
            .update_expression(format!("ADD {} SET #exp = :exp", adds.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| store_backend("DynamoDB.UpdateItem", e))?;
        Ok(())
    }
}

#[async_trait]
impl StatsStore for DynamoStore {
    async fn add_stats(&self, deltas: &[StatsDelta]) -> Result<(), StoreError> {
        let mut results = Vec::with_capacity(deltas.len());
        for chunk in deltas.chunks(CONCURRENCY) {
            results.extend(join_all(chunk.iter().map(|d| self.add_one(d))).await);
        }
        let failed = results.iter().filter(|r| r.is_err()).count();
        match results.into_iter().find_map(Result::err) {
            None => Ok(()),
            Some(first) if failed == 1 => Err(first),
            Some(first) => Err(StoreError::backend(format!(
                "{failed} of {} statistics writes failed; the first: {first}",
                deltas.len()
            ))),
        }
    }

    async fn read_stats(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        from: Hour,
        to: Hour,
    ) -> Result<Vec<(Hour, HourStats)>, StoreError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.config.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :last")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(stats_pk(tenant, subscription)))
                .expression_attribute_values(":from", s(hour_sk(from)))
                .expression_attribute_values(":last", s(hour_sk(to.plus(-1))))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_backend("DynamoDB.Query", e))?;
            for item in page.items() {
                out.push(decode(item)?);
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use herald_core::stats::Tally;

    use super::*;

    #[test]
    fn an_item_holds_the_non_zero_counts_and_reads_back_whole() {
        let mut stats = HourStats::default();
        stats.attempt(40, Tally::Succeeded);
        stats.attempt(90_000, Tally::Retrying);
        stats.given_up();
        let written = counts(&stats);
        let names: Vec<&str> = written.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["ok", "fail", "retry", "att", "l9", "l29"]);
        let hour = Hour::parse_key("2026-12-06T09").unwrap();
        let mut item: Item = written
            .into_iter()
            .map(|(k, v)| (k, AttributeValue::N(v.to_string())))
            .collect();
        item.insert(SK.into(), s(hour_sk(hour)));
        assert_eq!(hour_sk(hour), "hour#2026-12-06T09");
        assert_eq!(decode(&item).unwrap(), (hour, stats));
    }
}
