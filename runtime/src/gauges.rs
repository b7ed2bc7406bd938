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
    /// Outbox rows due (their message to publish, or presumed lost), up to
    /// [`OUTBOX_COUNT_CAP`]. The rows of QUEUED gifts whose message is on the queue are not
    /// due until their stale deadline and are not counted.
    pub outbox_depth: u64,
    /// The earliest `available_at` of a due row: how long the oldest has been due.
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
    /// The gauges as of `now`.
    async fn gauges(&self, now: Timestamp) -> Result<StoreGauges, StoreError>;
}
