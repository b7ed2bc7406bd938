//! The outbox: its rows follow the send, keep the trace, are claimed exclusively, removed, re-armed.

use std::sync::Arc;

use futures::future::join_all;
use gift_core::domain::{GiftId, Timestamp, TraceParent};
use gift_core::ports::{OutboxEntry, SendCommand, SendDecision, Store};

use crate::rt;

use super::fixtures::*;

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
