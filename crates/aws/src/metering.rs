//! What Herald's DynamoDB and SQS calls would cost: an SDK interceptor ([`MeterInterceptor`]) that
//! counts every call by operation and estimates the billed units, into a shared [`Meter`].
//!
//! Registered on the DynamoDB and SQS clients only when metering is asked for (`HERALD_METER_AWS`
//! in `herald-lambda`'s configuration; `herald dev --store aws` publishes the counters at
//! `/metrics`, `herald-bench --store aws` reads them there). It reads the JSON bodies the SDK has
//! already built or received, and must never change a request or fail one: every hook returns
//! `Ok`, whatever it could not parse is counted as a call without units.
//!
//! The units are an estimate from the bodies, as AWS defines them, not DynamoDB's own figure:
//! Herald does not ask for `ReturnConsumedCapacity`, and the emulator (moto 5.2.5) answers it with
//! constants (1.0 for any PutItem, 0.5 for any GetItem, nothing for TransactWriteItems), so it
//! could not be checked there anyway.
//!
//! - Item size: the sum of attribute name lengths and value sizes ([`item_size`]): strings by
//!   UTF-8 bytes, numbers by about one byte per two significant digits plus one, binary by raw
//!   bytes, booleans and nulls one byte, lists and maps 3 bytes plus one per element plus their
//!   elements (a map's element counts its key too).
//! - Writes: `ceil(size / 1 KB)` per item written, at least 1; twice that inside
//!   TransactWriteItems; plus the same again for each global secondary index whose partition key
//!   the item carries (Herald's indexes project ALL, so the index entry is as large as the item).
//!   A Put that replaces a larger item bills the larger size, which the request does not show: the
//!   estimate uses the new item. DeleteItem, UpdateItem and transactional Update, Delete and
//!   ConditionCheck are counted as one item-unit (twice in a transaction), index writes unknown.
//! - Reads: `ceil(size / 4 KB)` per GetItem, at least 1 (an absent item bills one too), half that
//!   when not `ConsistentRead`; a Query or Scan sums the returned items and rounds once per
//!   request (index queries are always eventually consistent). DynamoDB bills what a Query
//!   evaluated, before any filter, and a `Select: COUNT` returns no items: both are
//!   underestimated, neither is on Herald's data path (its filters run in code). Reads are counted
//!   in half units.
//! - SQS: one request per call, batches of up to 10 included, plus one for every further 64 KB of
//!   payload (message bodies sent, or received). A ReceiveMessage that returns nothing is counted
//!   apart too ([`MeterSnapshot::sqs_empty_receives`]): it is the cost of polling an idle queue,
//!   which grows with time, not with deliveries.
//!
//! Every attempt the SDK transmits is counted (a retried call counts twice: AWS bills both).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::{Map, Value};

/// The partition-key attributes of Herald's global secondary indexes: an item carrying one is
/// copied into that index. None: every access pattern is served by the table's key order (see the
/// key design in `dynamo/mod.rs`).
pub const HERALD_INDEX_KEYS: [&str; 0] = [];

const WRITE_UNIT_BYTES: u64 = 1024;
const READ_UNIT_BYTES: u64 = 4096;
const SQS_CHUNK_BYTES: u64 = 64 * 1024;

/// The size in bytes DynamoDB bills for one typed value (`{"S": "…"}`, `{"M": {…}}`, …), without
/// its attribute name. Unknown shapes count 0.
pub fn value_size(value: &Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => s.len() as u64,
        ("N", Value::String(n)) => number_size(n),
        ("B", Value::String(b)) => base64_raw_len(b),
        ("BOOL" | "NULL", _) => 1,
        ("SS", Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.len() as u64)
            .sum(),
        ("NS", Value::Array(a)) => a.iter().filter_map(Value::as_str).map(number_size).sum(),
        ("BS", Value::Array(a)) => a.iter().filter_map(Value::as_str).map(base64_raw_len).sum(),
        ("L", Value::Array(a)) => 3 + a.iter().map(|v| value_size(v) + 1).sum::<u64>(),
        ("M", Value::Object(m)) => {
            3 + m
                .iter()
                .map(|(k, v)| k.len() as u64 + value_size(v) + 1)
                .sum::<u64>()
        }
        _ => 0,
    }
}

