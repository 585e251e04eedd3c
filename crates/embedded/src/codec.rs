//! Compact binary forms of what the embedded store writes for every delivery: its queue messages,
//! the event, the delivery record and its attempts. Everything else stays JSON.
//!
//! A delivery message was a 497-byte JSON copy of its delivery (field names, 30-character ids,
//! RFC 3339 times); here it is about 150 bytes: ids as their 16 ULID bytes, times as seconds and
//! nanoseconds, small numbers as they are. A delivery record shrinks the same way, an attempt from
//! about 320 bytes to about 110. Each is written for every delivery, so their sizes are disk bytes
//! per delivery: on `herald-bench --events 60000 --fanout 1` (three interleaved rounds, the same
//! machine) JSON wrote 6,207–6,361 bytes per delivery, the queue messages' form 5,744–5,863, and
//! with the records' forms too 4,841–4,909, at the same throughput and slightly less CPU (0.091–
//! 0.095 CPU-s per 1,000 against 0.094–0.102); at fan-out 10 (`--events 30000`, two rounds)
//! 3,780–3,923 against 5,095–5,130. The event's form took another 5 % (4,873–4,962 against
//! 5,116–5,240 in three later interleaved rounds).
//!
//! The first byte says which form follows: `{` JSON (also what older data folders hold, so they
//! read as before), or one of [`EVENT`], [`DELIVERY`], [`DELIVERY_RECORD`], [`ATTEMPT`],
//! [`EVENT_RECORD`]: every
//! field in order, integers little-endian, a time as `seconds i64 | nanoseconds i32`, a text as
//! its length and UTF-8 bytes, and a `present` byte with a bit for each optional field (in
//! brackets below) that follows.

use herald_core::ids::{AttemptId, DeliveryId, EventId, SubscriptionId, TenantId};
use herald_core::model::{Attempt, Delivery, DeliveryMessage, DeliveryStatus, Event, EventMessage};
use herald_core::pattern::EventType;
use herald_core::ports::QueueMessage;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// A queue message: `visible_at_ms i64 | tenant 16 | event 16`, an event message without its
/// event.
const EVENT: u8 = 1;
/// A queue message: `visible_at_ms i64 | attempt u32 | present u8 | [not_before] | [slot] |`
/// delivery body (see [`DELIVERY_RECORD`]). Messages carrying their event are stored as JSON.
const DELIVERY: u8 = 2;
/// A delivery record: the delivery body, `present u8 | delivery 16 | tenant 16 | subscription 16
/// | event 16 | status u8 | attempts u32 | run_started_at u32 | created_at | updated_at |
/// [last_status_code u16] | [next_attempt_at] | event_type (u16 length) | [last_error (u32
/// length)]`.
const DELIVERY_RECORD: u8 = 3;
/// An attempt: `present u8 | attempt 16 | delivery 16 | tenant 16 | subscription 16 | number u32 |
/// started_at | latency_ms u64 | succeeded u8 | [status_code u16] | [response_excerpt (u32
/// length)] | [error (u32 length)]`.
const ATTEMPT: u8 = 4;

/// An event: `event 16 | tenant 16 | timestamp | event_type (u16 length) | subscriptions (u32
/// count, 16 bytes each) | data` (its JSON, to the end).
const EVENT_RECORD: u8 = 5;

// `present` bits of a delivery message.
const HAS_NOT_BEFORE: u8 = 1;
const HAS_SLOT: u8 = 2;
// `present` bits of a delivery body.
const HAS_STATUS_CODE: u8 = 1;
const HAS_NEXT_ATTEMPT: u8 = 2;
const HAS_ERROR: u8 = 4;
// `present` bits of an attempt.
const HAS_CODE: u8 = 1;
const HAS_EXCERPT: u8 = 2;
const HAS_ATTEMPT_ERROR: u8 = 4;

/// A message with the time it becomes visible, in the JSON form.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stored {
    /// Unix milliseconds at which the message becomes visible.
    pub(crate) visible_at_ms: i64,
    pub(crate) message: QueueMessage,
}

#[derive(Serialize)]
struct StoredRef<'a> {
    visible_at_ms: i64,
    message: &'a QueueMessage,
}

