//! The embedded queue's in-memory index, and messages read back from the file past its budget.
#![allow(clippy::unwrap_used)]

use herald_core::model::EventMessage;

use super::*;
use crate::EmbeddedDb;

fn event_message(tenant: TenantId) -> QueueMessage {
    QueueMessage::Event(EventMessage {
        tenant_id: tenant,
        event_id: EventId::new(),
        event: None,
    })
}

fn slot(stored: Vec<u8>, names: (TenantId, EventId), at: Instant) -> Slot {
    Slot {
        stored: Some(stored.into()),
        names,
        visible_at: at,
        receive_count: 0,
    }
}

#[test]
fn a_message_is_kept_in_its_stored_form_and_handed_out_decoded() {
    let message = event_message(TenantId::new());
    let now = Instant::now();
    let mut lane = LaneState::with_max_resident(RESIDENT_BYTES);
    let stored = encode_stored(0, &message).unwrap();
    lane.insert(7, slot(stored.clone(), names(&message), now));

    let taken = lane.take_visible(now, 10, Duration::from_secs(30));
    assert_eq!(taken.len(), 1);
    assert_eq!(
        taken[0].stored.as_deref(),
        Some(stored.as_slice()),
        "the bytes of the file"
    );
    let got = taken
        .into_iter()
        .next()
        .unwrap()
        .decode(QueueName::Events)
        .unwrap();
    assert_eq!(got.message, message);
    assert_eq!((got.receipt.as_str(), got.receive_count), ("7:1", 1));
}

#[test]
fn past_its_budget_a_lane_keeps_only_the_order_and_frees_the_budget_on_removal() {
    let now = Instant::now();
    let mut lane = LaneState::with_max_resident(10);
    let names = (TenantId::new(), EventId::new());
    for seq in 1..=3 {
        lane.insert(seq, slot(vec![0; 4], names, now));
    }
    let kept = |lane: &LaneState, seq| lane.slots[&seq].stored.is_some();
    assert!(kept(&lane, 1) && kept(&lane, 2) && !kept(&lane, 3));
    assert_eq!(lane.resident, 8);
    lane.remove(1);
    lane.insert(4, slot(vec![0; 4], names, now));
    assert!(kept(&lane, 4));
    assert_eq!(lane.resident, 8);
    let order: Vec<u64> = lane
        .take_visible(now, 10, Duration::from_secs(1))
        .iter()
        .map(|t| t.seq)
        .collect();
    assert_eq!(order, [2, 3, 4], "the order is kept for every message");
}

#[tokio::test]
async fn messages_past_the_budget_are_read_back_from_the_file_and_a_delayed_one_keeps_its_delay() {
    let dir = tempfile::tempdir().unwrap();
    // Room for about one delivery message's bytes.
    let db = EmbeddedDb::open_with(dir.path(), 200).unwrap();
    let queue = db.queue();
    let sent: Vec<QueueMessage> = (1..=5)
        .map(herald_contract::fixtures::delivery_message)
        .collect();
    let outgoing = sent
        .iter()
        .map(|message| OutgoingMessage {
            message: message.clone(),
            delay: Duration::ZERO,
        })
        .collect();
    queue.send(outgoing).await.unwrap();
    {
        let state = db.inner.queues.lane(QueueName::Deliveries).lock();
        let in_memory = state.slots.values().filter(|s| s.stored.is_some()).count();
        assert!(in_memory < 5, "{in_memory} of 5 kept in memory");
    }

    let visibility = Duration::from_secs(30);
    let got = queue
        .receive(QueueName::Deliveries, 10, Duration::ZERO, visibility)
        .await
        .unwrap();
    let messages: Vec<_> = got.iter().map(|m| m.message.clone()).collect();
    assert_eq!(messages, sent, "every one, whole, in order");

    // The last one (read from the file) comes back in an hour, also after a restart.
    let last = got.last().unwrap();
    queue
        .release(
            QueueName::Deliveries,
            &last.receipt,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    for m in &got[..4] {
        queue.ack(QueueName::Deliveries, &m.receipt).await.unwrap();
    }
    drop((queue, db));
    let db = EmbeddedDb::open_with(dir.path(), 200).unwrap();
    let queue = db.queue();
    assert_eq!(queue.len(QueueName::Deliveries), 1);
    let now = queue
        .receive(QueueName::Deliveries, 10, Duration::ZERO, visibility)
        .await
        .unwrap();
    assert!(now.is_empty(), "still delayed after the restart");
}

#[test]
fn a_message_that_does_not_decode_is_skipped_and_stays_leased_without_holding_up_the_rest() {
    let good = event_message(TenantId::new());
    let now = Instant::now();
    let mut lane = LaneState::with_max_resident(RESIDENT_BYTES);
    lane.insert(1, slot(vec![0xff, 1, 2], names(&good), now));
    lane.insert(2, slot(encode_stored(0, &good).unwrap(), names(&good), now));

    let visibility = Duration::from_secs(30);
    let got: Vec<_> = lane
        .take_visible(now, 10, visibility)
        .into_iter()
        .filter_map(|t| t.decode(QueueName::Events))
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, good);
    assert!(
        lane.leased(1, 1).is_some(),
        "still there, leased: it comes back"
    );
    assert_eq!(lane.next_visible(), Some(now + visibility));
}