/// The size of an item in DynamoDB's JSON: attribute names plus value sizes.
pub fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

/// A number's size: one byte per two significant digits (leading and trailing zeros trimmed), plus
/// one.
pub fn number_size(text: &str) -> u64 {
    let mantissa = text
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.div_ceil(2) + 1
}

fn base64_raw_len(text: &str) -> u64 {
    (text.trim_end_matches('=').len() as u64 * 3) / 4
}

/// Write units for one item of `size` bytes (non-transactional): 1 per KB, at least 1.
pub fn write_units(size: u64) -> u64 {
    size.div_ceil(WRITE_UNIT_BYTES).max(1)
}

/// Read units for `size` bytes read in one request, in half units: 4 KB per unit, at least one
/// unit; eventually consistent reads cost half.
pub fn read_half_units(size: u64, consistent: bool) -> u64 {
    let units = size.div_ceil(READ_UNIT_BYTES).max(1);
    if consistent {
        units * 2
    } else {
        units
    }
}

/// The write units of an item written with a Put: the item, plus one copy per index it appears
/// in; doubled for the base table inside a transaction.
fn put_units(item: &Map<String, Value>, transactional: bool, index_keys: &[&str]) -> u64 {
    let units = write_units(item_size(item));
    let indexes = index_keys.iter().filter(|k| item.contains_key(**k)).count() as u64;
    units * if transactional { 2 } else { 1 } + units * indexes
}

/// The write units a DynamoDB request will consume, from its JSON body.
pub fn dynamodb_write_units(operation: &str, request: &Value, index_keys: &[&str]) -> u64 {
    match operation {
        "PutItem" => request
            .get("Item")
            .and_then(Value::as_object)
            .map_or(1, |item| put_units(item, false, index_keys)),
        "DeleteItem" => 1,
        // Billed on the larger of the item before and after; the request shows the key and the
        // new values, a lower bound of the item after (Herald's updated items stay under 1 KB
        // unless a first attempt kept a long response excerpt).
        "UpdateItem" => {
            let key = request
                .get("Key")
                .and_then(Value::as_object)
                .map_or(0, item_size);
            let values = request
                .get("ExpressionAttributeValues")
                .and_then(Value::as_object)
                .map_or(0, |v| v.values().map(value_size).sum());
            write_units(key + values)
        }
        "TransactWriteItems" => request
            .get("TransactItems")
            .and_then(Value::as_array)
            .map_or(0, |items| {
                items
                    .iter()
                    .map(|entry| entry_units(entry, "Put", true, index_keys))
                    .sum()
            }),
        "BatchWriteItem" => request
            .get("RequestItems")
            .and_then(Value::as_object)
            .map_or(0, |tables| {
                tables
                    .values()
                    .filter_map(Value::as_array)
                    .flatten()
                    .map(|entry| entry_units(entry, "PutRequest", false, index_keys))
                    .sum()
            }),
        _ => 0,
    }
}

/// The units of one entry of a multi-item write: a put (under `put_key`) by its item, anything
/// else (delete, update, condition check) as one unit, doubled inside a transaction.
fn entry_units(entry: &Value, put_key: &str, transactional: bool, index_keys: &[&str]) -> u64 {
    match entry
        .get(put_key)
        .and_then(|p| p.get("Item"))
        .and_then(Value::as_object)
    {
        Some(item) => put_units(item, transactional, index_keys),
        None if transactional => 2,
        None => 1,
    }
}

/// Whether a read request asked for a strongly consistent read (never on an index).
pub fn consistent_read(request: &Value) -> bool {
    request.get("ConsistentRead").and_then(Value::as_bool) == Some(true)
        && request.get("IndexName").is_none()
}

