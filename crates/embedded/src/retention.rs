//! The retention sweeper: removes what [`Retention`] says is past keeping, in the background.
//!
//! - Events, with everything derived from them (deliveries and attempts, found from the event's
//!   planned subscriptions), go together so nothing dangles; the core's rule
//!   ([`Retention::judge`]) decides, and keeps anything still in flight: a delivery pending or
//!   retrying, or an event a queued message names (not fanned out yet, or a delivery waiting for
//!   its first attempt, which is stored only then). The queue's in-memory index is read before the
//!   write and the deliveries inside it, on the writer thread, so a replay that lands meanwhile
//!   (it stores its delivery as pending with its message, in one commit) is seen.
//! - Idempotency records go when their window has ended (intake already treats them as absent).
//! - Statistics rows are dropped by their own writes (`crate::stats`); queue messages by their acks.
//!
//! Events are read in key order, which within a tenant is time order (ids are ULIDs), so a pass
//! reads each tenant's expired head and stops at its first young event. Removals go through the
//! writer in small operations, one in flight at a time, so they ride in the group commits between
//! deliveries' writes instead of stalling them; the sweeper adds no commit of its own while
//! deliveries are flowing.
//!
//! Removed records leave the disk when fjall's compactions merge them with their tombstones,
//! which happens as new writes flow; when the service goes quiet after a pass that removed
//! anything, the sweeper compacts the database fully (see `compact`), so the data folder shrinks
//! to what it still holds.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use herald_core::ids::{DeliveryId, EventId, TenantId};
use herald_core::ports::{Clock, StoreError};
use herald_core::retention::{idempotency_expired, DeliveryState, Retention, Verdict};
use jiff::Timestamp;
use serde::Deserialize;

use crate::compact::{self, Compaction};
use crate::tables::{attempts_prefix, delivery_key, prefix1, prefix_end, Tbl};
use crate::writer::WriteCtx;
use crate::{EmbeddedDb, Inner};

/// Events judged in one write: with ten deliveries each, about 2,600 row removals, a few
/// milliseconds of the writer's time.
const EVENTS_PER_WRITE: usize = 64;

/// Idempotency records read per step of a pass, and removed per write at most.
const IDEMPOTENCY_PER_STEP: usize = 1024;

/// What a sweep removed, and what it kept that is past the retention.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
    pub idempotency_records: u64,
    /// Events past the retention kept because something of them is still in flight.
    pub kept_in_flight: u64,
}

impl Swept {
    fn add(&mut self, other: Swept) {
        self.events += other.events;
        self.deliveries += other.deliveries;
        self.attempts += other.attempts;
        self.idempotency_records += other.idempotency_records;
        self.kept_in_flight += other.kept_in_flight;
    }

    fn removed_any(&self) -> bool {
        self.events + self.deliveries + self.attempts + self.idempotency_records > 0
    }
}

/// How long the writer must have been idle before the sweeper compacts the database (or the
/// sweep interval, when shorter).
const COMPACT_QUIET: Duration = Duration::from_secs(5);

/// How often the background sweeper runs: a quarter of the retention, between 1 s and 1 min.
pub fn sweep_interval(retention: Retention) -> Duration {
    (retention.keep() / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

impl EmbeddedDb {
    /// One pass: removes everything past `retention` at `now` (see the module docs) and answers
    /// what it removed.
    pub async fn sweep(&self, retention: Retention, now: Timestamp) -> Result<Swept, StoreError> {
        let weak = Arc::downgrade(&self.inner);
        Ok(sweep_pass(&weak, retention, now).await?.unwrap_or_default())
    }

    /// Compacts the database if the writer has been idle for `quiet` and the data folder is not
    /// small (see the `compact` module). The sweeper calls it after passes that removed anything.
    pub async fn compact(&self, quiet: Duration) -> Result<Compaction, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let idle = inner.writer.idle_for();
            compact::run(&inner.kv, &inner.path, idle, quiet)
        })
        .await
        .map_err(StoreError::backend)?
        .map_err(StoreError::backend)
    }

    /// Sweeps now and then every [`sweep_interval`], reading the time from `clock`. The task
    /// does not keep the database open: it ends once every other handle is gone (or when aborted).
    pub fn spawn_sweeper(
        &self,
        retention: Retention,
        clock: Arc<dyn Clock>,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let every = sweep_interval(retention);
        tokio::spawn(async move {
            // Whether a pass removed anything since the last compaction.
            let mut removed = false;
            loop {
                match sweep_pass(&weak, retention, clock.now()).await {
                    Ok(None) => return,
                    Ok(Some(swept)) if swept.removed_any() => {
                        tracing::info!(?swept, "retention sweep");
                        removed = true;
                    }
                    Ok(Some(_)) => {}
                    Err(error) => {
                        tracing::warn!(%error, "retention sweep failed; trying again later")
                    }
                }
                tokio::time::sleep(every).await;
                if !removed {
                    continue;
                }
                // Before the next pass writes: quiet means nobody else wrote since this one.
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                match (EmbeddedDb { inner })
                    .compact(every.min(COMPACT_QUIET))
                    .await
                {
                    Ok(outcome) => {
                        tracing::debug!(?outcome, "compaction check");
                        removed = matches!(outcome, Compaction::Busy);
                    }
                    Err(error) => tracing::warn!(%error, "compaction failed; trying again later"),
                }
            }
        })
    }
}

