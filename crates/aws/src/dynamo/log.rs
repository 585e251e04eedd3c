//! The log, as read back: events (by id, by tenant newest first), deliveries (by id, by subscription newest first, by event) and
//! attempts. Each read is served by key order; none needs an index.

use async_trait::async_trait;
use herald_core::ids::{DeliveryId, EventId, SubscriptionId, TenantId};
use herald_core::model::{Attempt, Delivery, Event};
use herald_core::pattern::EventType;
use herald_core::ports::{DeliveryStore, EventStore, Page, PageRequest, StoreError};

use super::codec::{
    attempts_pk, decode, decode_value, delivery_pk, event_pk, event_pks, keyed_event_pk,
    legacy_event_pk, log_pks, KeyedEvent, ATTEMPT_PREFIX, FIRST, SK_EVENT,
};
use super::read::{KeyQuery, SortCondition};
use super::DynamoStore;

#[async_trait]
impl EventStore for DynamoStore {
    /// The event's item in its shard: one read. Only on a miss, where events were kept before they
    /// were sharded: its own partition (unkeyed) or the item of the key it was accepted under.
    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
    ) -> Result<Option<Event>, StoreError> {
        if let Some(event) = self
            .get_record(event_pk(tenant, id), &id.to_string())
            .await?
        {
            return Ok(Some(event));
        }
        if let Some(event) = self
            .get_record(legacy_event_pk(tenant, id), SK_EVENT)
            .await?
        {
            return Ok(Some(event));
        }
        let Some(item) = self.get_item(keyed_event_pk(tenant, id), SK_EVENT).await? else {
            return Ok(None);
        };
        let keyed: KeyedEvent = decode(&item)?;
        Ok(keyed.event.filter(|e| e.id == *id))
    }

    /// The tenant's event shards, each read newest first, merged (as a delivery log is).
    /// Eventually consistent: an event shows a moment after it is accepted, at half the read
    /// units. A type filter runs in code, reading on (a hundred items a Query) until the page is
    /// full.
    async fn list_events(
        &self,
        tenant: &TenantId,
        event_type: Option<&EventType>,
        page: &PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        let before = page.cursor_as(EventId::parse)?;
        let shards: Vec<KeyQuery> = event_pks(tenant)
            .into_iter()
            .map(|pk| KeyQuery {
                consistent: false,
                ..KeyQuery::newest_first(pk, before.map(|id| id.to_string()))
            })
            .collect();
        self.merged_page(
            &shards,
            page.limit,
            event_type.is_some(),
            |e: &Event| event_type.is_none_or(|t| e.event_type == *t),
            |e| e.id.to_string(),
        )
        .await
    }
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn get_delivery(
        &self,
        tenant: &TenantId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        self.get_record(delivery_pk(tenant, id), &id.to_string())
            .await
    }

    /// The subscription's log shards, each read newest first, merged. Eventually consistent: a
    /// delivery shows in the log a moment after it is written, at half the read units.
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let before = page.cursor_as(DeliveryId::parse)?;
        let shards: Vec<KeyQuery> = log_pks(tenant, subscription)
            .into_iter()
            .map(|pk| KeyQuery {
                consistent: false,
                ..KeyQuery::newest_first(pk, before.map(|id| id.to_string()))
            })
            .collect();
        let subscription = *subscription;
        self.merged_page(
            &shards,
            page.limit,
            false,
            // A shard holds another subscription's deliveries only if their tags collide.
            |d: &Delivery| d.subscription_id == subscription,
            |d| d.id.to_string(),
        )
        .await
    }

    /// The planned deliveries' items, read by key (their ids derive from the event and each
    /// subscription): one BatchGetItem per hundred.
    async fn deliveries_for_event(&self, event: &Event) -> Result<Vec<Delivery>, StoreError> {
        let keys = event
            .delivery_ids()
            .map(|id| (delivery_pk(&event.tenant_id, &id), id.to_string()))
            .collect();
        let mut found: Vec<Delivery> = self
            .batch_get(keys)
            .await?
            .iter()
            .map(decode)
            .collect::<Result<_, _>>()?;
        found.retain(|d| d.tenant_id == event.tenant_id && d.event_id == event.id);
        let order = |d: &Delivery| {
            event
                .subscriptions
                .iter()
                .position(|s| *s == d.subscription_id)
        };
        found.sort_by_key(order);
        Ok(found)
    }

    /// The first attempt, kept inside the delivery's item, and the rest from their partition.
    async fn list_attempts(
        &self,
        tenant: &TenantId,
        delivery: &DeliveryId,
    ) -> Result<Vec<Attempt>, StoreError> {
        let first = match self
            .get_item(delivery_pk(tenant, delivery), &delivery.to_string())
            .await?
        {
            Some(item) => item.get(FIRST).map(decode_value::<Attempt>).transpose()?,
            None => None,
        };
        let q = KeyQuery {
            sort: SortCondition::BeginsWith(ATTEMPT_PREFIX),
            ..KeyQuery::all(attempts_pk(tenant, delivery))
        };
        let mut attempts: Vec<Attempt> = first.into_iter().collect();
        attempts.extend(self.query_all(&q, |_: &Attempt| true).await?);
        attempts.sort_by_key(|a| (a.number, a.started_at));
        Ok(attempts)
    }
}