/// Why a stored message could not be encoded or read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a stored message ends early")]
    Short,
    #[error("a stored message has an unknown form {0}")]
    UnknownForm(u8),
    #[error("a stored message has an invalid {0}")]
    Invalid(&'static str),
}

/// The stored bytes of `message`, visible at `visible_at_ms`.
pub(crate) fn encode(visible_at_ms: i64, message: &QueueMessage) -> Result<Vec<u8>, CodecError> {
    match message {
        QueueMessage::Event(EventMessage {
            tenant_id,
            event_id,
            event: None,
        }) => {
            let mut out = Vec::with_capacity(41);
            out.push(EVENT);
            out.extend_from_slice(&visible_at_ms.to_le_bytes());
            out.extend_from_slice(&tenant_id.ulid().to_bytes());
            out.extend_from_slice(&event_id.ulid().to_bytes());
            Ok(out)
        }
        QueueMessage::Delivery(m) if m.event.is_none() && fits(&m.delivery) => {
            Ok(encode_delivery(visible_at_ms, m))
        }
        _ => Ok(serde_json::to_vec(&StoredRef {
            visible_at_ms,
            message,
        })?),
    }
}

/// Whether the delivery's texts fit their length fields (event types are short; a longer text
/// goes as JSON).
fn fits(d: &Delivery) -> bool {
    u16::try_from(d.event_type.as_str().len()).is_ok()
        && d.last_error
            .as_ref()
            .is_none_or(|e| u32::try_from(e.len()).is_ok())
}

fn present(bits: &[(u8, bool)]) -> u8 {
    bits.iter()
        .filter(|(_, is)| *is)
        .fold(0, |acc, (bit, _)| acc | bit)
}

fn encode_delivery(visible_at_ms: i64, m: &DeliveryMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(170);
    out.push(DELIVERY);
    out.extend_from_slice(&visible_at_ms.to_le_bytes());
    out.extend_from_slice(&m.attempt.to_le_bytes());
    out.push(present(&[
        (HAS_NOT_BEFORE, m.not_before.is_some()),
        (HAS_SLOT, m.slot.is_some()),
    ]));
    for time in [m.not_before, m.slot].into_iter().flatten() {
        put_time(&mut out, time);
    }
    put_delivery_body(&mut out, &m.delivery);
    out
}

fn put_delivery_body(out: &mut Vec<u8>, d: &Delivery) {
    out.push(present(&[
        (HAS_STATUS_CODE, d.last_status_code.is_some()),
        (HAS_NEXT_ATTEMPT, d.next_attempt_at.is_some()),
        (HAS_ERROR, d.last_error.is_some()),
    ]));
    put_ids(
        out,
        [
            d.id.ulid(),
            d.tenant_id.ulid(),
            d.subscription_id.ulid(),
            d.event_id.ulid(),
        ],
    );
    out.push(status_byte(d.status));
    out.extend_from_slice(&d.attempts.to_le_bytes());
    out.extend_from_slice(&d.run_started_at.to_le_bytes());
    put_time(out, d.created_at);
    put_time(out, d.updated_at);
    if let Some(code) = d.last_status_code {
        out.extend_from_slice(&code.to_le_bytes());
    }
    if let Some(time) = d.next_attempt_at {
        put_time(out, time);
    }
    // `fits` checked both lengths.
    put_event_type(out, &d.event_type);
    if let Some(error) = &d.last_error {
        put_text(out, error);
    }
}