/// One event that may be past the retention, as found by its key.
struct Candidate {
    key: String,
    tenant: TenantId,
    id: EventId,
}

/// A whole pass; `None` when the database was closed meanwhile.
async fn sweep_pass(
    weak: &Weak<Inner>,
    retention: Retention,
    now: Timestamp,
) -> Result<Option<Swept>, StoreError> {
    let mut swept = Swept::default();
    let cutoff_ms = u64::try_from(retention.cutoff(now).as_millisecond()).unwrap_or(0);
    let mut from = String::new();
    loop {
        let Some(inner) = weak.upgrade() else {
            return Ok(None);
        };
        let (batch, next) = blocking(&inner, move |inner| {
            read_candidates(inner, &from, cutoff_ms, EVENTS_PER_WRITE)
        })
        .await?;
        if !batch.is_empty() {
            let asked: HashSet<(TenantId, EventId)> =
                batch.iter().map(|c| (c.tenant, c.id)).collect();
            let named = inner.queues.naming(&asked);
            let step = inner
                .writer
                .write(move |ctx| remove_expired(ctx, &batch, &named, retention, now))
                .await?;
            swept.add(step);
        }
        drop(inner);
        match next {
            Some(next) => from = next,
            None => break,
        }
        tokio::task::yield_now().await;
    }
    let mut from = String::new();
    loop {
        let Some(inner) = weak.upgrade() else {
            return Ok(None);
        };
        let (keys, next) = blocking(&inner, move |inner| {
            read_expired_idempotency(inner, &from, now, IDEMPOTENCY_PER_STEP)
        })
        .await?;
        if !keys.is_empty() {
            let removed = inner
                .writer
                .write(move |ctx| remove_idempotency(ctx, &keys, now))
                .await?;
            swept.idempotency_records += removed;
        }
        drop(inner);
        match next {
            Some(next) => from = next,
            None => break,
        }
        tokio::task::yield_now().await;
    }
    Ok(Some(swept))
}

/// Runs a read that scans on the blocking pool.
async fn blocking<R, F>(inner: &Arc<Inner>, f: F) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce(&Inner) -> Result<R, StoreError> + Send + 'static,
{
    let inner = Arc::clone(inner);
    tokio::task::spawn_blocking(move || f(&inner))
        .await
        .map_err(StoreError::backend)?
}

/// The smallest key after `key`.
fn after(key: &str) -> String {
    format!("{key}\0")
}

/// Up to `max` events from `from` on whose id was made before `cutoff_ms`, each tenant's read up
/// to its first younger one; and where to go on from, if there may be more.
fn read_candidates(
    inner: &Inner,
    from: &str,
    cutoff_ms: u64,
    max: usize,
) -> Result<(Vec<Candidate>, Option<String>), StoreError> {
    let table = inner.read_table(Tbl::Events)?;
    let mut out = Vec::new();
    let mut start = from.to_owned();
    loop {
        let mut next_tenant = None;
        for row in table.range(start.as_str()..).map_err(StoreError::backend)? {
            let (key, _) = row.map_err(StoreError::backend)?;
            let key = key.value();
            let parsed = key
                .split_once('/')
                .and_then(|(t, e)| Some((TenantId::parse(t).ok()?, EventId::parse(e).ok()?)));
            let Some((tenant, id)) = parsed else {
                continue;
            };
            if id.timestamp_ms() >= cutoff_ms {
                // This tenant's later events are younger still.
                next_tenant = Some(prefix_end(&prefix1(tenant)));
                break;
            }
            out.push(Candidate {
                key: key.to_owned(),
                tenant,
                id,
            });
            if out.len() >= max {
                return Ok((out, Some(after(key))));
            }
        }
        match next_tenant {
            Some(next) => start = next,
            None => return Ok((out, None)),
        }
    }
}

