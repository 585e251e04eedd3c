//! [`SqsQueue`]: the events and deliveries queues on Amazon SQS (standard queues).
//!
//! - Bodies are the JSON of [`QueueMessage`]: ids only, a few hundred bytes. The event body is
//!   stored once in DynamoDB (claim check), so SQS's size limit never matters.
//! - `send` groups messages per queue into `SendMessageBatch` calls of at most 10 entries, with
//!   `DelaySeconds` = the delay rounded *up* to whole seconds (never early), capped at 900 s:
//!   [`MAX_DELAY`] is what `max_delay()` answers, and the core chains longer waits through
//!   `not_before`. Entries the batch reports as failed are sent once more, then it is an error.
//! - `receive` long-polls (`WaitTimeSeconds` ≤ 20) for at most 10 messages; the visibility timeout
//!   is rounded up to whole seconds (≤ 12 h). `receive_count` is SQS's `ApproximateReceiveCount`.
//! - `ack` is `DeleteMessage`; `ack_many` is `DeleteMessageBatch`, ten receipts a request (repeats
//!   dropped: SQS refuses a batch that names one twice); `release` is `ChangeMessageVisibility`. A
//!   receipt SQS does not recognise is a `Codec` error, like the embedded queue's foreign receipts.
//!   Entries of a delete batch that SQS refuses are not retried: the error names each one (for the
//!   caller's log), and their messages come back after their lease, which idempotent handlers
//!   allow.
//! - A body that does not decode is logged and left alone: it comes back after its visibility
//!   timeout until the redrive policy moves it to the dead-letter queue.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, DeleteMessageBatchRequestEntry, MessageAttributeValue,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use futures_util::stream::{self, StreamExt};
use herald_core::model::Carried;
use herald_core::ports::{
    OutgoingMessage, Queue, QueueError, QueueMessage, QueueName, ReceivedMessage,
};

/// Events up to 4 KiB of JSON ride inside the messages (with the delivery, a message stays under
/// 5 KiB), so a batch of ten stays within one billed 64 KiB request; bigger ones travel as a claim
/// check and are read from DynamoDB.
pub const CARRIED: Carried = Carried(4096);

use crate::error::{queue_backend, service_code};

/// SQS's longest `DelaySeconds`.
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// SQS's longest visibility timeout.
const MAX_VISIBILITY_SECS: u64 = 12 * 3600;
/// SQS's longest long-poll.
const MAX_WAIT_SECS: u64 = 20;
/// Entries per `SendMessageBatch` and `DeleteMessageBatch`, and messages per `ReceiveMessage`.
const MAX_BATCH: usize = 10;
/// Batches of one `send` or `ack_many` in flight at once.
const SEND_CONCURRENCY: usize = 4;
/// Receives before SQS moves a message to its dead-letter queue ([`create_queues`]).
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

/// The two queues' URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsConfig {
    pub events_queue_url: String,
    pub deliveries_queue_url: String,
}

/// The queues on SQS. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    config: Arc<SqsConfig>,
}

/// Some entries of a batch were refused twice.
#[derive(Debug, thiserror::Error)]
#[error("SQS.SendMessageBatch refused {} of the messages for {queue}: {}", failures.len(), failures.join("; "))]
pub struct BatchSendError {
    pub queue: &'static str,
    /// `code: message` of each refused entry.
    pub failures: Vec<String>,
}

/// Some entries of a delete batch were refused: their messages come back after their lease.
#[derive(Debug, thiserror::Error)]
#[error("SQS.DeleteMessageBatch refused {} of the receipts for {queue}: {}", failures.len(), failures.join("; "))]
pub struct BatchDeleteError {
    pub queue: &'static str,
    /// `code: message` of each refused entry.
    pub failures: Vec<String>,
}

fn describe(failure: &BatchResultErrorEntry) -> String {
    format!("{}: {}", failure.code(), failure.message().unwrap_or(""))
}

/// Whole seconds, rounded up, at most `max`.
fn ceil_secs(d: Duration, max: u64) -> i32 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    // `max` is far below i32::MAX, so the conversion cannot fail.
    i32::try_from(secs.min(max)).unwrap_or(i32::MAX)
}

/// The `DelaySeconds` of a delay: rounded up, capped at [`MAX_DELAY`].
/// The message attribute saying when a message is due (epoch milliseconds: sent + its delay): the
/// queue's age at receipt is the time since, a retry's delay not counted. The Lambda handler reads
/// it from the SQS event (`herald_lambda::metrics`).
pub const DUE_ATTRIBUTE: &str = "HeraldDueMs";