/// An event type as `u16 length | bytes` (callers check that the length fits).
fn put_event_type(out: &mut Vec<u8>, event_type: &EventType) {
    let bytes = event_type.as_str().as_bytes();
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A text as `u32 length | bytes` (callers check that the length fits).
fn put_text(out: &mut Vec<u8>, text: &str) {
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The stored bytes of a delivery record.
pub(crate) fn encode_delivery_record(d: &Delivery) -> Result<Vec<u8>, CodecError> {
    if !fits(d) {
        return Ok(serde_json::to_vec(d)?);
    }
    let mut out = Vec::with_capacity(160);
    out.push(DELIVERY_RECORD);
    put_delivery_body(&mut out, d);
    Ok(out)
}

/// The record stored in `bytes`: JSON, or the binary form `form` that `read` reads (after its
/// first byte).
fn decode_record<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    form: u8,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    let mut r = Reader(bytes);
    match r.u8()? {
        b'{' => Ok(serde_json::from_slice(bytes)?),
        first if first == form => read(&mut r),
        other => Err(CodecError::UnknownForm(other)),
    }
}

/// The delivery record stored in `bytes`.
pub(crate) fn decode_delivery_record(bytes: &[u8]) -> Result<Delivery, CodecError> {
    decode_record(bytes, DELIVERY_RECORD, read_delivery_body)
}

/// The stored bytes of an attempt.
pub(crate) fn encode_attempt(a: &Attempt) -> Result<Vec<u8>, CodecError> {
    let texts = [&a.response_excerpt, &a.error];
    if texts
        .iter()
        .any(|t| t.as_ref().is_some_and(|t| u32::try_from(t.len()).is_err()))
    {
        return Ok(serde_json::to_vec(a)?);
    }
    let mut out = Vec::with_capacity(110);
    out.push(ATTEMPT);
    out.push(present(&[
        (HAS_CODE, a.status_code.is_some()),
        (HAS_EXCERPT, a.response_excerpt.is_some()),
        (HAS_ATTEMPT_ERROR, a.error.is_some()),
    ]));
    put_ids(
        &mut out,
        [
            a.id.ulid(),
            a.delivery_id.ulid(),
            a.tenant_id.ulid(),
            a.subscription_id.ulid(),
        ],
    );
    out.extend_from_slice(&a.number.to_le_bytes());
    put_time(&mut out, a.started_at);
    out.extend_from_slice(&a.latency_ms.to_le_bytes());
    out.push(u8::from(a.succeeded));
    if let Some(code) = a.status_code {
        out.extend_from_slice(&code.to_le_bytes());
    }
    for text in texts.into_iter().flatten() {
        put_text(&mut out, text);
    }
    Ok(out)
}

/// The stored bytes of an event (its data stays JSON).
pub(crate) fn encode_event(e: &Event) -> Result<Vec<u8>, CodecError> {
    let type_len = e.event_type.as_str().len();
    let (Ok(_), Ok(count)) = (
        u16::try_from(type_len),
        u32::try_from(e.subscriptions.len()),
    ) else {
        return Ok(serde_json::to_vec(e)?);
    };
    let data = serde_json::to_vec(&e.data)?;
    let mut out = Vec::with_capacity(50 + type_len + 16 * e.subscriptions.len() + data.len());
    out.push(EVENT_RECORD);
    put_ids(&mut out, [e.id.ulid(), e.tenant_id.ulid()]);
    put_time(&mut out, e.timestamp);
    put_event_type(&mut out, &e.event_type);
    out.extend_from_slice(&count.to_le_bytes());
    for sub in &e.subscriptions {
        put_ids(&mut out, [sub.ulid()]);
    }
    out.extend_from_slice(&data);
    Ok(out)
}

/// The event stored in `bytes`.
pub(crate) fn decode_event(bytes: &[u8]) -> Result<Event, CodecError> {
    decode_record(bytes, EVENT_RECORD, |r| {
        let head = read_event_head(r)?;
        Ok(Event {
            id: head.id,
            tenant_id: head.tenant_id,
            event_type: head.event_type,
            timestamp: head.timestamp,
            data: serde_json::from_slice(r.0)?,
            subscriptions: head.subscriptions,
        })
    })
}

/// What the retention sweeper reads of a stored event: all but its data, which is not parsed.
#[derive(Deserialize)]
pub(crate) struct EventHead {
    pub(crate) id: EventId,
    pub(crate) tenant_id: TenantId,
    #[serde(rename = "type")]
    pub(crate) event_type: EventType,
    pub(crate) timestamp: Timestamp,
    #[serde(default)]
    pub(crate) subscriptions: Vec<SubscriptionId>,
}

/// The [`EventHead`] of the event stored in `bytes`.
pub(crate) fn decode_event_head(bytes: &[u8]) -> Result<EventHead, CodecError> {
    decode_record(bytes, EVENT_RECORD, read_event_head)
}

fn read_event_head(r: &mut Reader<'_>) -> Result<EventHead, CodecError> {
    let id = EventId::from_ulid(r.ulid()?);
    let tenant_id = TenantId::from_ulid(r.ulid()?);
    let timestamp = r.time()?;
    let event_type = r.event_type()?;
    let count = usize::try_from(r.u32()?).map_err(|_| CodecError::Short)?;
    // Bounded by what is left, so a corrupt count cannot ask for a huge allocation.
    let mut subscriptions = Vec::with_capacity(count.min(r.0.len() / 16));
    for _ in 0..count {
        subscriptions.push(SubscriptionId::from_ulid(r.ulid()?));
    }
    Ok(EventHead {
        id,
        tenant_id,
        event_type,
        timestamp,
        subscriptions,
    })
}

/// The attempt stored in `bytes`.
pub(crate) fn decode_attempt(bytes: &[u8]) -> Result<Attempt, CodecError> {
    decode_record(bytes, ATTEMPT, |r| {
        let present = r.u8()?;
        let has = |bit: u8| present & bit != 0;
        let id = AttemptId::from_ulid(r.ulid()?);
        let delivery_id = DeliveryId::from_ulid(r.ulid()?);
        let tenant_id = TenantId::from_ulid(r.ulid()?);
        let subscription_id = SubscriptionId::from_ulid(r.ulid()?);
        let number = r.u32()?;
        let started_at = r.time()?;
        let latency_ms = r.u64()?;
        let succeeded = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(CodecError::Invalid("flag")),
        };
        let status_code = has(HAS_CODE).then(|| r.u16()).transpose()?;
        let response_excerpt = has(HAS_EXCERPT).then(|| r.text()).transpose()?;
        let error = has(HAS_ATTEMPT_ERROR).then(|| r.text()).transpose()?;
        Ok(Attempt {
            id,
            delivery_id,
            tenant_id,
            subscription_id,
            number,
            started_at,
            status_code,
            latency_ms,
            response_excerpt,
            error,
            succeeded,
        })
    })
}

