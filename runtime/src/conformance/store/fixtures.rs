//! What the store tests build their cases from: gifts, send commands, the answers they expect.

use gift_core::domain::{Amount, Gift, GiftCode, GiftId, IdempotencyKey, Message, SendAccepted, Status, Timestamp};
use gift_core::ports::{OutboxEntry, SendCommand, Store};

use crate::rt;

pub(super) fn new_gift(now: Timestamp) -> Gift {
    Gift::new(
        GiftId::from_random(rt::random_u128()),
        GiftCode::from_random(rt::random_u64()),
        Amount::try_from(1234).unwrap(),
        Some(Message::parse("happy birthday — 🎂".into()).unwrap()),
        now,
    )
}

pub(super) fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).unwrap()
}

pub(super) fn cmd(gift: &Gift, k: &str, now: Timestamp) -> SendCommand {
    SendCommand {
        gift_id: gift.id,
        key: key(k),
        now,
        outbox_available_at: now + chrono::Duration::seconds(5),
        trace: None,
    }
}

pub(super) fn accepted(gift: &Gift, k: &str) -> SendAccepted {
    SendAccepted { gift_id: gift.id, status: Status::Queued, request_id: key(k) }
}

pub(super) async fn created(store: &dyn Store, now: Timestamp) -> Gift {
    let gift = new_gift(now);
    store.insert_gift(&gift).await.expect("insert_gift");
    gift
}

pub(super) async fn status_of(store: &dyn Store, gift: &Gift) -> Status {
    store.get_gift(gift.id).await.unwrap().expect("gift exists").status
}

/// The rows due at `now`, read by a claim that holds nothing: it lapsed a day before, so a
/// later read at an earlier time (tests read at times of their choosing) is not held off.
pub(super) async fn peek(store: &dyn Store, now: Timestamp) -> Vec<OutboxEntry> {
    try_peek(store, now).await.unwrap()
}

async fn try_peek(store: &dyn Store, now: Timestamp) -> Result<Vec<OutboxEntry>, gift_core::StoreError> {
    store.outbox_claim(now, now - chrono::Duration::days(1), 10_000).await
}

/// The gift's rows due at `now`, read by [`peek`].
pub(super) async fn due_for(store: &dyn Store, gift: &Gift, now: Timestamp) -> Vec<OutboxEntry> {
    peek(store, now).await.into_iter().filter(|e| e.gift_id == gift.id).collect()
}

/// Records `entry` published, due again at `due_again`, and waits for the row to move: a
/// store may finish that write after `outbox_published` returns, but within moments. The
/// row must be there, its due time passed. Claims may give up under contention
/// (PostgreSQL's when rows they would take keep changing under them, as they do while
/// parallel calls of this wait), so a poll that fails is polled again; and a store may skip
/// the write of a row a claim holds (PostgreSQL does, rather than wait), as these polls
/// do, so while the row is still due the publish is recorded again, as the relay's next
/// publish of the row would.
pub(super) async fn publish_and_settle(store: &dyn Store, entry: &OutboxEntry, due_again: Timestamp) {
    let before = due_again - chrono::Duration::milliseconds(1);
    for round in 0..500 {
        if round % 20 == 0 {
            store.outbox_published(entry, due_again).await.unwrap();
        }
        let due = try_peek(store, before).await.unwrap_or_else(|_| vec![entry.clone()]);
        if !due.iter().any(|e| e.gift_id == entry.gift_id && e.request_id == entry.request_id) {
            return;
        }
        rt::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the outbox row of {:?} is still due 5 s after its publish was recorded", entry.gift_id);
}
