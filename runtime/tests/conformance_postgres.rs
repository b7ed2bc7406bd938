//! PostgreSQL against the store conformance suite. Needs `TEST_DATABASE_URL` (a role that
//! may create databases); each test gets a fresh database.

mod support;

use std::sync::Arc;

use gift_runtime::conformance::store;
use gift_runtime::postgres::{PgStore, PoolSettings};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// A new, migrated database; its connection options.
async fn fresh_database(url: &str) -> PgConnectOptions {
    let admin: PgConnectOptions = url.parse().expect("TEST_DATABASE_URL is a PostgreSQL URL");
    let name = format!("gift_test_{:016x}", gift_runtime::rt::random_u64());
    let mut conn = admin.connect().await.expect("connect to TEST_DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    conn.close().await.ok();
    let options = admin.database(&name);
    PgStore::new(options.clone(), PoolSettings::default()).migrate().await.expect("migrations apply");
    options
}

async fn fresh_store(url: &str) -> Arc<PgStore> {
    Arc::new(PgStore::new(fresh_database(url).await, PoolSettings::default()))
}

/// One connection, so the call after a dropped one gets the same connection; the observer
/// reads through another.
#[tokio::test(flavor = "multi_thread")]
async fn dropped_sends_leave_no_connection_inside_a_transaction() {
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let options = fresh_database(&url).await;
    let store = Arc::new(PgStore::new(options.clone(), PoolSettings { max_connections: 1, ..PoolSettings::default() }));
    let observer = Arc::new(PgStore::new(options, PoolSettings::default()));
    store::dropped_sends_are_all_or_nothing(store, observer).await;
}

#[tokio::test]
async fn postgres_store_conforms() {
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    store::run_all(|| async { fresh_store(&url).await as Arc<dyn gift_core::ports::Store> }).await;
}

#[tokio::test]
async fn postgres_gauges_count_the_due_rows_only() {
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let store = fresh_store(&url).await;
    store::gauges_count_the_due_rows_only(&*store, &*store).await;
}

/// A store on a fresh database whose pool has two connections, so that calls queue for them.
async fn two_connection_store(url: &str) -> (Arc<PgStore>, PgConnectOptions) {
    let options = fresh_database(url).await;
    let store = Arc::new(PgStore::new(options.clone(), PoolSettings { max_connections: 2, ..PoolSettings::default() }));
    (store, options)
}

/// Rows of `table` and the transactions that wrote them (rows written by one statement share
/// its transaction id, `xmin`).
async fn rows_and_transactions(options: &PgConnectOptions, table: &str) -> (i64, i64) {
    let mut conn = options.connect().await.expect("connect");
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*), count(DISTINCT xmin::text) FROM {table}")))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// Creates waiting for one of two connections share statements: fewer transactions than
/// rows, each create still answered on its own (the conformance suite checks the answers).
#[tokio::test(flavor = "multi_thread")]
async fn creates_waiting_for_a_connection_share_statements() {
    use gift_core::ports::Store;
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let (store, options) = two_connection_store(&url).await;
    store::concurrent_creates_answer_each(store.clone()).await;
    let (rows, transactions) = rows_and_transactions(&options, "gifts").await;
    assert_eq!(rows, 1 + 40 - 5 - 4, "the stored gift, then 40 creates less 5 taken codes and 4 of 5 sharing one");
    assert!(transactions < rows / 2, "{rows} rows in {transactions} transactions");
    store.ping().await.unwrap();
}

/// Sends of different gifts waiting for one of two connections share statements: fewer
/// transactions than send requests, each send still answered on its own (the conformance
/// test checks the answers and that each gift was queued once).
#[tokio::test(flavor = "multi_thread")]
async fn sends_waiting_for_a_connection_share_statements() {
    use gift_core::ports::Store;
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let (store, options) = two_connection_store(&url).await;
    store::concurrent_sends_answer_each(store.clone()).await;
    let (rows, transactions) = rows_and_transactions(&options, "send_requests").await;
    assert_eq!(rows, 1 + 16, "the sent gift's request, then one per gift");
    assert!(transactions <= rows / 2, "{rows} send requests in {transactions} transactions");
    store.ping().await.unwrap();
}

/// A create given up while its row waits for a connection takes the row back: no later
/// statement inserts a gift whose create was abandoned.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_given_up_while_queued_is_not_inserted_later() {
    use gift_core::domain::{Amount, Gift, GiftCode, GiftId};
    use gift_core::ports::Store;
    use gift_runtime::rt;
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let options = fresh_database(&url).await;
    let store = Arc::new(PgStore::new(options.clone(), PoolSettings { max_connections: 1, ..PoolSettings::default() }));
    let gift = || {
        let id = GiftId::from_random(rt::random_u128());
        Gift::new(id, GiftCode::from_random(rt::random_u64()), Amount::try_from(100).unwrap(), None, rt::now_utc())
    };
    let (first, abandoned, later) = (gift(), gift(), gift());

    // The pool's one connection waits on a lock with the first create's INSERT.
    let mut holder = options.connect().await.unwrap();
    let mut lock = holder.begin().await.unwrap();
    sqlx::query("LOCK TABLE gifts IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    let creating = tokio::spawn({
        let (store, first) = (store.clone(), first.clone());
        async move { store.insert_gift(&first).await }
    });
    let mut watcher = options.connect().await.unwrap();
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        rt::sleep(std::time::Duration::from_millis(10)).await;
    }

    let given_up = tokio::time::timeout(std::time::Duration::from_millis(300), store.insert_gift(&abandoned)).await;
    assert!(given_up.is_err(), "the second create had no connection to finish with: {given_up:?}");
    lock.rollback().await.unwrap();
    creating.await.unwrap().unwrap();
    store.insert_gift(&later).await.unwrap();
    let stored: Vec<bool> =
        store.get_gifts(&[first.id, abandoned.id, later.id]).await.unwrap().iter().map(Option::is_some).collect();
    assert_eq!(stored, [true, false, true], "first, abandoned, later");
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let store = fresh_store(&url).await;
    store.migrate().await.expect("a second migrate is a no-op");
}