/// The visible time and message stored in `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Result<Stored, CodecError> {
    let mut r = Reader(bytes);
    match r.u8()? {
        b'{' => Ok(serde_json::from_slice(bytes)?),
        EVENT => Ok(Stored {
            visible_at_ms: r.i64()?,
            message: QueueMessage::Event(EventMessage {
                tenant_id: TenantId::from_ulid(r.ulid()?),
                event_id: EventId::from_ulid(r.ulid()?),
                event: None,
            }),
        }),
        DELIVERY => decode_delivery(&mut r),
        other => Err(CodecError::UnknownForm(other)),
    }
}

fn decode_delivery(r: &mut Reader<'_>) -> Result<Stored, CodecError> {
    let visible_at_ms = r.i64()?;
    let attempt = r.u32()?;
    let present = r.u8()?;
    let not_before = (present & HAS_NOT_BEFORE != 0)
        .then(|| r.time())
        .transpose()?;
    let slot = (present & HAS_SLOT != 0).then(|| r.time()).transpose()?;
    Ok(Stored {
        visible_at_ms,
        message: QueueMessage::Delivery(DeliveryMessage {
            delivery: read_delivery_body(r)?,
            attempt,
            not_before,
            slot,
            event: None,
        }),
    })
}

fn read_delivery_body(r: &mut Reader<'_>) -> Result<Delivery, CodecError> {
    let present = r.u8()?;
    let has = |bit: u8| present & bit != 0;
    let id = DeliveryId::from_ulid(r.ulid()?);
    let tenant_id = TenantId::from_ulid(r.ulid()?);
    let subscription_id = SubscriptionId::from_ulid(r.ulid()?);
    let event_id = EventId::from_ulid(r.ulid()?);
    let status = status_from(r.u8()?)?;
    let attempts = r.u32()?;
    let run_started_at = r.u32()?;
    let created_at = r.time()?;
    let updated_at = r.time()?;
    let last_status_code = has(HAS_STATUS_CODE).then(|| r.u16()).transpose()?;
    let next_attempt_at = has(HAS_NEXT_ATTEMPT).then(|| r.time()).transpose()?;
    let event_type = r.event_type()?;
    let last_error = has(HAS_ERROR).then(|| r.text()).transpose()?;
    Ok(Delivery {
        id,
        tenant_id,
        subscription_id,
        event_id,
        event_type,
        status,
        attempts,
        run_started_at,
        last_status_code,
        last_error,
        next_attempt_at,
        created_at,
        updated_at,
    })
}

