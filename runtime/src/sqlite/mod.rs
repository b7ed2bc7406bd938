//! The embedded adapters of the local all-in-one service: a store and an SQS-like queue in
//! one SQLite file, so a laptop needs neither PostgreSQL nor AWS and data survives restarts.
//!
//! One connection serialises every statement: the file belongs to one process, and
//! serial execution gives the send transaction the isolation that `FOR UPDATE` gives on
//! PostgreSQL.

mod gauges;
mod queue;
mod store;

pub use queue::SqliteQueue;
pub use store::SqliteStore;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use gift_core::domain::Timestamp;
use gift_core::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::memory::QueueSettings;
use crate::sql::store_error;

/// Opens (creating if needed) the data file and applies the migrations.
pub async fn open(path: &Path, queue: QueueSettings) -> Result<(Arc<SqliteStore>, Arc<SqliteQueue>), StoreError> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(store_error)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: an acknowledged send survives `kill -9` and power loss alike.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(store_error)?;
    crate::sql::migrator(crate::sql::SQLITE_MIGRATIONS)
        .run(&pool)
        .await
        .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
    Ok((Arc::new(SqliteStore::new(pool.clone())), Arc::new(SqliteQueue::new(pool, queue))))
}

fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_timestamp_micros(us).ok_or_else(|| StoreError::Other(format!("bad timestamp {us}")))
}

type Pool = SqlitePool;
