//! The send transaction: queue, replay and conflict, alone, racing and dropped part-way.

use std::sync::Arc;

use futures::future::join_all;
use gift_core::domain::{Gift, GiftId, Status, Timestamp};
use gift_core::ports::{OutboxEntry, SendDecision, Store};

use crate::rt;

use super::fixtures::*;

/// The send transaction: queue once, replay the same key, refuse other keys, 404 unknown.
pub async fn send_queues_replays_and_conflicts(store: &dyn Store) {
    let now = rt::now_utc();
    let gift = created(store, now).await;
    let later = now + chrono::Duration::seconds(1);
    assert_eq!(
        store.request_send(&cmd(&gift, "k-1", later)).await.unwrap(),
        SendDecision::Queued(accepted(&gift, "k-1"))
    );
    let stored = store.get_gift(gift.id).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Queued);
    assert_eq!(stored.updated_at, later);
    assert_eq!(
        store.request_send(&cmd(&gift, "k-1", later)).await.unwrap(),
        SendDecision::Replay(accepted(&gift, "k-1"))
    );
    assert_eq!(store.request_send(&cmd(&gift, "k-2", later)).await.unwrap(), SendDecision::Conflict(Status::Queued));
    let mut ghost = new_gift(now);
    ghost.id = GiftId::from_random(99);
    assert_eq!(store.request_send(&cmd(&ghost, "k-1", later)).await.unwrap(), SendDecision::NotFound);
    // The same key on another gift is a different request.
    let other = created(store, now).await;
    assert_eq!(
        store.request_send(&cmd(&other, "k-1", later)).await.unwrap(),
        SendDecision::Queued(accepted(&other, "k-1"))
    );
}

/// A terminal gift still replays its own key and conflicts on any other.
pub async fn terminal_gifts_replay_and_conflict(store: &dyn Store) {
    let now = rt::now_utc();
    let gift = created(store, now).await;
    store.request_send(&cmd(&gift, "a", now)).await.unwrap();
    assert!(store.mark_sent(gift.id, now).await.unwrap());
    assert_eq!(store.request_send(&cmd(&gift, "a", now)).await.unwrap(), SendDecision::Replay(accepted(&gift, "a")));
    assert_eq!(store.request_send(&cmd(&gift, "b", now)).await.unwrap(), SendDecision::Conflict(Status::Sent));
}

/// Racing sends: different keys queue the gift exactly once; the same key replays. Several
/// rounds, because a race that is lost only sometimes must still be caught by the suite.
pub async fn concurrent_sends_queue_once(store: Arc<dyn Store>) {
    const RACERS: usize = 16;
    for _round in 0..5 {
        let now = rt::now_utc();
        let gift = created(&*store, now).await;
        let decisions = join_all((0..RACERS).map(|i| {
            let store = store.clone();
            let c = cmd(&gift, &format!("race-{i}"), now);
            async move { store.request_send(&c).await.unwrap() }
        }))
        .await;
        let queued = decisions.iter().filter(|d| matches!(d, SendDecision::Queued(_))).count();
        let conflicts = decisions.iter().filter(|d| **d == SendDecision::Conflict(Status::Queued)).count();
        assert_eq!((queued, conflicts), (1, RACERS - 1), "different keys: {decisions:?}");

        let gift = created(&*store, now).await;
        let decisions = join_all((0..RACERS).map(|_| {
            let store = store.clone();
            let c = cmd(&gift, "same", now);
            async move { store.request_send(&c).await.unwrap() }
        }))
        .await;
        let queued = decisions.iter().filter(|d| matches!(d, SendDecision::Queued(_))).count();
        let replays = decisions.iter().filter(|d| **d == SendDecision::Replay(accepted(&gift, "same"))).count();
        assert_eq!((queued, replays), (1, RACERS - 1), "one key: {decisions:?}");
    }
}

