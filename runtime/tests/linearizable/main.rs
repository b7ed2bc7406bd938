//! Every store against the linearizability checker: concurrent clients, some of them
//! hanging up mid-call, and each history held to the in-memory model operation by
//! operation — PostgreSQL also while its backends are being killed. A store with a planted
//! lost update shows the checker finds one, and so does PostgreSQL running the send
//! statement of an old isolation bug. Every queue (memory, SQLite, SQS through moto) is held
//! to SQS's semantics message by message, and a queue that hides nothing is caught.
//!
//! The histories of each store (stores.rs) and each queue (queues.rs), the planted bugs
//! the checker must catch (lost_update.rs, old_exists_send.rs), and one interleaving of
//! PostgreSQL claims played step by step (claim_wait.rs); this file holds what they share:
//! the history settings and the scratch PostgreSQL databases.

#[path = "../support/mod.rs"]
mod support;

mod claim_wait;
mod lost_update;
mod old_exists_send;
mod queues;
mod stores;

use std::sync::Arc;
use std::time::Instant;

use gift_core::ports::Store;
use gift_runtime::conformance::linearizable::history::Config;
use gift_runtime::conformance::linearizable::run;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Histories per store: four clients of five calls, one call in ten given up part-way.
const HISTORIES: u64 = 500;
const CONFIG: Config = Config { clients: 4, ops_per_client: 5, cancel_one_in: 10 };

async fn linearizable(name: &str, store: Arc<dyn Store>) {
    let started = Instant::now();
    match run(store, 0..HISTORIES, CONFIG).await {
        Ok(summary) => eprintln!("{name}: {summary} in {:.1?}", started.elapsed()),
        Err(violation) => panic!("{name}: {violation}"),
    }
}

/// A database of its own, migrated by whoever uses it: its name and how to connect to it.
async fn fresh_database(url: &str) -> (String, PgConnectOptions) {
    let admin: PgConnectOptions = url.parse().expect("TEST_DATABASE_URL is a PostgreSQL URL");
    let name = format!("gift_test_{:016x}", gift_runtime::rt::random_u64());
    let mut conn = admin.connect().await.expect("connect to TEST_DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
    conn.close().await.ok();
    let options = admin.database(&name);
    (name, options)
}

async fn drop_database(url: &str, name: &str) {
    let admin: PgConnectOptions = url.parse().expect("TEST_DATABASE_URL is a PostgreSQL URL");
    let mut conn = admin.connect().await.expect("connect to TEST_DATABASE_URL");
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await.unwrap();
    conn.close().await.ok();
}