fn epoch_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// How long ago the `due` of [`DUE_ATTRIBUTE`] was (zero if it is still ahead: clocks differ).
pub fn waited_since(due: &str) -> Option<Duration> {
    let due: i64 = due.trim().parse().ok()?;
    Some(Duration::from_millis(
        u64::try_from(epoch_ms().saturating_sub(due)).unwrap_or(0),
    ))
}

pub fn delay_seconds(delay: Duration) -> i32 {
    ceil_secs(delay, MAX_DELAY.as_secs())
}

/// The body of a message.
pub fn encode_body(message: &QueueMessage) -> Result<String, QueueError> {
    serde_json::to_string(message).map_err(|e| QueueError::Codec(e.to_string()))
}

fn invalid_receipt() -> QueueError {
    QueueError::Codec("SQS does not recognise the receipt handle".into())
}

impl SqsQueue {
    pub fn new(client: Client, config: SqsConfig) -> Self {
        Self {
            client,
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &SqsConfig {
        &self.config
    }

    fn url(&self, queue: QueueName) -> &str {
        match queue {
            QueueName::Events => &self.config.events_queue_url,
            QueueName::Deliveries => &self.config.deliveries_queue_url,
        }
    }

    /// Sends up to 10 `(body, delay seconds)` entries, retrying refused entries once. Each carries
    /// when it is due ([`DUE_ATTRIBUTE`]), so its receiver can tell how long it waited after that.
    async fn send_batch(
        &self,
        queue: QueueName,
        entries: &[(String, i32)],
    ) -> Result<(), QueueError> {
        let mut pending: Vec<usize> = (0..entries.len()).collect();
        for round in 0..2 {
            let request_entries = pending
                .iter()
                .map(|&i| {
                    let (body, delay) = &entries[i];
                    let due = MessageAttributeValue::builder()
                        .data_type("Number")
                        .string_value((epoch_ms() + i64::from(*delay) * 1000).to_string())
                        .build()
                        .map_err(QueueError::backend)?;
                    SendMessageBatchRequestEntry::builder()
                        // Ids only need to be unique within the batch: the index into `entries`.
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(*delay)
                        .message_attributes(DUE_ATTRIBUTE, due)
                        .build()
                        .map_err(QueueError::backend)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(self.url(queue))
                .set_entries(Some(request_entries))
                .send()
                .await
                .map_err(|e| queue_backend("SQS.SendMessageBatch", e))?;
            if out.failed().is_empty() {
                return Ok(());
            }
            if round == 1 {
                return Err(QueueError::backend(BatchSendError {
                    queue: queue.as_str(),
                    failures: out.failed().iter().map(describe).collect(),
                }));
            }
            tracing::warn!(
                queue = queue.as_str(),
                failed = out.failed().len(),
                "SQS refused some batch entries; sending them again"
            );
            pending = out
                .failed()
                .iter()
                .filter_map(|f| f.id().parse().ok())
                .filter(|i: &usize| *i < entries.len())
                .collect();
        }
        Ok(())
    }

    /// Deletes up to 10 distinct receipts; answers the entries SQS refused.
    async fn delete_batch(
        &self,
        queue: QueueName,
        receipts: &[String],
    ) -> Result<Vec<BatchResultErrorEntry>, QueueError> {
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .map_err(QueueError::backend)
            })
            .collect::<Result<Vec<_>, _>>()?;
        match self
            .client
            .delete_message_batch()
            .queue_url(self.url(queue))
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => Ok(out.failed().to_vec()),
            Err(e) if service_code(&e) == Some("ReceiptHandleIsInvalid") => Err(invalid_receipt()),
            Err(e) => Err(queue_backend("SQS.DeleteMessageBatch", e)),
        }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    fn max_delay(&self) -> Duration {
        MAX_DELAY
    }

    fn carried(&self) -> Carried {
        CARRIED
    }

    async fn send(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError> {
        let mut events = Vec::new();
        let mut deliveries = Vec::new();
        for out in &messages {
            let entry = (encode_body(&out.message)?, delay_seconds(out.delay));
            match out.message.queue() {
                QueueName::Events => events.push(entry),
                QueueName::Deliveries => deliveries.push(entry),
            }
        }
        // Owned batches: borrowed chunks inside the stream trip async-trait's `Send` inference.
        let batches: Vec<(QueueName, Vec<(String, i32)>)> = events
            .chunks(MAX_BATCH)
            .map(|c| (QueueName::Events, c.to_vec()))
            .chain(
                deliveries
                    .chunks(MAX_BATCH)
                    .map(|c| (QueueName::Deliveries, c.to_vec())),
            )
            .collect();
        let results: Vec<Result<(), QueueError>> = stream::iter(batches)
            .map(|(queue, chunk)| async move { self.send_batch(queue, &chunk).await })
            .buffer_unordered(SEND_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .receive_message()
            .queue_url(self.url(queue))
            .max_number_of_messages(i32::try_from(max.min(MAX_BATCH)).unwrap_or(1))
            .wait_time_seconds(ceil_secs(wait, MAX_WAIT_SECS))
            .visibility_timeout(ceil_secs(visibility, MAX_VISIBILITY_SECS))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names(DUE_ATTRIBUTE)
            .send()
            .await
            .map_err(|e| queue_backend("SQS.ReceiveMessage", e))?;
        let mut received = Vec::with_capacity(out.messages().len());
        for m in out.messages() {
            let (Some(receipt), Some(body)) = (m.receipt_handle(), m.body()) else {
                tracing::warn!(
                    queue = queue.as_str(),
                    "SQS returned a message without a receipt or body"
                );
                continue;
            };
            let message: QueueMessage = match serde_json::from_str(body) {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(queue = queue.as_str(), message_id = m.message_id(), %error, "skipping a message that does not decode; the redrive policy will move it to the DLQ");
                    continue;
                }
            };
            let receive_count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let waited = m
                .message_attributes()
                .and_then(|a| a.get(DUE_ATTRIBUTE))
                .and_then(|v| v.string_value())
                .and_then(waited_since);
            received.push(ReceivedMessage {
                receipt: receipt.to_owned(),
                message,
                receive_count,
                waited,
            });
        }
        Ok(received)
    }

    async fn ack(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        match self
            .client
            .delete_message()
            .queue_url(self.url(queue))
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some("ReceiptHandleIsInvalid") => Err(invalid_receipt()),
            Err(e) => Err(queue_backend("SQS.DeleteMessage", e)),
        }
    }

    async fn ack_many(&self, queue: QueueName, receipts: Vec<String>) -> Result<(), QueueError> {
        let mut seen = std::collections::HashSet::with_capacity(receipts.len());
        let distinct: Vec<String> = receipts
            .into_iter()
            .filter(|r| seen.insert(r.clone()))
            .collect();
        // Owned chunks, as in `send`.
        let chunks: Vec<Vec<String>> = distinct.chunks(MAX_BATCH).map(<[String]>::to_vec).collect();
        let results: Vec<Result<Vec<BatchResultErrorEntry>, QueueError>> = stream::iter(chunks)
            .map(|chunk| async move { self.delete_batch(queue, &chunk).await })
            .buffer_unordered(SEND_CONCURRENCY)
            .collect()
            .await;
        let mut refused = Vec::new();
        let mut request_error = None;
        for result in results {
            match result {
                Ok(failed) => refused.extend(failed),
                Err(e) => request_error = Some(e),
            }
        }
        if let Some(e) = request_error {
            return Err(e);
        }
        if refused.is_empty() {
            return Ok(());
        }
        if refused
            .iter()
            .all(|f| f.sender_fault() && f.code() == "ReceiptHandleIsInvalid")
        {
            return Err(invalid_receipt());
        }
        Err(QueueError::backend(BatchDeleteError {
            queue: queue.as_str(),
            failures: refused.iter().map(describe).collect(),
        }))
    }

    async fn release(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        match self
            .client
            .change_message_visibility()
            .queue_url(self.url(queue))
            .receipt_handle(receipt)
            .visibility_timeout(ceil_secs(delay, MAX_VISIBILITY_SECS))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Its lease ran out already: it is visible again, which is what release asks for.
            Err(e) if service_code(&e) == Some("MessageNotInflight") => {
                tracing::debug!(
                    queue = queue.as_str(),
                    "release of a message not in flight ignored"
                );
                Ok(())
            }
            Err(e) if service_code(&e) == Some("ReceiptHandleIsInvalid") => Err(invalid_receipt()),
            Err(e) => Err(queue_backend("SQS.ChangeMessageVisibility", e)),
        }
    }
}

/// Creates a queue and its dead-letter queue (`<name>-dlq`, 14 days retention) with a redrive
/// policy after `max_receive_count` receives; returns the queue's URL.
pub async fn create_queue_with_dlq(
    client: &Client,
    name: &str,
    max_receive_count: u32,
) -> Result<String, QueueError> {
    let dlq = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| queue_backend("SQS.CreateQueue", e))?;
    let dlq_url = dlq
        .queue_url()
        .ok_or_else(|| QueueError::backend("SQS.CreateQueue answered without a queue URL"))?;
    let attributes = client
        .get_queue_attributes()
        .queue_url(dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| queue_backend("SQS.GetQueueAttributes", e))?;
    let dlq_arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .ok_or_else(|| QueueError::backend("SQS.GetQueueAttributes answered without QueueArn"))?;
    let policy = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive_count.to_string(),
    })
    .to_string();
    let queue = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await
        .map_err(|e| queue_backend("SQS.CreateQueue", e))?;
    queue
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| QueueError::backend("SQS.CreateQueue answered without a queue URL"))
}