/// Judges each candidate and removes those past keeping, with everything derived from them. A
/// record that does not decode is left alone (and logged): an error after a removal would roll
/// back the whole group commit, other callers' writes with it.
fn remove_expired(
    ctx: &mut WriteCtx<'_>,
    batch: &[Candidate],
    named: &HashSet<(TenantId, EventId)>,
    retention: Retention,
    now: Timestamp,
) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    for c in batch {
        let Some(bytes) = ctx.get(Tbl::Events, &c.key)? else {
            continue;
        };
        let Ok(event) = crate::codec::decode_event_head(&bytes) else {
            tracing::warn!(key = %c.key, "retention: an event that does not decode is kept");
            continue;
        };
        // Every delivery (and attempt) of an event derives its id from one of its planned
        // subscriptions.
        let mut ids: Vec<DeliveryId> = event
            .subscriptions
            .iter()
            .map(|s| DeliveryId::derive(&c.id, s))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut deliveries = Vec::with_capacity(ids.len());
        let mut undecodable = false;
        for id in ids {
            let head = match ctx.get(Tbl::Deliveries, &delivery_key(&c.tenant, &id))? {
                Some(bytes) => match crate::store::decode_delivery(&bytes) {
                    Ok(head) => Some(head),
                    Err(_) => {
                        undecodable = true;
                        None
                    }
                },
                None => None,
            };
            deliveries.push((id, head));
        }
        if undecodable {
            tracing::warn!(key = %c.key, "retention: a delivery that does not decode keeps its event");
            continue;
        }
        let states = deliveries.iter().filter_map(|(_, head)| {
            head.as_ref().map(|h| DeliveryState {
                status: h.status,
                updated_at: h.updated_at,
            })
        });
        match retention.judge(
            event.timestamp,
            states,
            named.contains(&(c.tenant, c.id)),
            now,
        ) {
            Verdict::Young => continue,
            Verdict::InFlight => {
                swept.kept_in_flight += 1;
                continue;
            }
            Verdict::Remove => {}
        }
        for (id, head) in &deliveries {
            let attempts = attempts_prefix(&c.tenant, id);
            swept.attempts +=
                ctx.remove_range_counted(Tbl::Attempts, &attempts, &prefix_end(&attempts))?;
            if head.is_some() && ctx.remove(Tbl::Deliveries, &delivery_key(&c.tenant, id))? {
                swept.deliveries += 1;
            }
        }
        ctx.remove(Tbl::Events, &c.key)?;
        swept.events += 1;
    }
    Ok(swept)
}

/// The end of an idempotency record's window (a record without one never expires).
#[derive(Deserialize)]
struct WindowEnd {
    expires_at: Option<Timestamp>,
}

fn expired_record(bytes: &[u8], now: Timestamp) -> bool {
    serde_json::from_slice::<WindowEnd>(bytes)
        .ok()
        .and_then(|w| w.expires_at)
        .is_some_and(|end| idempotency_expired(end, now))
}

/// The expired records among up to `max` rows from `from` on, and where to go on from.
fn read_expired_idempotency(
    inner: &Inner,
    from: &str,
    now: Timestamp,
    max: usize,
) -> Result<(Vec<String>, Option<String>), StoreError> {
    let table = inner.read_table(Tbl::Idempotency)?;
    let mut expired = Vec::new();
    for (read, row) in table
        .range(from..)
        .map_err(StoreError::backend)?
        .enumerate()
    {
        let (key, value) = row.map_err(StoreError::backend)?;
        if read >= max {
            return Ok((expired, Some(key.value().to_owned())));
        }
        if expired_record(value.value(), now) {
            expired.push(key.value().to_owned());
        }
    }
    Ok((expired, None))
}

/// Removes the records still expired (intake may have replaced one with a fresh window since).
fn remove_idempotency(
    ctx: &mut WriteCtx<'_>,
    keys: &[String],
    now: Timestamp,
) -> Result<u64, StoreError> {
    let mut removed = 0;
    for key in keys {
        let Some(bytes) = ctx.get(Tbl::Idempotency, key)? else {
            continue;
        };
        if expired_record(&bytes, now) && ctx.remove(Tbl::Idempotency, key)? {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod sweep_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweeper_runs_often_enough_and_not_too_often() {
        let every = |s| sweep_interval(Retention::new(Duration::from_secs(s)).unwrap_or_default());
        assert_eq!(every(60), Duration::from_secs(15));
        assert_eq!(every(2), Duration::from_secs(1));
        assert_eq!(every(30 * 24 * 3600), Duration::from_secs(60));
    }

    #[test]
    fn a_window_end_is_read_from_the_record() {
        let now = Timestamp::from_second(1_000).unwrap_or(Timestamp::UNIX_EPOCH);
        assert!(expired_record(
            br#"{"expires_at":"1970-01-01T00:00:10Z"}"#,
            now
        ));
        assert!(!expired_record(
            br#"{"expires_at":"1970-01-01T01:00:00Z"}"#,
            now
        ));
        assert!(!expired_record(br#"{"key":"k"}"#, now), "no window: kept");
        assert!(!expired_record(b"not json", now));
    }
}
