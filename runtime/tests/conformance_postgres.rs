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

/// Creates waiting for one of two connections share statements: fewer transactions than
/// rows (rows written by one statement share its transaction id, `xmin`), each create still
/// answered on its own (the conformance suite checks the answers).
#[tokio::test(flavor = "multi_thread")]
async fn creates_waiting_for_a_connection_share_statements() {
    use gift_core::ports::Store;
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let options = fresh_database(&url).await;
    let store = Arc::new(PgStore::new(options.clone(), PoolSettings { max_connections: 2, ..PoolSettings::default() }));
    store::concurrent_creates_answer_each(store.clone()).await;
    let mut conn = options.connect().await.expect("connect");
    let (rows, transactions): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT xmin::text) FROM gifts").fetch_one(&mut conn).await.unwrap();
    assert_eq!(rows, 1 + 40 - 5 - 4, "the stored gift, then 40 creates less 5 taken codes and 4 of 5 sharing one");
    assert!(transactions < rows / 2, "{rows} rows in {transactions} transactions");
    store.ping().await.unwrap();
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