/// Many sends at once over many gifts, more than a pool has connections: each is answered
/// as if it had run alone. Per gift three sends (a key twice, another key once) queue it
/// exactly once, with one outbox row for the winning key; the winner's key replays, the
/// other conflicts. A gift that does not exist is not found; a sent gift replays its own
/// key and conflicts on a new one.
pub async fn concurrent_sends_answer_each(store: Arc<dyn Store>) {
    const GIFTS: usize = 16;
    let now = rt::now_utc();
    let mut gifts = Vec::new();
    for _ in 0..GIFTS {
        gifts.push(created(&*store, now).await);
    }
    let sent = created(&*store, now).await;
    store.request_send(&cmd(&sent, "old", now)).await.unwrap();
    assert!(store.mark_sent(sent.id, now).await.unwrap());
    let unknown = new_gift(now);

    let mut sends: Vec<(Gift, &str)> = Vec::new();
    for (gift, k) in [(&sent, "old"), (&unknown, "a"), (&sent, "new")] {
        sends.push((gift.clone(), k));
    }
    for round in ["a", "a", "b"] {
        for gift in &gifts {
            sends.push((gift.clone(), round));
        }
    }
    let decisions = join_all(sends.iter().map(|(gift, k)| {
        let store = store.clone();
        let c = cmd(gift, k, now);
        async move { store.request_send(&c).await.unwrap() }
    }))
    .await;

    assert_eq!(decisions[0], SendDecision::Replay(accepted(&sent, "old")), "the sent gift's own key");
    assert_eq!(decisions[1], SendDecision::NotFound, "no such gift");
    assert_eq!(decisions[2], SendDecision::Conflict(Status::Sent), "a new key on a sent gift");
    let due_at = now + chrono::Duration::seconds(3600);
    for gift in &gifts {
        assert_one_winner(&*store, gift, &sends, &decisions, due_at).await;
    }
    assert_eq!(store.get_gift(unknown.id).await.unwrap(), None);
}

/// Of the concurrent `sends` (answered by `decisions`) to `gift`, exactly one queued it: the
/// others replay that winner's key or conflict, and its outbox row, due by `due_at`, is the
/// winner's alone.
async fn assert_one_winner(
    store: &dyn Store,
    gift: &Gift,
    sends: &[(Gift, &str)],
    decisions: &[SendDecision],
    due_at: Timestamp,
) {
    let mine: Vec<(&str, &SendDecision)> =
        sends.iter().zip(decisions).filter(|((g, _), _)| g.id == gift.id).map(|((_, k), d)| (*k, d)).collect();
    let winners: Vec<&str> =
        mine.iter().filter(|(_, d)| matches!(d, SendDecision::Queued(_))).map(|(k, _)| *k).collect();
    let [winner] = winners.as_slice() else { panic!("{:?} queued by {winners:?}: {mine:?}", gift.id) };
    for (k, decision) in &mine {
        match decision {
            SendDecision::Queued(body) => assert_eq!(body, &accepted(gift, k)),
            SendDecision::Replay(body) => {
                assert_eq!((*k, body), (*winner, &accepted(gift, k)), "a replay of the winning key only")
            }
            other => {
                assert_eq!(other, &&SendDecision::Conflict(Status::Queued));
                assert_ne!(k, winner, "the winning key conflicted: {mine:?}");
            }
        }
    }
    assert_eq!(status_of(store, gift).await, Status::Queued);
    let outbox = due_for(store, gift, due_at).await;
    assert_eq!(
        outbox,
        vec![OutboxEntry { gift_id: gift.id, request_id: key(winner), trace: None, stale: false }],
        "one outbox row"
    );
}

/// A send dropped part-way — a client that hung up, a request timeout — is all or nothing,
/// and the store goes on working: a gift created right after it is at once visible to
/// `observer` (the same store, or one reading through other connections to the same data).
pub async fn dropped_sends_are_all_or_nothing(store: Arc<dyn Store>, observer: Arc<dyn Store>) {
    let now = rt::now_utc();
    for polls in 0..24u32 {
        let gift = created(&*store, now).await;
        let command = cmd(&gift, "dropped", now);
        let mut send = store.request_send(&command);
        for _ in 0..polls {
            if futures::poll!(&mut send).is_ready() {
                break;
            }
            // Long enough for the database to answer whatever the last poll sent.
            rt::sleep(std::time::Duration::from_micros(150)).await;
        }
        drop(send);

        let next = created(&*store, now).await;
        assert!(
            observer.get_gift(next.id).await.unwrap().is_some(),
            "a gift created after a send dropped after {polls} polls is not visible to others"
        );
        // Whether or not the dropped send happened, the same request now answers 202, and
        // the gift is QUEUED with exactly one outbox row.
        let again = store.request_send(&cmd(&gift, "dropped", now)).await.unwrap();
        assert!(matches!(again, SendDecision::Queued(_) | SendDecision::Replay(_)), "after {polls} polls: {again:?}");
        assert_eq!(status_of(&*observer, &gift).await, Status::Queued);
        let due_at = now + chrono::Duration::seconds(3600);
        assert_eq!(due_for(&*observer, &gift, due_at).await.len(), 1, "after {polls} polls");
    }
}
