//! What every [`Store`] must do.

use std::sync::Arc;

use futures::future::join_all;
use gift_core::domain::{
    Amount, Gift, GiftCode, GiftId, IdempotencyKey, Message, SendAccepted, Status, Timestamp, TraceParent,
};
use gift_core::ports::{OutboxEntry, SendCommand, SendDecision, Store};
use gift_core::StoreError;

use crate::rt;

fn new_gift(now: Timestamp) -> Gift {
    Gift::new(
        GiftId::from_random(u128::from(rt::random_u64()) << 64 | u128::from(rt::random_u64())),
        GiftCode::from_random(rt::random_u64()),
        Amount::try_from(1234).unwrap(),
        Some(Message::parse("happy birthday — 🎂".into()).unwrap()),
        now,
    )
}

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).unwrap()
}

fn cmd(gift: &Gift, k: &str, now: Timestamp) -> SendCommand {
    SendCommand {
        gift_id: gift.id,
        key: key(k),
        now,
        outbox_available_at: now + chrono::Duration::seconds(5),
        trace: None,
    }
}

fn accepted(gift: &Gift, k: &str) -> SendAccepted {
    SendAccepted { gift_id: gift.id, status: Status::Queued, request_id: key(k) }
}

async fn created(store: &dyn Store, now: Timestamp) -> Gift {
    let gift = new_gift(now);
    store.insert_gift(&gift).await.expect("insert_gift");
    gift
}

async fn status_of(store: &dyn Store, gift: &Gift) -> Status {
    store.get_gift(gift.id).await.unwrap().expect("gift exists").status
}

/// The gift's rows due at `now`, read by a claim that holds nothing.
async fn due_for(store: &dyn Store, gift: &Gift, now: Timestamp) -> Vec<OutboxEntry> {
    let due = store.outbox_claim(now, now, 10_000).await.unwrap();
    due.into_iter().filter(|e| e.gift_id == gift.id).collect()
}

/// Removes `entry` and waits for its row to be gone: a store may finish a removal after
/// `outbox_remove` returns, but within moments, not never.
async fn remove_and_settle(store: &dyn Store, entry: &OutboxEntry) {
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
        let mine: Vec<(&str, &SendDecision)> =
            sends.iter().zip(&decisions).filter(|((g, _), _)| g.id == gift.id).map(|((_, k), d)| (*k, d)).collect();
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
        assert_eq!(status_of(&*store, gift).await, Status::Queued);
        let outbox = due_for(&*store, gift, due_at).await;
        assert_eq!(
            outbox,
            vec![OutboxEntry { gift_id: gift.id, request_id: key(winner), trace: None }],
            "one outbox row"
        );
    }
    assert_eq!(store.get_gift(unknown.id).await.unwrap(), None);
}

/// The outbox row is written with the send, becomes due at its time, and goes on removal.
pub async fn outbox_follows_the_send(store: &dyn Store) {
    let now = rt::now_utc();
    let gift = created(store, now).await;
    store.request_send(&cmd(&gift, "o", now)).await.unwrap();
    let entry = OutboxEntry { gift_id: gift.id, request_id: key("o"), trace: None };
    assert_eq!(due_for(store, &gift, now).await, vec![], "due before its time");
    let due_at = now + chrono::Duration::seconds(5);
    assert_eq!(due_for(store, &gift, due_at).await, vec![entry.clone()]);
    // A replay writes nothing new.
    store.request_send(&cmd(&gift, "o", now)).await.unwrap();
    assert_eq!(due_for(store, &gift, due_at).await, vec![entry.clone()]);
    remove_and_settle(store, &entry).await;
    assert_eq!(due_for(store, &gift, due_at).await, vec![]);
    // Removing a row that is gone is not an error.
    remove_and_settle(store, &entry).await;
}

/// The outbox row keeps the accepting request's trace, for sends that arrive together (which
/// PostgreSQL runs as one statement) as for one alone.
pub async fn outbox_keeps_each_sends_trace(store: Arc<dyn Store>) {
    let now = rt::now_utc();
    let mut gifts = Vec::new();
    for _ in 0..6 {
        gifts.push(created(&*store, now).await);
    }
    let trace = |i: usize| TraceParent::new(0xfeed_0000 + i as u128, 0xbeef + i as u64, 1);
    let sends = gifts.iter().enumerate().map(|(i, g)| {
        let (store, cmd) = (store.clone(), SendCommand { trace: trace(i), ..cmd(g, "t", now) });
        async move { store.request_send(&cmd).await }
    });
    for decision in join_all(sends).await {
        assert!(matches!(decision, Ok(SendDecision::Queued(_))), "{decision:?}");
    }
    let due_at = now + chrono::Duration::seconds(5);
    for (i, g) in gifts.iter().enumerate() {
        let expected = OutboxEntry { gift_id: g.id, request_id: key("t"), trace: trace(i) };
        assert_eq!(due_for(&*store, g, due_at).await, vec![expected]);
    }
}

