//! The embedded SQLite store and queue against the conformance suites, plus persistence.

use std::sync::Arc;
use std::time::Duration;

use gift_runtime::conformance::{queue, store};
use gift_runtime::memory::QueueSettings;

fn temp_db() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gift-sqlite-test-{}-{}",
        std::process::id(),
        gift_runtime::rt::random_u64()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("data.sqlite")
}

const SETTINGS: QueueSettings = QueueSettings { visibility_timeout: Duration::from_secs(1), max_receives: 5 };

#[tokio::test]
async fn sqlite_store_conforms() {
    store::run_all(|| async {
        let (s, _) = gift_runtime::sqlite::open(&temp_db(), SETTINGS).await.unwrap();
        s as Arc<dyn gift_core::ports::Store>
    })
    .await;
}

#[tokio::test]
async fn sqlite_gauges_count_the_due_rows_only() {
    let (s, _) = gift_runtime::sqlite::open(&temp_db(), SETTINGS).await.unwrap();
    store::gauges_count_the_due_rows_only(&*s, &*s).await;
}

#[tokio::test]
async fn sqlite_queue_conforms() {
    queue::run_all(|| async {
        let (_, q) = gift_runtime::sqlite::open(&temp_db(), SETTINGS).await.unwrap();
        let dead = q.clone();
        queue::QueueUnderTest {
            queue: q,
            dead_letters: Box::new(move || {
                let dead = dead.clone();
                Box::pin(async move { dead.dead_letters().await.unwrap() })
            }),
        }
    })
    .await;
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    use gift_core::domain::{Amount, Gift, GiftCode, GiftId};
    use gift_core::ports::{Queue, Store};
    let path = temp_db();
    let gift = Gift::new(
        GiftId::from_random(42),
        GiftCode::from_random(42),
        Amount::try_from(5).unwrap(),
        None,
        gift_runtime::rt::now_utc(),
    );
    let message = queue::unique_message("persisted");
    {
        let (s, q) = gift_runtime::sqlite::open(&path, SETTINGS).await.unwrap();
        s.insert_gift(&gift).await.unwrap();
        q.publish(&message, None).await.unwrap();
    }
    let (s, q) = gift_runtime::sqlite::open(&path, SETTINGS).await.unwrap();
    assert_eq!(s.get_gift(gift.id).await.unwrap(), Some(gift));
    let got = q.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, message.to_body());
}

/// Migration 0004 on a data file in use under 0003 (gift-local's upgrade): a QUEUED gift
/// without an outbox row gets one for its latest send request, due 900 s after its QUEUED
/// time and counted as published; a waiting row stays as it was; a settled gift's row goes.
#[tokio::test]
async fn sqlite_migration_0004_gives_every_queued_gift_its_outbox_row() {
    use sqlx::{ConnectOptions, Connection};
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(temp_db()).create_if_missing(true);
    let mut db = options.connect().await.unwrap();
    let before = [
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/sqlite/0002_outbox_trace.sql"),
        include_str!("../migrations/sqlite/0003_outbox_claim.sql"),
    ];
    for file in before {
        sqlx::raw_sql(sqlx::AssertSqlSafe(file)).execute(&mut db).await.unwrap();
    }
    // Times in microseconds: the gifts became QUEUED at 1,000,000,000.
    sqlx::raw_sql(
        "INSERT INTO gifts (id, code, amount, status, created_at, updated_at) VALUES \
           ('g-published', 'MIG-1', 100, 'QUEUED', 1000000000, 1000000000), \
           ('g-waiting', 'MIG-2', 100, 'QUEUED', 1000000000, 1000000000), \
           ('g-sent', 'MIG-3', 100, 'SENT', 1000000000, 1000000000); \
         INSERT INTO send_requests (gift_id, request_id, created_at) VALUES \
           ('g-published', 'first', 900000000), ('g-published', 'latest', 1000000000), \
           ('g-waiting', 'waiting', 1000000000), ('g-sent', 'sent', 1000000000); \
         INSERT INTO outbox (gift_id, request_id, available_at) VALUES \
           ('g-waiting', 'waiting', 1005000000), ('g-sent', 'sent', 1005000000);",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let migration = include_str!("../migrations/sqlite/0004_outbox_until_final.sql");
    sqlx::raw_sql(sqlx::AssertSqlSafe(migration)).execute(&mut db).await.unwrap();
    let rows: Vec<(String, String, i64, i64)> =
        sqlx::query_as("SELECT gift_id, request_id, available_at, publishes FROM outbox ORDER BY gift_id")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let expected = [
        ("g-published".to_owned(), "latest".to_owned(), 1_900_000_000, 1),
        ("g-waiting".to_owned(), "waiting".to_owned(), 1_005_000_000, 0),
    ];
    assert_eq!(rows, expected);
    let index: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'gifts_queued_by_updated_at'")
            .fetch_optional(&mut db)
            .await
            .unwrap();
    assert_eq!(index, None, "the partial index is gone");
    db.close().await.unwrap();
}
