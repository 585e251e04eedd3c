//! [`EmbeddedQueue`]: the events and deliveries queues, durable in the database, indexed in memory.
//!
//! The database holds every un-acked message under `(queue, sequence number)` with the wall-clock
//! time it becomes visible (so a delayed retry keeps its schedule across restarts). Memory holds,
//! per queue, every un-acked message ordered by `(visible_at, seq)`; receiving takes the visible
//! head of that order and moves each message to `now + visibility` (its lease). Leases and receive
//! counts are memory only: after a restart every un-acked message is visible again, which
//! at-least-once delivery allows.
//!
//! Memory keeps each message in its stored form (the bytes written to the database, `codec`: about
//! 150 for a delivery message), decoded only when it is handed out. A backlog is what grows here
//! (deliveries waiting for a slow receiver or for a retry hours away), and a decoded delivery
//! message is a 384-byte struct with its texts in allocations of their own: at fan-out 10
//! (`herald-bench --events 20000 --fanout 10`) the peak RSS fell from 139–141 MB to 92. Past
//! [`RESIDENT_BYTES`] of them per queue, a message keeps only its place in the order (its slot, the
//! schedule's entry and the event it names: a little over 100 bytes) and is read back from the
//! database when it is handed out, so a backlog of millions (a receiver down for hours, or a
//! restart that loads them all) does not also hold every body: 1,000,000 deliveries at fan-out 10
//! (`--events 100000 --fanout 10`, p50 accepted→delivered 15 s) peaked at 249 MB against 307 MB.
//! The order itself stays in memory.
//!
//! A receipt is `"<seq>:<receive count>"`, naming the message and the lease it was given with. An
//! ack or release with a receipt from an older lease (the message timed out and was received again)
//! does nothing and answers `Ok`, like an ack of an already deleted message: the current holder
//! owns the message now. `ack_many` removes all its messages in one commit; acks are lazy writes
//! (see the writer): a delete lost in a crash only brings its message back.
//!
//! Waiting receivers sleep on a [`Notify`] (woken by send and release) with a timer to the earliest
//! visible time; there is no polling.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use herald_core::ids::{EventId, TenantId};
use herald_core::model::Carried;
use herald_core::ports::{
    OutgoingMessage, Queue, QueueError, QueueMessage, QueueName, ReceivedMessage, StoreError,
};
use tokio::sync::Notify;

use crate::codec;
use crate::kv::{parse_queue_key, queue_key, Kv};
use crate::writer::WriteCtx;
use crate::{EmbeddedError, Inner};

/// The longest delay `send` and `release` honour. Herald's longest retry wait is 10 h.
pub const MAX_DELAY: Duration = Duration::from_secs(12 * 3600);

/// Stored bytes of messages kept in memory per queue; the rest are read from the database when
/// handed out (see the module docs). Ample for a queue that keeps up: a second of deliveries at
/// full speed is about 2 MB.
pub(crate) const RESIDENT_BYTES: usize = 16 * 1024 * 1024;

/// Bounds receive waits and visibility timeouts so instant arithmetic cannot overflow.
const MAX_WAIT: Duration = Duration::from_secs(366 * 24 * 3600);

fn encode_stored(visible_at_ms: i64, message: &QueueMessage) -> Result<Vec<u8>, QueueError> {
    codec::encode(visible_at_ms, message).map_err(|e| QueueError::Codec(e.to_string()))
}

fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_queue_error(err: StoreError) -> QueueError {
    match err {
        StoreError::Backend(e) => QueueError::Backend(e),
        other => QueueError::backend(other),
    }
}

struct Slot {
    /// The message as stored in the database (see the module docs); `None` past
    /// [`RESIDENT_BYTES`].
    stored: Option<Arc<[u8]>>,
    /// The event it names (for the retention sweeper, without decoding).
    names: (TenantId, EventId),
    visible_at: Instant,
    /// Also the lease number: receipts carry it.
    receive_count: u32,
}

/// The event a message names: one still to fan out, or one with a delivery still to attempt.
fn names(message: &QueueMessage) -> (TenantId, EventId) {
    match message {
        QueueMessage::Event(m) => (m.tenant_id, m.event_id),
        QueueMessage::Delivery(m) => (m.delivery.tenant_id, m.delivery.event_id),
    }
}