/// The read units (in halves) a successful DynamoDB response consumed, from its JSON body.
pub fn dynamodb_read_half_units(operation: &str, consistent: bool, response: &Value) -> u64 {
    let size_of = |v: &Value| v.as_object().map_or(0, item_size);
    match operation {
        "GetItem" => read_half_units(response.get("Item").map_or(0, size_of), consistent),
        "Query" | "Scan" => {
            let total = response
                .get("Items")
                .and_then(Value::as_array)
                .map_or(0, |items| items.iter().map(size_of).sum());
            read_half_units(total, consistent)
        }
        "TransactGetItems" => {
            response
                .get("Responses")
                .and_then(Value::as_array)
                .map_or(0, |items| {
                    items
                        .iter()
                        .map(|r| 2 * read_half_units(r.get("Item").map_or(0, size_of), true))
                        .sum()
                })
        }
        "BatchGetItem" => {
            response
                .get("Responses")
                .and_then(Value::as_object)
                .map_or(0, |tables| {
                    tables
                        .values()
                        .filter_map(Value::as_array)
                        .flatten()
                        .map(|item| read_half_units(size_of(item), consistent))
                        .sum()
                })
        }
        _ => 0,
    }
}

/// SQS requests billed for a payload of `bytes`: one per started 64 KB, at least one.
pub fn sqs_requests_for_payload(bytes: u64) -> u64 {
    bytes.div_ceil(SQS_CHUNK_BYTES).max(1)
}

/// The SQS requests a call is billed as, from its JSON request body.
pub fn sqs_request_requests(operation: &str, request: &Value) -> u64 {
    let body_len = |v: &Value| {
        v.get("MessageBody")
            .and_then(Value::as_str)
            .map_or(0, |s| s.len() as u64)
    };
    match operation {
        "SendMessage" => sqs_requests_for_payload(body_len(request)),
        "SendMessageBatch" => sqs_requests_for_payload(
            request
                .get("Entries")
                .and_then(Value::as_array)
                .map_or(0, |entries| entries.iter().map(body_len).sum()),
        ),
        _ => 1,
    }
}

/// The bodies a ReceiveMessage response carries: how many messages and their total bytes.
fn received_messages(response: &Value) -> (usize, u64) {
    response
        .get("Messages")
        .and_then(Value::as_array)
        .map_or((0, 0), |messages| {
            let bytes = messages
                .iter()
                .filter_map(|m| m.get("Body").and_then(Value::as_str))
                .map(|b| b.len() as u64)
                .sum();
            (messages.len(), bytes)
        })
}

#[derive(Debug, Default)]
struct Counters {
    /// (service, operation) → calls transmitted.
    calls: Mutex<BTreeMap<(String, String), u64>>,
    write_units: AtomicU64,
    read_half_units: AtomicU64,
    sqs_requests: AtomicU64,
    sqs_empty_receives: AtomicU64,
}

/// The counters of one process, shared by the interceptors of every client (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Meter {
    counters: Arc<Counters>,
}

/// The counters at one moment. Subtract two with [`MeterSnapshot::since`] to meter a stretch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeterSnapshot {
    /// (service, operation) → calls, e.g. `("DynamoDB", "PutItem")`.
    pub calls: BTreeMap<(String, String), u64>,
    pub dynamodb_write_units: u64,
    /// In units (multiples of 0.5).
    pub dynamodb_read_units: f64,
    /// Billed SQS requests (64 KB chunks counted), empty receives included.
    pub sqs_requests: u64,
    /// ReceiveMessage calls that returned no message (included in `sqs_requests`).
    pub sqs_empty_receives: u64,
}