fn status_byte(status: DeliveryStatus) -> u8 {
    match status {
        DeliveryStatus::Pending => 0,
        DeliveryStatus::Retrying => 1,
        DeliveryStatus::Succeeded => 2,
        DeliveryStatus::Failed => 3,
    }
}

fn status_from(byte: u8) -> Result<DeliveryStatus, CodecError> {
    Ok(match byte {
        0 => DeliveryStatus::Pending,
        1 => DeliveryStatus::Retrying,
        2 => DeliveryStatus::Succeeded,
        3 => DeliveryStatus::Failed,
        _ => return Err(CodecError::Invalid("status")),
    })
}

fn put_ids<const N: usize>(out: &mut Vec<u8>, ids: [Ulid; N]) {
    for id in ids {
        out.extend_from_slice(&id.to_bytes());
    }
}

fn put_time(out: &mut Vec<u8>, time: Timestamp) {
    out.extend_from_slice(&time.as_second().to_le_bytes());
    out.extend_from_slice(&time.subsec_nanosecond().to_le_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Short);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        self.take(N)?.try_into().map_err(|_| CodecError::Short)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// An event type: `u16 length | bytes`.
    fn event_type(&mut self) -> Result<EventType, CodecError> {
        let len = self.u16()?;
        std::str::from_utf8(self.take(usize::from(len))?)
            .ok()
            .and_then(|s| EventType::parse(s).ok())
            .ok_or(CodecError::Invalid("event type"))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn text(&mut self) -> Result<String, CodecError> {
        let len = usize::try_from(self.u32()?).map_err(|_| CodecError::Short)?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError::Invalid("text"))
    }

    fn ulid(&mut self) -> Result<Ulid, CodecError> {
        Ok(Ulid::from_bytes(self.array()?))
    }

    fn time(&mut self) -> Result<Timestamp, CodecError> {
        let seconds = self.i64()?;
        let nanos = i32::from_le_bytes(self.array()?);
        Timestamp::new(seconds, nanos).map_err(|_| CodecError::Invalid("time"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use herald_contract::fixtures::{attempt, delivery, planned_event};

    use super::*;

    fn round_trip(message: &QueueMessage) -> Vec<u8> {
        let bytes = encode(1_765_000_000_123, message).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.visible_at_ms, 1_765_000_000_123);
        assert_eq!(&back.message, message);
        bytes
    }

    #[test]
    fn a_delivery_message_reads_back_whole_in_a_third_of_its_json() {
        let event = planned_event(TenantId::new(), &[]);
        let mut m = DeliveryMessage::attempt_of(
            &delivery(event.tenant_id, SubscriptionId::new(), &event),
            1,
        );
        let bytes = round_trip(&QueueMessage::Delivery(m.clone()));
        assert_eq!(bytes[0], DELIVERY);
        let json = serde_json::to_vec(&QueueMessage::Delivery(m.clone())).unwrap();
        assert!(
            bytes.len() * 3 < json.len(),
            "{} against {}",
            bytes.len(),
            json.len()
        );
        // Every optional field, set, with a time that has nanoseconds.
        let t = Timestamp::new(1_765_000_000, 123_456_789).unwrap();
        m.delivery.status = DeliveryStatus::Retrying;
        m.delivery.attempts = 3;
        m.delivery.run_started_at = 2;
        m.delivery.last_status_code = Some(503);
        m.delivery.last_error = Some("upstream said: ünïcode".into());
        m.delivery.next_attempt_at = Some(t);
        (m.not_before, m.slot) = (Some(t), Some(Timestamp::now()));
        round_trip(&QueueMessage::Delivery(m));
    }

    #[test]
    fn an_event_message_is_its_two_ids_and_one_carrying_its_event_is_json() {
        let event = planned_event(TenantId::new(), &[]);
        let bare = QueueMessage::Event(EventMessage {
            tenant_id: event.tenant_id,
            event_id: event.id,
            event: None,
        });
        assert_eq!(round_trip(&bare).len(), 41);
        let carried = QueueMessage::Event(EventMessage {
            event: Some(event),
            ..match bare {
                QueueMessage::Event(m) => m,
                QueueMessage::Delivery(_) => unreachable!(),
            }
        });
        assert_eq!(round_trip(&carried)[0], b'{');
    }

    #[test]
    fn json_stored_before_reads_as_before_and_broken_bytes_are_refused() {
        let m = herald_contract::fixtures::delivery_message(1);
        let old = serde_json::to_vec(&StoredRef {
            visible_at_ms: 5,
            message: &m,
        })
        .unwrap();
        assert_eq!(decode(&old).unwrap().message, m);
        let bytes = encode(5, &m).unwrap();
        for cut in [1, 20, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(decode(&[9]), Err(CodecError::UnknownForm(9))));
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn delivery_records_and_attempts_read_back_whole_and_their_json_still_reads() {
        let event = planned_event(TenantId::new(), &[]);
        let mut d = delivery(event.tenant_id, SubscriptionId::new(), &event);
        let mut a = attempt(&d, 1);
        for round in 0..2 {
            let bytes = encode_delivery_record(&d).unwrap();
            assert_eq!(bytes[0], DELIVERY_RECORD);
            assert_eq!(decode_delivery_record(&bytes).unwrap(), d);
            let json = serde_json::to_vec(&d).unwrap();
            assert_eq!(decode_delivery_record(&json).unwrap(), d);
            assert!(
                bytes.len() * 2 < json.len(),
                "{} against {}",
                bytes.len(),
                json.len()
            );

            let bytes = encode_attempt(&a).unwrap();
            assert_eq!(bytes[0], ATTEMPT);
            assert_eq!(decode_attempt(&bytes).unwrap(), a);
            assert_eq!(decode_attempt(&serde_json::to_vec(&a).unwrap()).unwrap(), a);
            if round == 0 {
                // Every optional field set, and the other way round for the rest.
                d.status = DeliveryStatus::Failed;
                d.last_status_code = Some(410);
                d.last_error = Some("gone".into());
                d.next_attempt_at = Some(Timestamp::new(1_765_000_000, 1).unwrap());
                a.status_code = a.status_code.xor(Some(500));
                a.response_excerpt = Some("<html>ä</html>".into());
                a.error = Some("timed out".into());
                a.succeeded = !a.succeeded;
            }
        }
        assert!(decode_attempt(&[ATTEMPT, 0, 1]).is_err());
        assert!(decode_delivery_record(&[DELIVERY]).is_err());
    }

    #[test]
    fn events_read_back_whole_and_their_json_still_reads() {
        let mut event = planned_event(
            TenantId::new(),
            &[SubscriptionId::new(), SubscriptionId::new()],
        );
        event.data =
            serde_json::json!({"title": "Release notes", "tags": ["a", 1, null], "n": 1.5});
        for e in [
            event.clone(),
            Event {
                subscriptions: Vec::new(),
                ..event
            },
        ] {
            let bytes = encode_event(&e).unwrap();
            assert_eq!(bytes[0], EVENT_RECORD);
            assert_eq!(decode_event(&bytes).unwrap(), e);
            let json = serde_json::to_vec(&e).unwrap();
            assert_eq!(decode_event(&json).unwrap(), e);
            assert!(
                bytes.len() < json.len(),
                "{} against {}",
                bytes.len(),
                json.len()
            );
            assert!(decode_event(&bytes[..40]).is_err());
            for stored in [&bytes, &json] {
                let head = decode_event_head(stored).unwrap();
                assert_eq!((head.id, head.timestamp), (e.id, e.timestamp));
                assert_eq!(head.subscriptions, e.subscriptions);
            }
        }
    }
}