/// A message handed out by [`LaneState::take_visible`], still in its stored form (`None`: in the
/// database only).
struct Taken {
    seq: u64,
    stored: Option<Arc<[u8]>>,
    receive_count: u32,
    waited: Duration,
}

impl Taken {
    /// The message decoded, from its bytes (`None` if they were not read). `None` (logged) if
    /// they do not decode, which only a codec bug can cause: they were checked when it was sent or
    /// loaded. It stays leased and comes back.
    fn decode(self, queue: QueueName) -> Option<ReceivedMessage> {
        match codec::decode(self.stored.as_deref()?) {
            Ok(stored) => Some(ReceivedMessage {
                receipt: format!("{}:{}", self.seq, self.receive_count),
                message: stored.message,
                receive_count: self.receive_count,
                waited: Some(self.waited),
            }),
            Err(error) => {
                tracing::error!(queue = queue.as_str(), seq = self.seq, %error, "a queued message does not decode");
                None
            }
        }
    }
}

/// One queue's un-acked messages.
struct LaneState {
    slots: HashMap<u64, Slot>,
    /// `(visible_at, seq)` of every slot: the head is the next message to hand out.
    schedule: BTreeSet<(Instant, u64)>,
    /// Stored bytes the slots keep, and the most they may.
    resident: usize,
    max_resident: usize,
}

impl LaneState {
    fn with_max_resident(max_resident: usize) -> Self {
        Self {
            slots: HashMap::new(),
            schedule: BTreeSet::new(),
            resident: 0,
            max_resident,
        }
    }

    /// Adds the slot of a message that is in the database; its bytes are kept while they fit.
    fn insert(&mut self, seq: u64, mut slot: Slot) {
        self.remove(seq);
        if let Some(len) = slot.stored.as_ref().map(|b| b.len()) {
            if self.resident.saturating_add(len) > self.max_resident {
                slot.stored = None;
            } else {
                self.resident += len;
            }
        }
        self.schedule.insert((slot.visible_at, seq));
        self.slots.insert(seq, slot);
    }

    fn remove(&mut self, seq: u64) -> Option<Slot> {
        let slot = self.slots.remove(&seq)?;
        self.schedule.remove(&(slot.visible_at, seq));
        if let Some(bytes) = &slot.stored {
            self.resident = self.resident.saturating_sub(bytes.len());
        }
        Some(slot)
    }

    /// The slot `seq` if `lease` is its current lease.
    fn leased(&self, seq: u64, lease: u32) -> Option<&Slot> {
        self.slots
            .get(&seq)
            .filter(|s| lease > 0 && s.receive_count == lease)
    }

    fn set_visible_at(&mut self, seq: u64, at: Instant) {
        if let Some(slot) = self.slots.get_mut(&seq) {
            self.schedule.remove(&(slot.visible_at, seq));
            slot.visible_at = at;
            self.schedule.insert((at, seq));
        }
    }

    fn take_visible(&mut self, now: Instant, max: usize, visibility: Duration) -> Vec<Taken> {
        let due: Vec<(Instant, u64)> = self
            .schedule
            .range(..=(now, u64::MAX))
            .take(max)
            .copied()
            .collect();
        let lease_end = now + visibility.min(MAX_WAIT);
        let mut out = Vec::with_capacity(due.len());
        for (at, seq) in due {
            self.schedule.remove(&(at, seq));
            let Some(slot) = self.slots.get_mut(&seq) else {
                continue;
            };
            slot.receive_count = slot.receive_count.saturating_add(1);
            slot.visible_at = lease_end;
            self.schedule.insert((lease_end, seq));
            out.push(Taken {
                seq,
                stored: slot.stored.clone(),
                receive_count: slot.receive_count,
                waited: now.saturating_duration_since(at),
            });
        }
        out
    }

    fn next_visible(&self) -> Option<Instant> {
        self.schedule.first().map(|(at, _)| *at)
    }
}

struct Lane {
    state: Mutex<LaneState>,
    /// Woken whenever a message may have become visible earlier than waiters planned for.
    changed: Notify,
}

