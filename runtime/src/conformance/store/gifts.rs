//! Creating and reading gifts: round trips, taken codes, creates at once, the ping.

use std::sync::Arc;

use futures::future::join_all;
use gift_core::domain::{Gift, GiftCode, GiftId};
use gift_core::ports::Store;
use gift_core::StoreError;

use crate::rt;

use super::fixtures::*;

/// A gift reads back exactly as written; an unknown id reads as `None`.
pub async fn insert_then_get_round_trips(store: &dyn Store) {
    let now = rt::now_utc();
    let mut gift = new_gift(now);
    gift.message = None;
    store.insert_gift(&gift).await.unwrap();
    assert_eq!(store.get_gift(gift.id).await.unwrap(), Some(gift));
    let with_message = created(store, now).await;
    assert_eq!(store.get_gift(with_message.id).await.unwrap(), Some(with_message));
    assert_eq!(store.get_gift(GiftId::from_random(7)).await.unwrap(), None);
}

/// A second gift with an existing code is refused as `CodeTaken`, and nothing is written.
pub async fn duplicate_code_is_code_taken(store: &dyn Store) {
    let now = rt::now_utc();
    let first = created(store, now).await;
    let mut second = new_gift(now);
    second.code = first.code.clone();
    assert_eq!(store.insert_gift(&second).await, Err(StoreError::CodeTaken));
    assert_eq!(store.get_gift(second.id).await.unwrap(), None);
}

/// Many creates at once, more than a pool has connections: each gets its own answer. A
/// code taken before, or by another create of the same moment, fails that create alone;
/// every other gift is stored.
pub async fn concurrent_creates_answer_each(store: Arc<dyn Store>) {
    const CREATES: usize = 40;
    let now = rt::now_utc();
    let existing = created(&*store, now).await;
    let shared = GiftCode::from_random(rt::random_u64());
    let gifts: Vec<Gift> = (0..CREATES)
        .map(|i| {
            let mut gift = new_gift(now);
            match i % 8 {
                3 => gift.code = existing.code.clone(),
                5 => gift.code = shared.clone(),
                _ => {}
            }
            gift
        })
        .collect();
    let answers = join_all(gifts.iter().map(|gift| {
        let store = store.clone();
        async move { store.insert_gift(gift).await }
    }))
    .await;
    for (i, answer) in answers.iter().enumerate() {
        match i % 8 {
            3 => assert_eq!(answer, &Err(StoreError::CodeTaken), "create {i} reused a stored code"),
            5 => assert!(matches!(answer, Ok(()) | Err(StoreError::CodeTaken)), "create {i}: {answer:?}"),
            _ => assert_eq!(answer, &Ok(()), "create {i}"),
        }
    }
    let shared_won = (0..CREATES).filter(|i| i % 8 == 5 && answers[*i].is_ok()).count();
    assert_eq!(shared_won, 1, "one create of the shared code wins: {answers:?}");
    let ids: Vec<GiftId> = gifts.iter().map(|g| g.id).collect();
    for ((gift, answer), read) in gifts.iter().zip(&answers).zip(store.get_gifts(&ids).await.unwrap()) {
        assert_eq!(read.as_ref(), answer.as_ref().ok().map(|()| gift), "stored exactly when answered Ok");
    }
}

pub async fn ping_answers(store: &dyn Store) {
    store.ping().await.unwrap();
}
