//! The outbox backlog and the pool, for the metrics sampler.

use async_trait::async_trait;
use gift_core::domain::Timestamp;
use gift_core::StoreError;
use sqlx::Row;

use super::{from_micros, micros, SqliteStore};
use crate::gauges::{Gauged, PoolGauges, StoreGauges, OUTBOX_COUNT_CAP};
use crate::sql::store_error;

#[async_trait]
impl Gauged for SqliteStore {
    async fn gauges(&self, now: Timestamp) -> Result<StoreGauges, StoreError> {
        let pool = self.pool();
        let size = pool.size() as usize;
        let in_use = size.saturating_sub(pool.num_idle());
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE available_at <= ? LIMIT ?)) AS depth, \
             (SELECT min(available_at) FROM outbox) AS oldest",
        )
        .bind(micros(now))
        .bind(OUTBOX_COUNT_CAP)
        .fetch_one(pool)
        .await
        .map_err(store_error)?;
        let depth: i64 = row.try_get("depth").map_err(store_error)?;
        let oldest: Option<i64> = row.try_get("oldest").map_err(store_error)?;
        Ok(StoreGauges {
            outbox_depth: depth.unsigned_abs(),
            outbox_oldest_due: oldest.map(from_micros).transpose()?.filter(|at| *at <= now),
            pool: PoolGauges { size, in_use, waiting: 0 },
        })
    }
}