impl Meter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The interceptor to register on a DynamoDB or SQS client config (`.interceptor(…)`).
    pub fn interceptor(&self) -> MeterInterceptor {
        MeterInterceptor {
            meter: self.clone(),
        }
    }

    pub fn snapshot(&self) -> MeterSnapshot {
        let c = &self.counters;
        MeterSnapshot {
            calls: c.calls.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            dynamodb_write_units: c.write_units.load(Ordering::Relaxed),
            dynamodb_read_units: c.read_half_units.load(Ordering::Relaxed) as f64 / 2.0,
            sqs_requests: c.sqs_requests.load(Ordering::Relaxed),
            sqs_empty_receives: c.sqs_empty_receives.load(Ordering::Relaxed),
        }
    }

    fn count_call(&self, service: &str, operation: &str) {
        let mut calls = self
            .counters
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *calls
            .entry((service.to_owned(), operation.to_owned()))
            .or_insert(0) += 1;
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl MeterSnapshot {
    /// Calls of one operation.
    pub fn calls_of(&self, operation: &str) -> u64 {
        self.calls
            .iter()
            .filter(|((_, op), _)| op == operation)
            .map(|(_, n)| n)
            .sum()
    }

    /// Calls to one service.
    pub fn calls_to(&self, service: &str) -> u64 {
        self.calls
            .iter()
            .filter(|((s, _), _)| s == service)
            .map(|(_, n)| n)
            .sum()
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &MeterSnapshot) -> MeterSnapshot {
        let calls = self
            .calls
            .iter()
            .map(|(k, n)| {
                (
                    k.clone(),
                    n - earlier.calls.get(k).copied().unwrap_or(0).min(*n),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        MeterSnapshot {
            calls,
            dynamodb_write_units: self
                .dynamodb_write_units
                .saturating_sub(earlier.dynamodb_write_units),
            dynamodb_read_units: (self.dynamodb_read_units - earlier.dynamodb_read_units).max(0.0),
            sqs_requests: self.sqs_requests.saturating_sub(earlier.sqs_requests),
            sqs_empty_receives: self
                .sqs_empty_receives
                .saturating_sub(earlier.sqs_empty_receives),
        }
    }

    /// Prometheus text exposition (counters).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::from("# TYPE herald_aws_calls_total counter\n");
        for ((service, operation), n) in &self.calls {
            let _ = writeln!(
                out,
                "herald_aws_calls_total{{service=\"{service}\",operation=\"{operation}\"}} {n}"
            );
        }
        let rows = [
            (
                "herald_dynamodb_write_units_total",
                self.dynamodb_write_units as f64,
            ),
            ("herald_dynamodb_read_units_total", self.dynamodb_read_units),
            ("herald_sqs_requests_total", self.sqs_requests as f64),
            (
                "herald_sqs_empty_receives_total",
                self.sqs_empty_receives as f64,
            ),
        ];
        for (name, value) in rows {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {value}");
        }
        out
    }
}

/// Whether the request being metered asked for a strongly consistent read; kept from the request
/// hook for the response hook.
#[derive(Debug, Clone, Copy)]
struct ConsistentRead(bool);

impl Storable for ConsistentRead {
    type Storer = StoreReplace<Self>;
}

/// The SDK interceptor feeding a [`Meter`]; see the module docs for what it counts.
#[derive(Debug, Clone)]
pub struct MeterInterceptor {
    meter: Meter,
}

fn operation(cfg: &ConfigBag) -> Option<(String, String)> {
    cfg.load::<Metadata>()
        .map(|m| (m.service().to_owned(), m.name().to_owned()))
}

fn json(bytes: Option<&[u8]>) -> Value {
    bytes
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null)
}

impl Intercept for MeterInterceptor {
    fn name(&self) -> &'static str {
        "HeraldMeter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some((service, op)) = operation(cfg) else {
            return Ok(());
        };
        self.meter.count_call(&service, &op);
        let request = json(context.request().body().bytes());
        let counters = &self.meter.counters;
        match service.as_str() {
            "DynamoDB" => {
                Meter::add(
                    &counters.write_units,
                    dynamodb_write_units(&op, &request, &HERALD_INDEX_KEYS),
                );
                cfg.interceptor_state()
                    .store_put(ConsistentRead(consistent_read(&request)));
            }
            "SQS" => Meter::add(&counters.sqs_requests, sqs_request_requests(&op, &request)),
            _ => {}
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        if !response.status().is_success() {
            return Ok(());
        }
        let Some((service, op)) = operation(cfg) else {
            return Ok(());
        };
        let counters = &self.meter.counters;
        match (service.as_str(), op.as_str()) {
            ("DynamoDB", "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems") => {
                let consistent = cfg.load::<ConsistentRead>().is_some_and(|c| c.0);
                let body = json(response.body().bytes());
                Meter::add(
                    &counters.read_half_units,
                    dynamodb_read_half_units(&op, consistent, &body),
                );
            }
            ("SQS", "ReceiveMessage") => {
                let (messages, bytes) = received_messages(&json(response.body().bytes()));
                if messages == 0 {
                    Meter::add(&counters.sqs_empty_receives, 1);
                }
                // The call itself was counted as one request; larger payloads bill more.
                Meter::add(
                    &counters.sqs_requests,
                    sqs_requests_for_payload(bytes).saturating_sub(1),
                );
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn attribute_sizes_follow_the_developer_guide() {
        // Strings by UTF-8 bytes, names included: "Id"(2) + "Name"(4) + "Red"(3) + number 123
        // (2 bytes for 3 digits, + 1).
        let i = item(json!({"Id": {"N": "123"}, "Name": {"S": "Red"}}));
        assert_eq!(item_size(&i), 2 + 3 + 4 + 3);
        assert_eq!(value_size(&json!({"S": "héllo"})), 6);
        // Leading and trailing zeros do not count; sign and exponent neither.
        assert_eq!(number_size("0.00120"), 2);
        assert_eq!(number_size("-12345"), 4);
        assert_eq!(number_size("1e10"), 2);
        assert_eq!(number_size("0"), 1);
        // Binary: raw bytes, not base64 ("aGVsbG8=" is "hello").
        assert_eq!(value_size(&json!({"B": "aGVsbG8="})), 5);
        assert_eq!(value_size(&json!({"BOOL": true})), 1);
        assert_eq!(value_size(&json!({"NULL": true})), 1);
        // Lists and maps: 3 bytes, plus 1 per element, plus the elements (a map's keys too).
        assert_eq!(value_size(&json!({"L": []})), 3);
        assert_eq!(
            value_size(&json!({"L": [{"S": "ab"}, {"N": "7"}]})),
            3 + 3 + 3
        );
        assert_eq!(
            value_size(&json!({"M": {"k": {"S": "abc"}}})),
            3 + 1 + 3 + 1
        );
        assert_eq!(value_size(&json!({"SS": ["a", "bc"]})), 3);
    }

    #[test]
    fn capacity_units_follow_the_developer_guide_examples() {
        // "A 3.5 KB item needs 4 write units"; a 500-byte one 1.
        assert_eq!(write_units(3584), 4);
        assert_eq!(write_units(500), 1);
        assert_eq!(write_units(0), 1);
        // "Reading a 10 KB item rounds to 12 KB": 3 units consistent, 1.5 eventually consistent.
        assert_eq!(read_half_units(10 * 1024, true), 6);
        assert_eq!(read_half_units(10 * 1024, false), 3);
        // 300 B: 1 unit consistent, 0.5 eventually; 5,000 B: 2 and 1.
        assert_eq!(read_half_units(300, true), 2);
        assert_eq!(read_half_units(300, false), 1);
        assert_eq!(read_half_units(5000, true), 4);
        // "A Query returning 10 items of 40 bytes reads 400 bytes: 1 unit" (consistent).
        let items: Vec<Value> = (0..10)
            .map(|_| json!({"pk": {"S": "x".repeat(36)}}))
            .collect();
        let response = json!({"Items": items});
        assert_eq!(dynamodb_read_half_units("Query", true, &response), 2);
        assert_eq!(dynamodb_read_half_units("Query", false, &response), 1);
        // An absent item still bills one read.
        assert_eq!(dynamodb_read_half_units("GetItem", true, &json!({})), 2);
    }

    #[test]
    fn transactions_double_and_indexes_add_a_write() {
        const INDEX_KEYS: [&str; 2] = ["bysub_pk", "byevt_pk"];
        // A 3 KB item in a transaction costs 6 write units (the guide's example).
        let big = json!({"pk": {"S": "p"}, "sk": {"S": "s"}, "d": {"S": "x".repeat(3065)}});
        assert_eq!(item_size(&item(big.clone())), 3072);
        let tx = json!({"TransactItems": [{"Put": {"TableName": "t", "Item": big}}]});
        assert_eq!(
            dynamodb_write_units("TransactWriteItems", &tx, &INDEX_KEYS),
            6
        );
        // A delivery-shaped item in both indexes: 1 for the table, 1 per index.
        let delivery = json!({"Item": {
            "pk": {"S": "p"}, "sk": {"S": "DELIVERY"},
            "bysub_pk": {"S": "a"}, "bysub_sk": {"S": "b"},
            "byevt_pk": {"S": "c"}, "byevt_sk": {"S": "d"}
        }});
        assert_eq!(dynamodb_write_units("PutItem", &delivery, &INDEX_KEYS), 3);
        assert_eq!(dynamodb_write_units("PutItem", &delivery, &[]), 1);
        // In a transaction the table write doubles, the index writes do not.
        let tx = json!({"TransactItems": [{"Put": delivery}, {"ConditionCheck": {}}]});
        assert_eq!(
            dynamodb_write_units("TransactWriteItems", &tx, &INDEX_KEYS),
            4 + 2
        );
    }

    #[test]
    fn consistency_is_read_from_the_request_and_never_on_an_index() {
        assert!(consistent_read(&json!({"ConsistentRead": true})));
        assert!(!consistent_read(&json!({})));
        assert!(!consistent_read(
            &json!({"ConsistentRead": true, "IndexName": "by_event"})
        ));
    }

    #[test]
    fn sqs_bills_per_call_and_per_64_kb_of_payload() {
        let body = |n: usize| json!({"MessageBody": "x".repeat(n)});
        assert_eq!(sqs_request_requests("SendMessage", &body(1000)), 1);
        assert_eq!(sqs_request_requests("SendMessage", &body(256 * 1024)), 4);
        let ten = json!({"Entries": (0..10).map(|_| body(1000)).collect::<Vec<_>>()});
        assert_eq!(sqs_request_requests("SendMessageBatch", &ten), 1);
        let heavy = json!({"Entries": (0..10).map(|_| body(10 * 1024)).collect::<Vec<_>>()});
        assert_eq!(sqs_request_requests("SendMessageBatch", &heavy), 2);
        assert_eq!(sqs_request_requests("DeleteMessage", &json!({})), 1);
        // Ten receipts, one request.
        let receipts = json!({"Entries": (0..10).map(|i| json!({"Id": i.to_string(), "ReceiptHandle": "r"})).collect::<Vec<_>>()});
        assert_eq!(sqs_request_requests("DeleteMessageBatch", &receipts), 1);
        assert_eq!(received_messages(&json!({})), (0, 0));
    }

    #[test]
    fn snapshots_subtract_and_render() {
        let meter = Meter::new();
        meter.count_call("SQS", "SendMessageBatch");
        let before = meter.snapshot();
        meter.count_call("DynamoDB", "PutItem");
        meter.count_call("SQS", "SendMessageBatch");
        Meter::add(&meter.counters.write_units, 3);
        Meter::add(&meter.counters.read_half_units, 1);
        let delta = meter.snapshot().since(&before);
        assert_eq!(delta.calls_of("PutItem"), 1);
        assert_eq!(delta.calls_of("SendMessageBatch"), 1);
        assert_eq!(delta.calls_to("DynamoDB"), 1);
        assert_eq!(
            (delta.dynamodb_write_units, delta.dynamodb_read_units),
            (3, 0.5)
        );
        let text = meter.snapshot().to_prometheus();
        assert!(text
            .contains("herald_aws_calls_total{service=\"SQS\",operation=\"SendMessageBatch\"} 2"));
        assert!(text.contains("herald_dynamodb_read_units_total 0.5"));
    }
}
