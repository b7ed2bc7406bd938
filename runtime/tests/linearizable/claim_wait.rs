//! A claim that waits for rows another claim holds, while a send commits a new row: the one
//! interleaving behind a non-linearizable history the random histories find only now and
//! then (two overlapping claims, one seeing a row the other missed, both seeing the same
//! rows unclaimed), played out step by step on PostgreSQL.

use std::time::Duration;

use gift_core::domain::{Amount, Gift, GiftCode, GiftId, IdempotencyKey, Timestamp};
use gift_core::ports::{Env, SendCommand, SendDecision, Store};
use gift_runtime::postgres::{PgStore, PoolSettings};
use sqlx::{ConnectOptions, Row};
use uuid::Uuid;

use crate::{drop_database, fresh_database, support};

/// The test's own transaction is a second claim held open: it locks the rows of g1 and g2,
/// the store's claim starts and waits for them, a send of g0 commits, and the held claim then
/// peeks at all three rows (a claim that holds nothing) and commits. The held claim saw
/// g1 and g2 unclaimed, so it comes before the store's claim, and it saw g0, whose send
/// finished before it: the store's claim comes after that send and must return g0 too. Under
/// READ COMMITTED it returned only g1 and g2, the rows of its snapshot from before the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_waited_for_another_sees_what_was_committed_meanwhile() {
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let (name, options) = fresh_database(&url).await;
    let store = std::sync::Arc::new(PgStore::new(options.clone(), PoolSettings::default()));
    store.migrate().await.expect("migrations apply");
    let now = gift_runtime::rt::now_utc();
    let far = now + chrono::Duration::days(3650);
    let [g0, g1, g2] = [(); 3].map(|_| gift(now));
    for g in [&g0, &g1, &g2] {
        store.insert_gift(g).await.expect("insert_gift");
    }
    queue(&*store, &g1, now).await;
    queue(&*store, &g2, now).await;

    let mut held = options.connect().await.expect("connect");
    sqlx::query("BEGIN").execute(&mut held).await.unwrap();
    sqlx::query("SELECT 1 FROM outbox WHERE gift_id = ANY($1) FOR UPDATE")
        .bind(vec![g1.id.as_uuid(), g2.id.as_uuid()])
        .execute(&mut held)
        .await
        .unwrap();
    let claim = tokio::spawn({
        let store = store.clone();
        async move { store.outbox_claim(far, far + chrono::Duration::days(1), 100).await }
    });
    wait_for_a_lock_wait(&mut options.connect().await.expect("connect"), &name).await;
    queue(&*store, &g0, now).await;
    let peeked: Vec<Uuid> = sqlx::query(
        "UPDATE outbox SET claimed_until = $2 WHERE gift_id = ANY($1) AND claimed_until IS NULL RETURNING gift_id",
    )
    .bind(vec![g0.id.as_uuid(), g1.id.as_uuid(), g2.id.as_uuid()])
    .bind(far - chrono::Duration::days(1))
    .fetch_all(&mut held)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get("gift_id"))
    .collect();
    assert_eq!(peeked.len(), 3, "the held claim sees all three rows unclaimed");
    sqlx::query("COMMIT").execute(&mut held).await.unwrap();

    let claimed = claim.await.expect("the claim task").expect("the claim");
    let mut got: Vec<GiftId> = claimed.iter().map(|e| e.gift_id).collect();
    got.sort();
    let mut want = vec![g0.id, g1.id, g2.id];
    want.sort();
    drop_database(&url, &name).await;
    assert_eq!(got, want, "the claim returns g0, whose send finished before the held claim saw it");
}

fn gift(now: Timestamp) -> Gift {
    let env = gift_runtime::rt::SystemEnv;
    let id = GiftId::from_random(env.random_u128());
    Gift::new(id, GiftCode::from_random(env.random_u64()), Amount::try_from(100).unwrap(), None, now)
}

async fn queue(store: &dyn Store, gift: &Gift, now: Timestamp) {
    let cmd = SendCommand {
        gift_id: gift.id,
        key: IdempotencyKey::parse("k").unwrap(),
        now,
        outbox_available_at: now,
        trace: None,
    };
    let decision = store.request_send(&cmd).await.expect("request_send");
    assert!(matches!(decision, SendDecision::Queued(_)), "{decision:?}");
}

/// Returns once a backend of database `name` waits for a row lock: the store's claim has
/// taken its snapshot and met the held rows.
async fn wait_for_a_lock_wait(conn: &mut sqlx::PgConnection, name: &str) {
    for _ in 0..1000 {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'")
                .bind(name)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the claim never waited for the held rows");
}