#[tokio::test]
async fn a_database_that_is_down_is_unavailable_not_a_hang() {
    use gift_core::ports::Store;
    // Nothing listens on port 1: the pool must give up within its acquire timeout.
    let options: PgConnectOptions = "postgres://nobody@127.0.0.1:1/none".parse().unwrap();
    let settings = PoolSettings { acquire_timeout: std::time::Duration::from_millis(500), ..PoolSettings::default() };
    let store = PgStore::new(options, settings);
    let started = std::time::Instant::now();
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, gift_core::StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// A fresh deployment's statements keep finding rows by key as the tables grow. Each
/// connection plans its statements, and the foreign-key checks they fire, while the tables
/// are nearly empty, and keeps those plans until the tables are next analyzed; a plan made
/// for an empty table is a sequential scan, which then reads the whole table on every call
/// (on the benchmark's empty database, 14,000 rows per create+send). Autovacuum is off here,
/// so the plans made first are the ones kept: 40 rounds warm them on tables of a few rows,
/// analyzed as autovacuum analyzes a new table, 20,000 QUEUED gifts (a backlog, their
/// messages published and their outbox rows waiting for the stale deadline) arrive from
/// another connection, and 50 more rounds run on the same connections. Planned as
/// sequential scans, those 50 rounds read a million rows or more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_made_on_empty_tables_still_find_rows_by_key_once_the_tables_grow() {
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let options = fresh_database(&url).await;
    let mut admin = options.connect().await.expect("connect");
    for table in ["gifts", "send_requests", "outbox"] {
        let off = format!("ALTER TABLE {table} SET (autovacuum_enabled = false)");
        sqlx::query(sqlx::AssertSqlSafe(off)).execute(&mut admin).await.unwrap();
    }
    let store = PgStore::new(options.clone(), PoolSettings { max_connections: 2, ..PoolSettings::default() });
    for _ in 0..10 {
        one_gift_through_every_statement(&store).await;
    }
    // What autovacuum does once a table has some 50 changed rows: statistics of tiny tables,
    // which invalidate the plans, so the next ones are made for tables of ten rows.
    sqlx::query("ANALYZE gifts, send_requests, outbox").execute(&mut admin).await.unwrap();
    for _ in 0..30 {
        one_gift_through_every_statement(&store).await;
    }
    sqlx::query(
        "WITH g AS (INSERT INTO gifts (id, code, amount, status, created_at, updated_at) \
                    SELECT gen_random_uuid(), 'GROW-' || n, 100, 'QUEUED', now(), now() \
                    FROM generate_series(1, 20000) AS n RETURNING id), \
              s AS (INSERT INTO send_requests (gift_id, request_id, created_at) \
                    SELECT id, 'grow', now() FROM g RETURNING gift_id, request_id) \
         INSERT INTO outbox (gift_id, request_id, available_at, publishes) \
         SELECT gift_id, request_id, now() + interval '900 seconds', 1 FROM s",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    for _ in 0..50 {
        one_gift_through_every_statement(&store).await;
    }
    // A backend reports its table statistics when it exits, if not before.
    drop(store);
    for _ in 0..500 {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if others == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let by_seq_scan: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(seq_tup_read), 0)::int8 FROM pg_stat_user_tables \
         WHERE relname IN ('gifts', 'send_requests', 'outbox')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        by_seq_scan < 100_000,
        "{by_seq_scan} rows read by sequential scan: a plan made on an empty table was kept"
    );
}

/// A create, a send, the relay's claim and the record of its publish, the worker's read and
/// its update (which deletes the outbox row).
async fn one_gift_through_every_statement(store: &PgStore) {
    use gift_core::domain::{Amount, Gift, GiftCode, GiftId, IdempotencyKey};
    use gift_core::ports::{Env, SendCommand, Store};
    let env = gift_runtime::rt::SystemEnv;
    let now = env.now();
    let gift = Gift::new(
        GiftId::from_random(env.random_u128()),
        GiftCode::from_random(env.random_u64()),
        Amount::try_from(100).unwrap(),
        None,
        now,
    );
    store.insert_gift(&gift).await.unwrap();
    let key = IdempotencyKey::parse("plans").unwrap();
    let cmd = SendCommand { gift_id: gift.id, key, now, outbox_available_at: now, trace: None };
    store.request_send(&cmd).await.unwrap();
    store.get_gifts(&[gift.id]).await.unwrap();
    let stale_at = now + chrono::Duration::days(1);
    for entry in store.outbox_claim(now, now, 100).await.unwrap() {
        store.outbox_published(&entry, stale_at).await.unwrap();
    }
    store.mark_sent_all(&[gift.id], now).await.unwrap();
}