/// Creates `<prefix>-events` and `<prefix>-deliveries`, each with a dead-letter queue and a
/// redrive policy after [`DEFAULT_MAX_RECEIVE_COUNT`] receives. Returns `(events_url,
/// deliveries_url)`. For tests and local setups; production queues come from the SAM template.
pub async fn create_queues(client: &Client, prefix: &str) -> Result<(String, String), QueueError> {
    let events = create_queue_with_dlq(
        client,
        &format!("{prefix}-events"),
        DEFAULT_MAX_RECEIVE_COUNT,
    )
    .await?;
    let deliveries = create_queue_with_dlq(
        client,
        &format!("{prefix}-deliveries"),
        DEFAULT_MAX_RECEIVE_COUNT,
    )
    .await?;
    Ok((events, deliveries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::ids::{EventId, TenantId};
    use herald_core::model::{DeliveryMessage, Event, EventMessage};
    use herald_core::pattern::EventType;

    #[test]
    fn delays_round_up_to_whole_seconds_and_cap_at_15_minutes() {
        assert_eq!(delay_seconds(Duration::ZERO), 0);
        assert_eq!(delay_seconds(Duration::from_millis(1)), 1);
        assert_eq!(delay_seconds(Duration::from_millis(4_300)), 5);
        assert_eq!(delay_seconds(Duration::from_secs(5)), 5);
        assert_eq!(delay_seconds(Duration::from_secs(900)), 900);
        assert_eq!(delay_seconds(Duration::from_secs(10 * 3600)), 900);
        assert_eq!(delay_seconds(Duration::MAX), 900);
        assert_eq!(ceil_secs(Duration::from_secs(100), MAX_WAIT_SECS), 20);
    }

    #[test]
    fn a_big_event_travels_as_a_claim_check_and_a_small_one_rides_along() {
        let mut event = Event {
            id: EventId::new(),
            tenant_id: TenantId::new(),
            event_type: EventType::parse("document.created").unwrap(),
            timestamp: jiff::Timestamp::now(),
            data: serde_json::json!({ "body": "x".repeat(256 * 1024) }),
            subscriptions: vec![herald_core::SubscriptionId::new()],
        };
        assert!(serde_json::to_vec(&event).unwrap().len() > 256 * 1024);
        let message_pair = |event: &Event| {
            let fan_out = QueueMessage::Event(EventMessage {
                tenant_id: event.tenant_id,
                event_id: event.id,
                event: CARRIED.carry(event),
            });
            let delivery = QueueMessage::Delivery(DeliveryMessage {
                not_before: Some(jiff::Timestamp::MAX),
                event: CARRIED.carry(event),
                ..DeliveryMessage::attempt_of(
                    &herald_core::Delivery::pending(event, event.subscriptions[0], event.timestamp),
                    u32::MAX,
                )
            });
            [fan_out, delivery]
        };
        for message in message_pair(&event) {
            let body = encode_body(&message).unwrap();
            assert!(body.len() < 1024, "{} bytes: {body}", body.len());
            assert_eq!(
                serde_json::from_str::<QueueMessage>(&body).unwrap(),
                message
            );
        }
        // A 4 KiB event rides along; a batch of ten such messages stays under 64 KiB.
        event.data = serde_json::json!({ "body": "x".repeat(3800) });
        for message in message_pair(&event) {
            let body = encode_body(&message).unwrap();
            assert!(body.contains("xxxx"));
            assert!(body.len() * 10 < 64 * 1024, "{} bytes", body.len());
        }
    }
}
