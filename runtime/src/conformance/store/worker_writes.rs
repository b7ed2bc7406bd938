//! The worker's writes: conditional moves out of QUEUED, one at a time, in batches, racing.

use std::sync::Arc;

use futures::future::join_all;
use gift_core::domain::{Gift, GiftId, Status};
use gift_core::ports::Store;

use crate::rt;

use super::fixtures::*;

/// Conditional updates: only QUEUED moves, exactly once; FAILED records the error.
pub async fn conditional_updates_move_only_queued(store: &dyn Store) {
    let now = rt::now_utc();
    let later = now + chrono::Duration::seconds(3);
    let fresh = created(store, now).await;
    assert!(!store.mark_sent(fresh.id, later).await.unwrap(), "CREATED must not become SENT");
    assert!(!store.mark_failed(fresh.id, "x", later).await.unwrap(), "CREATED must not become FAILED");
    assert_eq!(status_of(store, &fresh).await, Status::Created);

    let sent = created(store, now).await;
    store.request_send(&cmd(&sent, "s", now)).await.unwrap();
    assert!(store.mark_sent(sent.id, later).await.unwrap());
    assert!(!store.mark_sent(sent.id, later).await.unwrap(), "SENT twice");
    assert!(!store.mark_failed(sent.id, "late", later).await.unwrap(), "SENT became FAILED");
    let read = store.get_gift(sent.id).await.unwrap().unwrap();
    assert_eq!((read.status, read.last_error, read.updated_at), (Status::Sent, None, later));

    let failed = created(store, now).await;
    store.request_send(&cmd(&failed, "f", now)).await.unwrap();
    assert!(store.mark_failed(failed.id, "pseudo-send failed (attempt 5)", later).await.unwrap());
    assert!(!store.mark_sent(failed.id, later).await.unwrap(), "FAILED became SENT");
    let read = store.get_gift(failed.id).await.unwrap().unwrap();
    assert_eq!((read.status, read.last_error.as_deref()), (Status::Failed, Some("pseudo-send failed (attempt 5)")));
    assert!(!store.mark_sent(GiftId::from_random(5), later).await.unwrap());
}

/// The batch forms answer in the order asked, as the single calls would: unknown ids are
/// `None`, an id listed twice is read twice but sent once, and only QUEUED gifts move.
pub async fn batch_reads_and_updates_answer_in_order(store: &dyn Store) {
    let now = rt::now_utc();
    let later = now + chrono::Duration::seconds(3);
    assert_eq!(store.get_gifts(&[]).await.unwrap(), Vec::<Option<Gift>>::new());
    assert_eq!(store.mark_sent_all(&[], later).await.unwrap(), Vec::<bool>::new());

    let fresh = created(store, now).await;
    let (queued, other) = (created(store, now).await, created(store, now).await);
    for gift in [&queued, &other] {
        store.request_send(&cmd(gift, "k", now)).await.unwrap();
    }
    let finished = created(store, now).await;
    store.request_send(&cmd(&finished, "k", now)).await.unwrap();
    assert!(store.mark_failed(finished.id, "gave up", now).await.unwrap());
    let unknown = GiftId::from_random(7);

    let asked = [other.id, unknown, fresh.id, queued.id, other.id, finished.id];
    let read = store.get_gifts(&asked).await.unwrap();
    let read: Vec<Option<(GiftId, Status)>> = read.iter().map(|g| g.as_ref().map(|g| (g.id, g.status))).collect();
    assert_eq!(
        read,
        [
            Some((other.id, Status::Queued)),
            None,
            Some((fresh.id, Status::Created)),
            Some((queued.id, Status::Queued)),
            Some((other.id, Status::Queued)),
            Some((finished.id, Status::Failed)),
        ]
    );
    assert_eq!(store.get_gifts(&[queued.id]).await.unwrap(), vec![store.get_gift(queued.id).await.unwrap()]);

    let won = store.mark_sent_all(&asked, later).await.unwrap();
    assert_eq!(won, [true, false, false, true, false, false], "only QUEUED moves, a repeated id once");
    for (gift, status) in
        [(&queued, Status::Sent), (&other, Status::Sent), (&fresh, Status::Created), (&finished, Status::Failed)]
    {
        let read = store.get_gift(gift.id).await.unwrap().unwrap();
        assert_eq!(read.status, status, "{:?}", gift.id);
        if status == Status::Sent {
            assert_eq!((read.updated_at, read.last_error), (later, None));
        }
    }
    assert_eq!(store.mark_sent_all(&[queued.id, other.id], later).await.unwrap(), [false, false], "SENT twice");
}

/// Workers racing over the same gifts in different orders (two redeliveries, two batches)
/// each win a gift exactly once between them, and none of them fails (no deadlock).
pub async fn racing_batch_updates_win_each_gift_once(store: Arc<dyn Store>) {
    const RACERS: usize = 8;
    let now = rt::now_utc();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let gift = created(&*store, now).await;
        store.request_send(&cmd(&gift, "k", now)).await.unwrap();
        ids.push(gift.id);
    }
    let wins = join_all((0..RACERS).map(|r| {
        let store = store.clone();
        let mut order = ids.clone();
        order.rotate_left(r);
        if r % 2 == 1 {
            order.reverse();
        }
        async move { order.iter().copied().zip(store.mark_sent_all(&order, now).await.unwrap()).collect::<Vec<_>>() }
    }))
    .await;
    for id in &ids {
        let won = wins.iter().flatten().filter(|(w, won)| w == id && *won).count();
        assert_eq!(won, 1, "{id:?} won {won} times");
    }
}