/// Migration 0004 on a database in use under 0003: a QUEUED gift whose row an old API had
/// removed after its publish gets one again, due at the old sweep's deadline and counted as
/// published, so the relay's claim is its stale sweep; a QUEUED gift whose row was still
/// waiting keeps it as it was; a settled gift's leftover row goes; and the SENT update is
/// free to be HOT (the partial index gone, the table's pages filled to 90 %).
#[tokio::test]
async fn migration_0004_gives_every_queued_gift_its_outbox_row() {
    use gift_core::ports::Store;
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let admin: PgConnectOptions = url.parse().unwrap();
    let name = format!("gift_test_{:016x}", gift_runtime::rt::random_u64());
    let mut conn = admin.connect().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
    let options = admin.database(&name);
    let mut db = options.connect().await.unwrap();
    let before = [
        include_str!("../migrations/postgres/0001_init.sql"),
        include_str!("../migrations/postgres/0002_outbox_trace.sql"),
        include_str!("../migrations/postgres/0003_outbox_claim.sql"),
    ];
    for file in before {
        sqlx::raw_sql(sqlx::AssertSqlSafe(file)).execute(&mut db).await.unwrap();
    }
    // published: QUEUED at t0 with two send requests (the later one re-queued it), no row;
    // waiting: QUEUED, its row not yet published; sent: SENT, its row's removal never landed.
    sqlx::raw_sql(
        "INSERT INTO gifts (id, code, amount, status, created_at, updated_at) VALUES \
           ('00000000-0000-4000-8000-000000000001', 'MIG-1', 100, 'QUEUED', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'), \
           ('00000000-0000-4000-8000-000000000002', 'MIG-2', 100, 'QUEUED', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'), \
           ('00000000-0000-4000-8000-000000000003', 'MIG-3', 100, 'SENT', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'); \
         INSERT INTO send_requests (gift_id, request_id, created_at) VALUES \
           ('00000000-0000-4000-8000-000000000001', 'first', '2025-12-31T00:00:00Z'), \
           ('00000000-0000-4000-8000-000000000001', 'latest', '2026-01-01T00:00:00Z'), \
           ('00000000-0000-4000-8000-000000000002', 'waiting', '2026-01-01T00:00:00Z'), \
           ('00000000-0000-4000-8000-000000000003', 'sent', '2026-01-01T00:00:00Z'); \
         INSERT INTO outbox (gift_id, request_id, available_at) VALUES \
           ('00000000-0000-4000-8000-000000000002', 'waiting', '2026-01-01T00:00:05Z'), \
           ('00000000-0000-4000-8000-000000000003', 'sent', '2026-01-01T00:00:05Z');",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let migration = include_str!("../migrations/postgres/0004_outbox_until_final.sql");
    sqlx::raw_sql(sqlx::AssertSqlSafe(migration)).execute(&mut db).await.unwrap();

    let rows: Vec<(String, String, String, i32)> = sqlx::query_as(
        "SELECT gift_id::text, request_id, to_char(available_at AT TIME ZONE 'UTC', 'HH24:MI:SS'), publishes \
         FROM outbox ORDER BY gift_id",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let expected = [
        ("00000000-0000-4000-8000-000000000001", "latest", "00:15:00", 1),
        ("00000000-0000-4000-8000-000000000002", "waiting", "00:00:05", 0),
    ];
    let rows: Vec<(&str, &str, &str, i32)> =
        rows.iter().map(|(g, k, at, n)| (g.as_str(), k.as_str(), at.as_str(), *n)).collect();
    assert_eq!(rows, expected);
    let index: Option<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE indexname = 'gifts_queued_by_updated_at'")
            .fetch_optional(&mut db)
            .await
            .unwrap();
    assert_eq!(index, None, "the partial index is gone");
    let fill: Vec<String> = sqlx::query_scalar("SELECT unnest(reloptions) FROM pg_class WHERE relname = 'gifts'")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(fill, ["fillfactor=90"]);

    // The relay's claim at the deadline is the stale sweep: the row comes back marked stale.
    let store = PgStore::new(options, PoolSettings::default());
    let deadline = "2026-01-01T00:15:00Z".parse().unwrap();
    let claimed = store.outbox_claim(deadline, deadline, 10).await.unwrap();
    let stale: Vec<(String, bool)> = claimed.iter().map(|e| (e.request_id.as_str().to_owned(), e.stale)).collect();
    assert_eq!(stale, [("waiting".to_owned(), false), ("latest".to_owned(), true)]);
}