impl Lane {
    fn new(state: LaneState) -> Self {
        Self {
            state: Mutex::new(state),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // The state stays consistent between statements, so a panicked holder left it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Messages encoded and numbered for one commit: [`PreparedSend::write`] inside the transaction,
/// [`PreparedSend::publish`] after it committed. Shared by `send` and the outbox.
pub(crate) struct PreparedSend {
    rows: Vec<(QueueName, u64, Arc<[u8]>)>,
    slots: Vec<(QueueName, u64, Slot)>,
}

impl PreparedSend {
    pub(crate) fn new(
        shared: &QueueShared,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Self, QueueError> {
        let (now, now_ms) = (Instant::now(), wall_ms());
        let mut rows = Vec::with_capacity(messages.len());
        let mut slots = Vec::with_capacity(messages.len());
        for out in messages {
            let delay = out.delay.min(MAX_DELAY);
            let queue = out.message.queue();
            let seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
            let stored: Arc<[u8]> =
                encode_stored(now_ms.saturating_add(ms(delay)), &out.message)?.into();
            rows.push((queue, seq, Arc::clone(&stored)));
            slots.push((
                queue,
                seq,
                Slot {
                    stored: Some(stored),
                    names: names(&out.message),
                    visible_at: now + delay,
                    receive_count: 0,
                },
            ));
        }
        Ok(Self { rows, slots })
    }

    pub(crate) fn write(&self, ctx: &mut WriteCtx<'_>) -> Result<(), StoreError> {
        for (queue, seq, bytes) in &self.rows {
            ctx.queue_put(queue.as_str(), *seq, bytes)?;
        }
        Ok(())
    }

    /// Makes the committed messages receivable and wakes the receivers.
    pub(crate) fn publish(self, shared: &QueueShared) {
        let mut touched = [false; 2];
        for (queue, seq, slot) in self.slots {
            shared.lane(queue).lock().insert(seq, slot);
            touched[queue as usize] = true;
        }
        for queue in [QueueName::Events, QueueName::Deliveries] {
            if touched[queue as usize] {
                shared.lane(queue).changed.notify_waiters();
            }
        }
    }
}

/// The in-memory side of both queues, shared with the writer thread's completions.
pub(crate) struct QueueShared {
    events: Lane,
    deliveries: Lane,
    next_seq: AtomicU64,
}

impl QueueShared {
    /// Rebuilds the index from the database: every stored message, visible at its stored time
    /// (or now, if that has passed).
    pub(crate) fn load(kv: &Kv, max_resident: usize) -> Result<Self, EmbeddedError> {
        let table = kv.read_queue();
        let (now, now_ms) = (Instant::now(), wall_ms());
        let mut events = LaneState::with_max_resident(max_resident);
        let mut deliveries = LaneState::with_max_resident(max_resident);
        let mut max_seq = None;
        for row in table.iter_raw() {
            let (key, value) = row?;
            let (queue, seq) = parse_queue_key(key.bytes())?;
            max_seq = max_seq.max(Some(seq));
            let lane = match queue {
                "events" => &mut events,
                "deliveries" => &mut deliveries,
                other => {
                    tracing::warn!(queue = other, seq, "skipping a message of an unknown queue");
                    continue;
                }
            };
            let stored = match codec::decode(value.value()) {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::warn!(queue, seq, %error, "skipping a queue message that does not decode");
                    continue;
                }
            };
            let wait = u64::try_from(stored.visible_at_ms.saturating_sub(now_ms)).unwrap_or(0);
            let wait = Duration::from_millis(wait).min(MAX_DELAY);
            lane.insert(
                seq,
                Slot {
                    stored: Some(value.value().into()),
                    names: names(&stored.message),
                    visible_at: now + wait,
                    // It may have been received before the restart: count that, so handlers run
                    // their crash-recovery checks (receive count > 1) on it.
                    receive_count: 1,
                },
            );
        }
        let (e, d) = (events.slots.len(), deliveries.slots.len());
        if e + d > 0 {
            tracing::info!(events = e, deliveries = d, "queued messages recovered");
        }
        Ok(Self {
            events: Lane::new(events),
            deliveries: Lane::new(deliveries),
            next_seq: AtomicU64::new(max_seq.map_or(1, |s: u64| s.saturating_add(1))),
        })
    }

    /// Which of `events` a queued message names (visible, leased or delayed): an event still to
    /// fan out, or one with a delivery still to attempt. The retention sweeper keeps those.
    pub(crate) fn naming(
        &self,
        events: &HashSet<(TenantId, EventId)>,
    ) -> HashSet<(TenantId, EventId)> {
        let mut named = HashSet::new();
        if events.is_empty() {
            return named;
        }
        for queue in [QueueName::Events, QueueName::Deliveries] {
            let state = self.lane(queue).lock();
            for slot in state.slots.values() {
                if events.contains(&slot.names) {
                    named.insert(slot.names);
                }
            }
        }
        named
    }

    fn lane(&self, queue: QueueName) -> &Lane {
        match queue {
            QueueName::Events => &self.events,
            QueueName::Deliveries => &self.deliveries,
        }
    }
}

fn parse_receipt(receipt: &str) -> Result<(u64, u32), QueueError> {
    receipt
        .split_once(':')
        .and_then(|(seq, lease)| Some((seq.parse().ok()?, lease.parse().ok()?)))
        .ok_or_else(|| QueueError::Codec("the receipt was not made by this queue".into()))
}

/// The durable queues. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueue").finish_non_exhaustive()
    }
}

impl EmbeddedQueue {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// How many un-acked messages a queue holds (visible or leased).
    pub fn len(&self, queue: QueueName) -> usize {
        self.inner.queues.lane(queue).lock().slots.len()
    }

