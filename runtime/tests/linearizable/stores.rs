//! Every store held to the model: memory, SQLite, PostgreSQL, and PostgreSQL while its backends are killed.

use std::sync::Arc;
use std::time::Duration;

use gift_runtime::conformance::linearizable::run;
use gift_runtime::memory::{MemoryStore, QueueSettings};
use gift_runtime::postgres::{PgStore, PoolSettings};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use crate::{drop_database, fresh_database, linearizable, support, CONFIG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_is_linearizable() {
    linearizable("memory", Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_is_linearizable() {
    let dir = std::env::temp_dir().join(format!(
        "gift-linearizable-{}-{}",
        std::process::id(),
        gift_runtime::rt::random_u64()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let settings = QueueSettings { visibility_timeout: Duration::from_secs(1), max_receives: 5 };
    let (store, _) = gift_runtime::sqlite::open(&dir.join("data.sqlite"), settings).await.unwrap();
    linearizable("sqlite", store).await;
    std::fs::remove_dir_all(&dir).ok();
}

/// Two connections for four clients: calls wait for one, so sends and creates share
/// statements, and a call given up while its item waits takes it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_is_linearizable() {
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let (_, options) = fresh_database(&url).await;
    let store = PgStore::new(options, PoolSettings { max_connections: 2, ..PoolSettings::default() });
    store.migrate().await.expect("migrations apply");
    linearizable("postgres", Arc::new(store)).await;
}

/// Histories while the database fights back: one connection for four clients, a 25 ms
/// statement timeout, and every backend of the database killed every 5–40 ms, so calls fail
/// mid-statement, mid-commit and while a shared statement carries others' items. A failed
/// call may or may not have happened; every answer that did arrive must still fit the model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_is_linearizable_while_backends_die() {
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let (name, options) = fresh_database(&url).await;
    PgStore::new(options.clone(), PoolSettings::default()).migrate().await.expect("migrations apply");
    let timed = options.options([("statement_timeout", "25")]);
    let store = PgStore::new(timed, PoolSettings { max_connections: 1, ..PoolSettings::default() });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = tokio::spawn(kill_backends(url.clone(), name.clone(), stop.clone()));
    let outcome = run(Arc::new(store), 0..KILLED_HISTORIES, CONFIG).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let kills = killer.await.expect("the killer task");
    drop_database(&url, &name).await;
    let summary = outcome.unwrap_or_else(|violation| panic!("postgres with backends dying: {violation}"));
    eprintln!("postgres with backends dying: {summary}, {kills} backends killed");
    assert!(kills > 0 && summary.indeterminate > 0, "the faults must bite: {summary}, {kills} kills");
}

const KILLED_HISTORIES: u64 = 200;

/// Kills every backend of database `name` every 5–40 ms until `stop`; returns how many died.
async fn kill_backends(url: String, name: String, stop: Arc<std::sync::atomic::AtomicBool>) -> u64 {
    let admin: PgConnectOptions = url.parse().expect("TEST_DATABASE_URL is a PostgreSQL URL");
    let mut conn = admin.connect().await.expect("connect to TEST_DATABASE_URL");
    let mut killed = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let pause = 5 + gift_runtime::rt::random_u64() % 36;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let sql = "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                   WHERE datname = $1 AND pid <> pg_backend_pid()";
        let row = sqlx::query(sql).bind(&name).fetch_one(&mut conn).await.expect("pg_terminate_backend");
        killed += row.get::<i64, _>(0) as u64;
    }
    conn.close().await.ok();
    killed
}
