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

/// The gift's rows due at `now`, read by a claim that holds nothing.
pub(super) async fn due_for(store: &dyn Store, gift: &Gift, now: Timestamp) -> Vec<OutboxEntry> {
    let due = store.outbox_claim(now, now, 10_000).await.unwrap();
    due.into_iter().filter(|e| e.gift_id == gift.id).collect()
}

/// Removes `entry` and waits for its row to be gone: a store may finish a removal after
/// `outbox_remove` returns, but within moments, not never.
pub(super) async fn remove_and_settle(store: &dyn Store, entry: &OutboxEntry) {
    store.outbox_remove(entry).await.unwrap();
    let any_time = rt::now_utc() + chrono::Duration::days(3650);
    for _ in 0..500 {
        if !store.outbox_claim(any_time, any_time, 10_000).await.unwrap().contains(entry) {
            return;
        }
        rt::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the outbox row of {:?} is still there 5 s after its removal", entry.gift_id);
}