    /// Whether a queue holds no un-acked message.
    pub fn is_empty(&self, queue: QueueName) -> bool {
        self.len(queue) == 0
    }

    /// The stored bytes of messages `seqs` of `queue`, in order (`None`: not in the database,
    /// acked meanwhile). Read on the blocking pool, off the async workers.
    async fn read_stored(
        &self,
        queue: QueueName,
        seqs: Vec<u64>,
    ) -> Result<Vec<Option<Arc<[u8]>>>, QueueError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let table = inner.kv.read_queue();
            seqs.into_iter()
                .map(|seq| {
                    let row = table
                        .get_raw(&queue_key(queue.as_str(), seq))
                        .map_err(StoreError::backend)?;
                    Ok(row.map(|v| Arc::from(v.value())))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await
        .map_err(QueueError::backend)?
        .map_err(to_queue_error)
    }

    /// The messages handed out, decoded; those kept only in the database are read from it
    /// first.
    async fn decode_taken(
        &self,
        queue: QueueName,
        taken: Vec<Taken>,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let in_file: Vec<u64> = taken
            .iter()
            .filter(|t| t.stored.is_none())
            .map(|t| t.seq)
            .collect();
        let mut read = if in_file.is_empty() {
            Vec::new()
        } else {
            self.read_stored(queue, in_file).await?
        }
        .into_iter();
        let mut got = Vec::with_capacity(taken.len());
        for mut t in taken {
            if t.stored.is_none() {
                // `None` again when it is not in the database: acked meanwhile by an older
                // lease's holder.
                t.stored = read.next().flatten();
            }
            got.extend(t.decode(queue));
        }
        Ok(got)
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    fn max_delay(&self) -> Duration {
        MAX_DELAY
    }

    /// None: the store is in the same process, so a message carries ids only and the event is
    /// written to disk once.
    fn carried(&self) -> Carried {
        Carried(0)
    }

    async fn send(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        let prepared = PreparedSend::new(&self.inner.queues, messages)?;
        let shared = Arc::clone(&self.inner.queues);
        self.inner
            .writer
            .write_then(
                move |ctx| prepared.write(ctx).map(|()| prepared),
                // Indexed only once durable, so nothing un-committed is ever handed out.
                move |result| result.map(|prepared| prepared.publish(&shared)),
            )
            .await
            .map_err(to_queue_error)
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
        let lane = self.inner.queues.lane(queue);
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        loop {
            // Registered before looking, so a send between the look and the sleep still wakes us.
            let mut changed = std::pin::pin!(lane.changed.notified());
            changed.as_mut().enable();
            let now = Instant::now();
            let (taken, next) = {
                let mut state = lane.lock();
                let taken = state.take_visible(now, max, visibility);
                (taken, state.next_visible())
            };
            // Decoded outside the lock, so senders and other receivers do not wait on it.
            let got = self.decode_taken(queue, taken).await?;
            if !got.is_empty() {
                return Ok(got);
            }
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake = next.map_or(deadline, |at| at.min(deadline));
            let _ = tokio::time::timeout_at(tokio::time::Instant::from_std(wake), changed).await;
        }
    }

    async fn ack(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        let (seq, lease) = parse_receipt(receipt)?;
        let lane = self.inner.queues.lane(queue);
        // Out of the index first, so nobody receives it while the delete commits.
        let slot = {
            let mut state = lane.lock();
            match state.leased(seq, lease) {
                Some(_) => state.remove(seq),
                None => None,
            }
        };
        let Some(slot) = slot else {
            tracing::debug!(
                queue = queue.as_str(),
                receipt,
                "ack of a stale or acked receipt ignored"
            );
            return Ok(());
        };
        let shared = Arc::clone(&self.inner.queues);
        self.inner
            .writer
            .write_then_lazy(
                move |ctx| ctx.queue_remove(queue.as_str(), seq).map(drop),
                move |result| {
                    if result.is_err() {
                        // Not deleted: it must stay deliverable.
                        let lane = shared.lane(queue);
                        lane.lock().insert(seq, slot);
                        lane.changed.notify_waiters();
                    }
                    result
                },
            )
            .await
            .map_err(to_queue_error)
    }

    async fn ack_many(&self, queue: QueueName, receipts: Vec<String>) -> Result<(), QueueError> {
        let mut malformed = None;
        let mut parsed = Vec::with_capacity(receipts.len());
        for receipt in &receipts {
            match parse_receipt(receipt) {
                Ok(seq_lease) => parsed.push(seq_lease),
                Err(e) => malformed = Some(e),
            }
        }
        let lane = self.inner.queues.lane(queue);
        // Out of the index first, as in `ack`; a repeated receipt finds its slot gone already.
        let slots: Vec<(u64, Slot)> = {
            let mut state = lane.lock();
            parsed
                .into_iter()
                .filter_map(|(seq, lease)| {
                    state.leased(seq, lease)?;
                    state.remove(seq).map(|slot| (seq, slot))
                })
                .collect()
        };
        if slots.len() < receipts.len() {
            tracing::debug!(
                queue = queue.as_str(),
                ignored = receipts.len() - slots.len(),
                "acks of stale, repeated or acked receipts ignored"
            );
        }
        if !slots.is_empty() {
            let seqs: Vec<u64> = slots.iter().map(|(seq, _)| *seq).collect();
            let shared = Arc::clone(&self.inner.queues);
            // One commit for all of them.
            self.inner
                .writer
                .write_then_lazy(
                    move |ctx| {
                        for seq in &seqs {
                            ctx.queue_remove(queue.as_str(), *seq)?;
                        }
                        Ok(())
                    },
                    move |result| {
                        if result.is_err() {
                            // Not deleted: they must stay deliverable.
                            let lane = shared.lane(queue);
                            let mut state = lane.lock();
                            for (seq, slot) in slots {
                                state.insert(seq, slot);
                            }
                            drop(state);
                            lane.changed.notify_waiters();
                        }
                        result
                    },
                )
                .await
                .map_err(to_queue_error)?;
        }
        malformed.map_or(Ok(()), Err)
    }

    async fn release(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let (seq, lease) = parse_receipt(receipt)?;
        let delay = delay.min(MAX_DELAY);
        let lane = self.inner.queues.lane(queue);
        let stored = {
            let mut state = lane.lock();
            let Some(slot) = state.leased(seq, lease) else {
                tracing::debug!(
                    queue = queue.as_str(),
                    receipt,
                    "release of a stale or acked receipt ignored"
                );
                return Ok(());
            };
            let stored = (!delay.is_zero()).then(|| slot.stored.clone());
            state.set_visible_at(seq, Instant::now() + delay);
            stored
        };
        lane.changed.notify_waiters();
        // A delayed release is written down so the delay survives a restart; an immediate one
        // needs nothing, since every message is visible after a restart anyway.
        let Some(stored) = stored else {
            return Ok(());
        };
        let stored = match stored {
            Some(bytes) => bytes,
            None => match self.read_stored(queue, vec![seq]).await?.pop().flatten() {
                Some(bytes) => bytes,
                // Acked meanwhile.
                None => return Ok(()),
            },
        };
        let message = codec::decode(&stored)
            .map_err(|e| QueueError::Codec(e.to_string()))?
            .message;
        let bytes = encode_stored(wall_ms().saturating_add(ms(delay)), &message)?;
        self.inner
            .writer
            .write(move |ctx| {
                // Acked meanwhile: do not bring it back.
                if ctx.queue_contains(queue.as_str(), seq)? {
                    ctx.queue_put(queue.as_str(), seq, &bytes)?;
                }
                Ok(())
            })
            .await
            .map_err(to_queue_error)
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
