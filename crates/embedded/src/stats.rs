//! Delivery statistics ([`StatsStore`]) in the store's file: one row per subscription and hour in
//! [`Tbl::Stats`], keyed `ten_…/sub_…/<hour>` so a window is one key range.
//!
//! Adding reads the hour's row, adds the delta and writes it back, inside the writer's
//! transaction, so concurrent adds never lose counts. The same write removes the subscription's
//! rows older than the retention (at most a few, usually none): the file does not grow with time.

use async_trait::async_trait;
use herald_core::ids::{SubscriptionId, TenantId};
use herald_core::ports::StoreError;
use herald_core::stats::{Hour, HourStats, StatsDelta, StatsStore, HOUR_SECONDS, RETENTION};

use crate::store::EmbeddedStore;
use crate::tables::{key3, last_part, prefix2, Tbl};

/// How many hours a row is kept after the newest written for its subscription.
fn retention_hours() -> i64 {
    i64::try_from(RETENTION.as_secs()).unwrap_or(i64::MAX) / HOUR_SECONDS
}

#[async_trait]
impl StatsStore for EmbeddedStore {
    async fn add_stats(&self, deltas: &[StatsDelta]) -> Result<(), StoreError> {
        if deltas.is_empty() {
            return Ok(());
        }
        let deltas = deltas.to_vec();
        self.inner()
            .writer
            .write(move |ctx| {
                for d in &deltas {
                    let key = key3(d.tenant, d.subscription, d.hour.key());
                    let mut stats: HourStats = match ctx.get(Tbl::Stats, &key)? {
                        Some(bytes) => {
                            serde_json::from_slice(&bytes).map_err(StoreError::backend)?
                        }
                        None => HourStats::default(),
                    };
                    stats.merge(&d.stats);
                    let value = serde_json::to_vec(&stats).map_err(StoreError::backend)?;
                    ctx.put(Tbl::Stats, &key, &value)?;
                    let prefix = prefix2(d.tenant, d.subscription);
                    let oldest_kept = key3(
                        d.tenant,
                        d.subscription,
                        d.hour.plus(-retention_hours()).key(),
                    );
                    ctx.remove_range(Tbl::Stats, &prefix, &oldest_kept)?;
                }
                Ok(())
            })
            .await
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
        let (start, end) = (
            key3(tenant, subscription, from.key()),
            key3(tenant, subscription, to.key()),
        );
        let table = self.inner().read_table(Tbl::Stats)?;
        let mut out = Vec::new();
        for row in table
            .range(start.as_str()..end.as_str())
            .map_err(StoreError::backend)?
        {
            let (key, value) = row.map_err(StoreError::backend)?;
            let hour = Hour::parse_key(last_part(key.value()))
                .ok_or_else(|| StoreError::backend("a statistics row has a malformed key"))?;
            let stats = serde_json::from_slice(value.value()).map_err(StoreError::backend)?;
            out.push((hour, stats));
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use herald_core::stats::Tally;

    use super::*;
    use crate::EmbeddedDb;

    #[tokio::test]
    async fn rows_past_the_retention_go_when_newer_ones_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedDb::open(dir.path()).unwrap().store();
        let (tenant, sub) = (TenantId::new(), SubscriptionId::new());
        let mut one = HourStats::default();
        one.attempt(10, Tally::Succeeded);
        let now = Hour::parse_key("2026-12-06T09").unwrap();
        let at = |hour| StatsDelta {
            tenant,
            subscription: sub,
            hour,
            stats: one,
        };
        let (old, kept) = (
            now.plus(-retention_hours() - 1),
            now.plus(-retention_hours()),
        );
        store.add_stats(&[at(old), at(kept)]).await.unwrap();
        let all = (old, now.plus(1));
        let read = store.read_stats(&tenant, &sub, all.0, all.1).await.unwrap();
        assert_eq!(read, vec![(old, one), (kept, one)]);
        // Writing the current hour removes what is past the retention from it.
        store.add_stats(&[at(now)]).await.unwrap();
        let read = store.read_stats(&tenant, &sub, all.0, all.1).await.unwrap();
        assert_eq!(read, vec![(kept, one), (now, one)]);
    }
}
