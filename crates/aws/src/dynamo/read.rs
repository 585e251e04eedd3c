//! Reads: GetItem, BatchGetItem, and Query with paging — one partition newest first, or the shards
//! of a delivery log merged newest first.

use std::collections::VecDeque;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use herald_core::ports::{Page, StoreError};

use super::codec::{s, Item, Stored, PK, SK};
use super::DynamoStore;
use crate::error::store_backend;

/// With a filter, most rows may be dropped: read bigger pages than the caller asked for.
const FILTERED_BATCH: usize = 100;
/// BatchGetItem takes at most this many keys per call.
const BATCH_GET_MAX: usize = 100;
/// How often BatchGetItem's unprocessed keys are asked for again before giving up.
const UNPROCESSED_RETRIES: u32 = 5;

/// A key condition for Query: `pk = :pk`, optionally `AND sk < :before` or
/// `AND begins_with(sk, :prefix)`.
pub(super) struct KeyQuery {
    pub pk: String,
    pub sort: SortCondition,
    pub forward: bool,
    /// Strongly consistent (reads follow writes), or eventually (half the read units).
    pub consistent: bool,
}

pub(super) enum SortCondition {
    Any,
    Before(String),
    BeginsWith(&'static str),
}

impl KeyQuery {
    /// Newest first (ids are ULIDs: key order is creation order), before `cursor` if given.
    pub fn newest_first(pk: String, cursor: Option<String>) -> Self {
        Self {
            pk,
            sort: cursor.map_or(SortCondition::Any, SortCondition::Before),
            forward: false,
            consistent: true,
        }
    }