/// Claims are exclusive while they last: relays claiming at once share the due rows without
/// overlap, a row claimed is not due again until its claim lapses, and then it is.
pub async fn claims_share_the_due_rows_until_they_lapse(store: Arc<dyn Store>) {
    let now = rt::now_utc();
    let mut gifts = Vec::new();
    for _ in 0..12 {
        let gift = created(&*store, now).await;
        store.request_send(&cmd(&gift, "c", now)).await.unwrap();
        gifts.push(gift);
    }
    let ours = |rows: Vec<OutboxEntry>| -> Vec<GiftId> {
        rows.into_iter().map(|e| e.gift_id).filter(|g| gifts.iter().any(|x| x.id == *g)).collect()
    };
    let (at, until) = (now + chrono::Duration::seconds(10), now + chrono::Duration::seconds(100));
    let claims = (0..3).map(|_| {
        let store = store.clone();
        async move { store.outbox_claim(at, until, 5).await.unwrap() }
    });
    let claimed: Vec<Vec<GiftId>> = join_all(claims).await.into_iter().map(ours).collect();
    let mut all: Vec<GiftId> = claimed.concat();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a row claimed twice: {claimed:?}");
    assert_eq!(all.len(), 12, "three claims of 5 take all 12 rows: {claimed:?}");
    assert!(ours(store.outbox_claim(at, until, 100).await.unwrap()).is_empty(), "claimed rows are not due");
    let lapsed = now + chrono::Duration::seconds(101);
    assert_eq!(ours(store.outbox_claim(lapsed, lapsed, 100).await.unwrap()).len(), 12, "due again once lapsed");
}

/// Removals that arrive together (a busy API) all take effect.
pub async fn parallel_outbox_removals_all_land(store: Arc<dyn Store>) {
    let now = rt::now_utc();
    let due_at = now + chrono::Duration::seconds(3600);
    let mut gifts = Vec::new();
    for _ in 0..40 {
        let gift = created(&*store, now).await;
        store.request_send(&cmd(&gift, "p", now)).await.unwrap();
        gifts.push(gift);
    }
    join_all(gifts.iter().map(|g| {
        let store = store.clone();
        let entry = OutboxEntry { gift_id: g.id, request_id: key("p"), trace: None };
        async move { remove_and_settle(&*store, &entry).await }
    }))
    .await;
    for gift in &gifts {
        assert_eq!(due_for(&*store, gift, due_at).await, vec![], "outbox row of {:?} left", gift.id);
    }
}

/// Stale QUEUED gifts without an outbox row are re-armed once; fresh ones and finished
/// ones are left alone.
pub async fn rearm_finds_only_stale_queued(store: &dyn Store) {
    // Far in the past, so gifts of other tests sharing the store are never stale here.
    let t0 = Timestamp::from_timestamp(946_684_800, 0).unwrap()
        + chrono::Duration::seconds((rt::random_u64() % 1_000_000) as i64);
    let stale = created(store, t0).await;
    store.request_send(&cmd(&stale, "st", t0)).await.unwrap();
    remove_and_settle(store, &OutboxEntry { gift_id: stale.id, request_id: key("st"), trace: None }).await;
    let done = created(store, t0).await;
    store.request_send(&cmd(&done, "dn", t0)).await.unwrap();
    remove_and_settle(store, &OutboxEntry { gift_id: done.id, request_id: key("dn"), trace: None }).await;
    store.mark_sent(done.id, t0).await.unwrap();
    let fresh_at = t0 + chrono::Duration::seconds(100);
    let fresh = created(store, fresh_at).await;
    store.request_send(&cmd(&fresh, "fr", fresh_at)).await.unwrap();
    remove_and_settle(store, &OutboxEntry { gift_id: fresh.id, request_id: key("fr"), trace: None }).await;

    let now = t0 + chrono::Duration::seconds(200);
    let stale_before = t0 + chrono::Duration::seconds(50);
    assert_eq!(store.rearm_stale(stale_before, now, 100).await.unwrap(), 1);
    assert_eq!(
        due_for(store, &stale, now).await,
        vec![OutboxEntry { gift_id: stale.id, request_id: key("st"), trace: None }]
    );
    assert_eq!(store.get_gift(stale.id).await.unwrap().unwrap().updated_at, now);
    assert_eq!(due_for(store, &fresh, now).await, vec![]);
    assert_eq!(store.rearm_stale(stale_before, now, 100).await.unwrap(), 0, "re-armed twice");
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

pub async fn ping_answers(store: &dyn Store) {
    store.ping().await.unwrap();
}

/// Runs every store test; `fresh` builds an empty store for each.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    insert_then_get_round_trips(&*fresh().await).await;
    duplicate_code_is_code_taken(&*fresh().await).await;
    concurrent_creates_answer_each(fresh().await).await;
    send_queues_replays_and_conflicts(&*fresh().await).await;
    terminal_gifts_replay_and_conflict(&*fresh().await).await;
    conditional_updates_move_only_queued(&*fresh().await).await;
    batch_reads_and_updates_answer_in_order(&*fresh().await).await;
    racing_batch_updates_win_each_gift_once(fresh().await).await;
    concurrent_sends_queue_once(fresh().await).await;
    concurrent_sends_answer_each(fresh().await).await;
    outbox_follows_the_send(&*fresh().await).await;
    outbox_keeps_each_sends_trace(fresh().await).await;
    claims_share_the_due_rows_until_they_lapse(fresh().await).await;
    parallel_outbox_removals_all_land(fresh().await).await;
    rearm_finds_only_stale_queued(&*fresh().await).await;
    let store = fresh().await;
    dropped_sends_are_all_or_nothing(store.clone(), store).await;
    ping_answers(&*fresh().await).await;
}
