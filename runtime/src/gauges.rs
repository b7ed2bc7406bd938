//! What a store reports about itself for the metrics sampler: the outbox backlog and the
//! connection pool. Not a `Store` port method: nothing decides on these, and only the real
//! adapters (PostgreSQL, SQLite) have a pool and an outbox table to measure.

use async_trait::async_trait;
use gift_core::domain::Timestamp;
use gift_core::StoreError;

/// Outbox rows counted at most: the count stays one cheap index scan however long a backlog
/// grows, and any depth past this is an alarm already.
pub const OUTBOX_COUNT_CAP: i64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreGauges {
    /// Outbox rows, up to [`OUTBOX_COUNT_CAP`].
    pub outbox_depth: u64,
    /// The earliest `available_at` in the outbox: how long the oldest row has been due.
    pub outbox_oldest_due: Option<Timestamp>,
    pub pool: PoolGauges,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolGauges {
    /// Connections open.
    pub size: usize,
    /// Connections lent out.
    pub in_use: usize,
    /// Callers waiting for a connection (0 where the pool does not say).
    pub waiting: usize,
}

#[async_trait]
pub trait Gauged: Send + Sync + 'static {
    async fn gauges(&self) -> Result<StoreGauges, StoreError>;
}