    /// The whole partition in key order.
    pub fn all(pk: String) -> Self {
        Self {
            pk,
            sort: SortCondition::Any,
            forward: true,
            consistent: true,
        }
    }
}

impl DynamoStore {
    pub(super) async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.config.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            // Reads follow writes everywhere else in Herald (the embedded store is a database).
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_backend("DynamoDB.GetItem", e))?;
        Ok(out.item)
    }

    pub(super) async fn get_record<T: Stored>(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_item(pk, sk)
            .await?
            .map(|item| T::from_item(&item))
            .transpose()
    }

    /// The items of `keys` ((pk, sk) pairs) that exist, in no particular order.
    pub(super) async fn batch_get(
        &self,
        keys: Vec<(String, String)>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for (pk, sk) in chunk {
                request = request.keys(
                    [
                        (PK.to_owned(), s(pk.clone())),
                        (SK.to_owned(), s(sk.clone())),
                    ]
                    .into(),
                );
            }
            let mut pending = Some(request.build().map_err(StoreError::backend)?);
            let mut tries = 0;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.config.table, request)
                    .send()
                    .await
                    .map_err(|e| store_backend("DynamoDB.BatchGetItem", e))?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.config.table).unwrap_or_default());
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.config.table))
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    tries += 1;
                    if tries > UNPROCESSED_RETRIES {
                        return Err(StoreError::backend(
                            "DynamoDB.BatchGetItem kept leaving keys unprocessed",
                        ));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << tries)).await;
                }
            }
        }
        Ok(found)
    }

    /// One Query call: the items and the key to continue from, if DynamoDB stopped early.
    pub(super) async fn query_page(
        &self,
        q: &KeyQuery,
        limit: Option<usize>,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.config.table)
            .scan_index_forward(q.forward)
            .consistent_read(q.consistent)
            .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
            .set_exclusive_start_key(start)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(q.pk.clone()));
        request = match &q.sort {
            SortCondition::Any => request.key_condition_expression("#pk = :pk"),
            SortCondition::Before(before) => request
                .key_condition_expression("#pk = :pk AND #sk < :sk")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":sk", s(before.clone())),
            SortCondition::BeginsWith(prefix) => request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :sk)")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":sk", s(*prefix)),
        };
        let out = request
            .send()
            .await
            .map_err(|e| store_backend("DynamoDB.Query", e))?;
        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), next))
    }

    /// How many items the query matches, counting no further than `up_to`.
    pub(super) async fn count(&self, q: &KeyQuery, up_to: usize) -> Result<usize, StoreError> {
        let mut count = 0;
        let mut start = None;
        while count < up_to {
            let (items, next) = self.query_page(q, Some(up_to - count), start).await?;
            count += items.len();
            match next {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(count.min(up_to))
    }

    /// Every item the query matches, in its order.
    pub(super) async fn query_items(&self, q: &KeyQuery) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query_page(q, None, start).await?;
            out.extend(items);
            match next {
                Some(key) => start = Some(key),
                None => return Ok(out),
            }
        }
    }

    /// Every record the query matches, in its order, that `keep` keeps.
    pub(super) async fn query_all<T: Stored>(
        &self,
        q: &KeyQuery,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for item in self.query_items(q).await? {
            let record = T::from_item(&item)?;
            if keep(&record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// One page of a descending query: up to `limit` kept records, looking one ahead to know
    /// whether there is a next page; its cursor is `cursor_of` the last record returned.
    pub(super) async fn page<T: Stored>(
        &self,
        q: &KeyQuery,
        limit: usize,
        filtered: bool,
        keep: impl Fn(&T) -> bool,
        cursor_of: impl Fn(&T) -> String,
    ) -> Result<Page<T>, StoreError> {
        // A zero limit would page forever without progress.
        let limit = limit.max(1);
        let want = limit.saturating_add(1);
        let mut shard = Shard::new(q);
        let mut items = Vec::new();
        let batch = if filtered { FILTERED_BATCH } else { want };
        while items.len() < want {
            let Some(record) = shard.next(self, batch, &keep).await? else {
                break;
            };
            items.push(record);
        }
        Ok(cut(items, limit, cursor_of))
    }

    /// One page, newest first by sort key, of the records of several partitions (a delivery log's
    /// shards, a tenant's event shards), merged: each shard is read in small chunks, only as far as
    /// the merge needs; in bigger ones when `filtered` (most rows may be dropped).
    pub(super) async fn merged_page<T: Stored>(
        &self,
        queries: &[KeyQuery],
        limit: usize,
        filtered: bool,
        keep: impl Fn(&T) -> bool,
        sort_key: impl Fn(&T) -> String,
    ) -> Result<Page<T>, StoreError> {
        let limit = limit.max(1);
        let want = limit.saturating_add(1);
        let chunk = if filtered {
            FILTERED_BATCH
        } else {
            (want / queries.len().max(1)).clamp(4, 100) + 1
        };
        let mut shards: Vec<Shard<'_, T>> = queries.iter().map(Shard::new).collect();
        let mut items = Vec::with_capacity(want);
        while items.len() < want {
            // The newest head among the shards.
            let mut newest: Option<(usize, String)> = None;
            for (i, shard) in shards.iter_mut().enumerate() {
                if let Some(head) = shard.peek(self, chunk, &keep).await? {
                    let key = sort_key(head);
                    if newest.as_ref().is_none_or(|(_, k)| key > *k) {
                        newest = Some((i, key));
                    }
                }
            }
            let Some((i, _)) = newest else { break };
            if let Some(record) = shards[i].buffer.pop_front() {
                items.push(record);
            }
        }
        Ok(cut(items, limit, sort_key))
    }
}

/// Up to `limit` of `items`, and the cursor of the next page when there was one more.
fn cut<T>(mut items: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more {
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// A partition read in order, a chunk at a time, keeping what `keep` keeps.
struct Shard<'q, T> {
    query: &'q KeyQuery,
    buffer: VecDeque<T>,
    start: Option<Item>,
    done: bool,
}

impl<'q, T: Stored> Shard<'q, T> {
    fn new(query: &'q KeyQuery) -> Self {
        Self {
            query,
            buffer: VecDeque::new(),
            start: None,
            done: false,
        }
    }

    /// The next kept record, reading chunks of `chunk` items until one is kept or the partition ends.
    async fn peek(
        &mut self,
        store: &DynamoStore,
        chunk: usize,
        keep: &impl Fn(&T) -> bool,
    ) -> Result<Option<&T>, StoreError> {
        while self.buffer.is_empty() && !self.done {
            let (rows, next) = store
                .query_page(self.query, Some(chunk), self.start.take())
                .await?;
            for row in &rows {
                let record = T::from_item(row)?;
                if keep(&record) {
                    self.buffer.push_back(record);
                }
            }
            match next {
                Some(key) => self.start = Some(key),
                None => self.done = true,
            }
        }
        Ok(self.buffer.front())
    }

    async fn next(
        &mut self,
        store: &DynamoStore,
        chunk: usize,
        keep: &impl Fn(&T) -> bool,
    ) -> Result<Option<T>, StoreError> {
        self.peek(store, chunk, keep).await?;
        Ok(self.buffer.pop_front())
    }
}
