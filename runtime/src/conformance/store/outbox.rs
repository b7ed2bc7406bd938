//! The outbox: its rows follow the send, keep the trace, are claimed exclusively, move to
//! their stale deadline once published, and go when the gift settles.

use std::sync::Arc;

use futures::future::join_all;
use gift_core::domain::{GiftId, TraceParent};
use gift_core::ports::{OutboxEntry, SendCommand, SendDecision, Store};

use crate::rt;

use super::fixtures::*;

/// The outbox row is written with the send and becomes due at its time. Once published it
/// is due again at the stale deadline, marked stale, and it goes when the gift is SENT.
pub async fn outbox_follows_the_send(store: &dyn Store) {
    let now = rt::now_utc();
    let gift = created(store, now).await;
    store.request_send(&cmd(&gift, "o", now)).await.unwrap();
    let entry = OutboxEntry { gift_id: gift.id, request_id: key("o"), trace: None, stale: false };
    assert_eq!(due_for(store, &gift, now).await, vec![], "due before its time");
    let due_at = now + chrono::Duration::seconds(5);
    assert_eq!(due_for(store, &gift, due_at).await, vec![entry.clone()]);
    // A replay writes nothing new.
    store.request_send(&cmd(&gift, "o", now)).await.unwrap();
    assert_eq!(due_for(store, &gift, due_at).await, vec![entry.clone()]);

    let stale_at = now + chrono::Duration::seconds(900);
    publish_and_settle(store, &entry, stale_at).await;
    assert_eq!(due_for(store, &gift, due_at).await, vec![], "due again before the stale deadline");
    let stale = OutboxEntry { stale: true, ..entry.clone() };
    assert_eq!(due_for(store, &gift, stale_at).await, vec![stale], "a published row is kept until the gift settles");

    assert!(store.mark_sent(gift.id, now).await.unwrap());
    let any_time = now + chrono::Duration::days(3650);
    assert_eq!(due_for(store, &gift, any_time).await, vec![], "the SENT update left the row");
    // Recording a publish of a row that is gone is not an error, and brings nothing back.
    store.outbox_published(&entry, stale_at).await.unwrap();
    rt::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(due_for(store, &gift, any_time).await, vec![], "a settled gift's row came back");
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
        let expected = OutboxEntry { gift_id: g.id, request_id: key("t"), trace: trace(i), stale: false };
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

/// Publishes recorded together (a busy API) all take effect, each row at its own deadline.
pub async fn parallel_outbox_publishes_all_land(store: Arc<dyn Store>) {
    let now = rt::now_utc();
    let mut gifts = Vec::new();
    for _ in 0..40 {
        let gift = created(&*store, now).await;
        store.request_send(&cmd(&gift, "p", now)).await.unwrap();
        gifts.push(gift);
    }
    let stale_at = |i: usize| now + chrono::Duration::seconds(600 + i as i64);
    join_all(gifts.iter().enumerate().map(|(i, g)| {
        let store = store.clone();
        let entry = OutboxEntry { gift_id: g.id, request_id: key("p"), trace: None, stale: false };
        async move { publish_and_settle(&*store, &entry, stale_at(i)).await }
    }))
    .await;
    for (i, gift) in gifts.iter().enumerate() {
        let entry = OutboxEntry { gift_id: gift.id, request_id: key("p"), trace: None, stale: true };
        assert_eq!(due_for(&*store, gift, stale_at(i)).await, vec![entry], "outbox row of {:?}", gift.id);
    }
}

/// Each of the worker's settling writes removes the gift's row with the move, and only
/// with it: a write that finds the gift already settled leaves other gifts' rows alone, and
/// a QUEUED gift keeps its row.
pub async fn settling_removes_the_outbox_row(store: &dyn Store) {
    let now = rt::now_utc();
    let any_time = now + chrono::Duration::days(3650);
    let mut queued = Vec::new();
    for k in ["s1", "s2", "s3", "f", "q"] {
        let gift = created(store, now).await;
        store.request_send(&cmd(&gift, k, now)).await.unwrap();
        queued.push(gift);
    }
    let [a, b, c, f, q] = &queued[..] else { unreachable!() };
    assert!(store.mark_sent(a.id, now).await.unwrap());
    assert_eq!(store.mark_sent_all(&[b.id, c.id, a.id], now).await.unwrap(), [true, true, false]);
    assert!(store.mark_failed(f.id, "gave up", now).await.unwrap());
    for settled in [a, b, c, f] {
        assert_eq!(due_for(store, settled, any_time).await, vec![], "the row of a settled gift is left");
    }
    assert!(!store.mark_failed(a.id, "late", now).await.unwrap());
    let row = OutboxEntry { gift_id: q.id, request_id: key("q"), trace: None, stale: false };
    assert_eq!(due_for(store, q, any_time).await, vec![row], "a QUEUED gift lost its row");
}

/// The outbox gauges count the rows due, not the rows of QUEUED gifts whose message is on
/// the queue, and age the oldest due row. `gauged` is `store`, empty before the test.
pub async fn gauges_count_the_due_rows_only(store: &dyn Store, gauged: &dyn crate::gauges::Gauged) {
    let now = rt::now_utc();
    let (grace, stale) = (now + chrono::Duration::seconds(5), now + chrono::Duration::seconds(900));
    let unpublished = created(store, now).await;
    store.request_send(&cmd(&unpublished, "u", now)).await.unwrap();
    let published = created(store, now).await;
    store.request_send(&cmd(&published, "p", now)).await.unwrap();
    let entry = OutboxEntry { gift_id: published.id, request_id: key("p"), trace: None, stale: false };
    publish_and_settle(store, &entry, stale).await;
    let at = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
    for (when, depth, oldest) in [(now, 0, None), (grace, 1, Some(at(grace))), (stale, 2, Some(at(grace)))] {
        let gauges = gauged.gauges(when).await.unwrap();
        let seen = (gauges.outbox_depth, gauges.outbox_oldest_due.map(at));
        assert_eq!(seen, (depth, oldest), "{}s after the sends", (when - now).num_seconds());
    }
}
