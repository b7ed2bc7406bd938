//! The outbox backlog and the pool, for the metrics sampler.

use async_trait::async_trait;
use gift_core::domain::Timestamp;
use gift_core::StoreError;
use sqlx::Row;

use super::PgStore;
use crate::gauges::{Gauged, StoreGauges, OUTBOX_COUNT_CAP};
use crate::sql::store_error;

#[async_trait]
impl Gauged for PgStore {
    async fn gauges(&self, now: Timestamp) -> Result<StoreGauges, StoreError> {
        let pool = self.pool.status();
        let row = self
            .pool
            .run(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE available_at <= $2 LIMIT $1) capped) AS depth, \
                         (SELECT min(available_at) FROM outbox) AS oldest",
                    )
                    .bind(OUTBOX_COUNT_CAP)
                    .bind(now)
                    .fetch_one(c)
                    .await
                })
            })
            .await
            .map_err(store_error)?;
        let depth: i64 = row.try_get("depth").map_err(store_error)?;
        let oldest: Option<Timestamp> = row.try_get("oldest").map_err(store_error)?;
        let oldest_due = oldest.filter(|at| *at <= now);
        Ok(StoreGauges { outbox_depth: depth.unsigned_abs(), outbox_oldest_due: oldest_due, pool })
    }
}
