//! A subscription's health, kept as attributes of the subscription's item beside its `doc`, so
//! that the owner's updates (which write `doc`) and the workers' (which write these) never
//! overwrite each other. Each [`HealthChange`] is one UpdateItem whose condition is the change's
//! own (`HealthChange::applies_to`): a failure is an atomic `ADD`, a warning or a probe claim holds
//! only for one worker. They cost a write only when something changes: failures, warnings, probes,
//! the first success after failing, and a healthy subscription's success once an hour.
//!
//! | attribute | what |
//! |---|---|
//! | `h_fail` | consecutive failures |
//! | `h_since` | failing since (epoch ms) |
//! | `h_lastfail` | last failure (epoch ms) |
//! | `h_ok` | last success (epoch ms) |
//! | `h_warned` | the highest warning given in this streak |
//! | `h_probe` | when the breaker's probe was claimed (epoch ms) |

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use herald_core::health::{Health, HealthChange, PROBE_TIMEOUT};
use herald_core::ids::{SubscriptionId, TenantId};
use herald_core::model::Subscription;
use herald_core::ports::StoreError;
use herald_core::time::before;
use jiff::Timestamp;

use super::codec::{decode, n, s, subscriptions_pk, Item, Stored, PK, SK};
use super::DynamoStore;
use crate::error::store_backend;

const FAIL: &str = "h_fail";
const SINCE: &str = "h_since";
const LAST_FAIL: &str = "h_lastfail";
const OK: &str = "h_ok";
const WARNED: &str = "h_warned";
const PROBE: &str = "h_probe";

impl Stored for Subscription {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let mut sub: Subscription = decode(item)?;
        sub.health = health_of(item);
        Ok(sub)
    }
}

/// The health attributes of `sub` for a new item.
pub(super) fn health_attributes(health: &Health, item: &mut Item) {
    let mut put = |name: &str, value: Option<i64>| {
        if let Some(v) = value {
            item.insert(name.into(), n(v));
        }
    };
    put(FAIL, Some(i64::from(health.consecutive_failures)));
    put(SINCE, health.failing_since.map(ms));
    put(LAST_FAIL, health.last_failure_at.map(ms));
    put(OK, health.last_success_at.map(ms));
    put(WARNED, Some(i64::from(health.warned)));
    put(PROBE, health.probe_at.map(ms));
}

fn health_of(item: &Item) -> Health {
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
        _ => None,
    };
    let time = |name: &str| number(name).and_then(|v| Timestamp::from_millisecond(v).ok());
    Health {
        consecutive_failures: number(FAIL)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
        failing_since: time(SINCE),
        last_failure_at: time(LAST_FAIL),
        last_success_at: time(OK),
        warned: number(WARNED)
            .and_then(|v| u8::try_from(v).ok())
            .unwrap_or(0),
        probe_at: time(PROBE),
    }
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// The update and condition expressions of `change`, with the names and values they use (and no
/// other: DynamoDB refuses unused ones).
struct Expression {
    update: &'static str,
    condition: &'static str,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

fn expression(change: HealthChange) -> Expression {
    const EXISTS: &str = "attribute_exists(#pk)";
    match change {
        HealthChange::Failed { at } => Expression {
            update: "ADD #fail :one SET #since = if_not_exists(#since, :at), #lastfail = :at REMOVE #probe",
            condition: EXISTS,
            names: vec![("#fail", FAIL), ("#since", SINCE), ("#lastfail", LAST_FAIL), ("#probe", PROBE)],
            values: vec![(":one", n(1)), (":at", n(ms(at)))],
        },
        HealthChange::Succeeded { at } => Expression {
            update: "SET #ok = :at, #fail = :zero, #warned = :zero REMOVE #since, #lastfail, #probe",
            condition: EXISTS,
            names: vec![("#ok", OK), ("#fail", FAIL), ("#warned", WARNED), ("#since", SINCE), ("#lastfail", LAST_FAIL), ("#probe", PROBE)],
            values: vec![(":at", n(ms(at))), (":zero", n(0))],
        },
        HealthChange::Warned { warning } => Expression {
            update: "SET #warned = :level",
            condition: "attribute_exists(#pk) AND (attribute_not_exists(#warned) OR #warned < :level)",
            names: vec![("#warned", WARNED)],
            values: vec![(":level", n(i64::from(warning.level())))],
        },
        HealthChange::ClaimProbe { at, failures } => {
            let stale = before(at, PROBE_TIMEOUT);
            Expression {
                update: "SET #probe = :at",
                condition: "attribute_exists(#pk) AND #fail = :failures AND (attribute_not_exists(#probe) OR #probe <= :stale)",
                names: vec![("#probe", PROBE), ("#fail", FAIL)],
                values: vec![(":at", n(ms(at))), (":failures", n(i64::from(failures))), (":stale", n(ms(stale)))],
            }
        }
        HealthChange::Reset => Expression {
            update: "SET #fail = :zero, #warned = :zero REMOVE #since, #lastfail, #probe",
            condition: EXISTS,
            names: vec![("#fail", FAIL), ("#warned", WARNED), ("#since", SINCE), ("#lastfail", LAST_FAIL), ("#probe", PROBE)],
            values: vec![(":zero", n(0))],
        },
    }
}

impl DynamoStore {
    /// The port's `update_health` (see `catalog`).
    pub(super) async fn update_health_item(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        change: HealthChange,
    ) -> Result<Option<Health>, StoreError> {
        let e = expression(change);
        let mut request = self
            .client
            .update_item()
            .table_name(&self.config.table)
            .key(PK, s(subscriptions_pk(tenant)))
            .key(SK, s(id.to_string()))
            .update_expression(e.update)
            .condition_expression(e.condition)
            .expression_attribute_names("#pk", PK)
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, attribute) in e.names {
            request = request.expression_attribute_names(name, attribute);
        }
        for (name, value) in e.values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(out) => Ok(Some(
                out.attributes.map(|a| health_of(&a)).unwrap_or_default(),
            )),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => match &c.item {
                    Some(_) => Ok(None),
                    // No item handed back: gone, or an emulator that does not hand it back.
                    None => match self
                        .get_item(subscriptions_pk(tenant), &id.to_string())
                        .await?
                    {
                        Some(_) => Ok(None),
                        None => Err(StoreError::NotFound),
                    },
                },
                _ => Err(store_backend("DynamoDB.UpdateItem", err)),
            },
        }
    }
}
