//! Reads: one gift with its send requests and outbox rows, the QUEUED and FAILED lists, and
//! the migrations a database still lacks.

use gift_core::domain::{Gift, GiftId, IdempotencyKey, Timestamp};
use gift_core::StoreError;
use sqlx::postgres::PgRow;
use sqlx::{Connection, Row};

use super::PgAdmin;
use crate::postgres::{gift_from_row, select_gifts_where, GIFT_BY_ID};
use crate::sql::store_error;

/// An accepted send of a gift (`send_requests`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequestRow {
    pub request_id: IdempotencyKey,
    pub created_at: Timestamp,
}

/// The outbox row of a QUEUED gift's send: due for the relay at `available_at` (the grace
/// period's end before its first publish, the stale deadline after one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub request_id: IdempotencyKey,
    pub available_at: Timestamp,
    /// How many times its message was published.
    pub publishes: i32,
}

/// A gift and what surrounds it, read in one snapshot so the three agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftRecord {
    pub gift: Gift,
    /// Oldest first.
    pub send_requests: Vec<SendRequestRow>,
    pub outbox: Vec<OutboxRow>,
}

/// Every QUEUED gift has an outbox row, so the outbox (the size of the backlog) leads the
/// way to them; `gifts` has no index on status.
const QUEUED_UNTOUCHED: &str = select_gifts_where!(
    "id IN (SELECT gift_id FROM outbox) AND status = 'QUEUED' AND updated_at < $1 ORDER BY updated_at, id LIMIT $2"
);
const FAILED_NEWEST_FIRST: &str = select_gifts_where!("status = 'FAILED' ORDER BY updated_at DESC, id LIMIT $1");

fn key_of(row: &PgRow) -> Result<IdempotencyKey, sqlx::Error> {
    let key: String = row.try_get("request_id")?;
    IdempotencyKey::parse(&key).map_err(|e| sqlx::Error::Decode(e.0.into()))
}

impl PgAdmin<'_> {
    /// The gift `id` with its send requests and outbox rows; `None` when there is no such gift.
    pub async fn gift_record(&self, id: GiftId) -> Result<Option<GiftRecord>, StoreError> {
        let rows = self
            .pool
            .run(move |c| {
                Box::pin(async move {
                    let mut tx = c.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
                    let Some(gift) = sqlx::query(GIFT_BY_ID).bind(id.as_uuid()).fetch_optional(&mut *tx).await? else {
                        return Ok(None);
                    };
                    let sends = sqlx::query(
                        "SELECT request_id, created_at FROM send_requests WHERE gift_id = $1 \
                         ORDER BY created_at, request_id",
                    )
                    .bind(id.as_uuid())
                    .fetch_all(&mut *tx)
                    .await?;
                    let outbox = sqlx::query(
                        "SELECT request_id, available_at, publishes FROM outbox WHERE gift_id = $1 ORDER BY available_at",
                    )
                    .bind(id.as_uuid())
                    .fetch_all(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(Some((gift, sends, outbox)))
                })
            })
            .await
            .map_err(store_error)?;
        let Some((gift, sends, outbox)) = rows else { return Ok(None) };
        let send_requests = sends
            .iter()
            .map(|r| Ok(SendRequestRow { request_id: key_of(r)?, created_at: r.try_get("created_at")? }))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(store_error)?;
        let outbox = outbox
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    request_id: key_of(r)?,
                    available_at: r.try_get("available_at")?,
                    publishes: r.try_get("publishes")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(store_error)?;
        Ok(Some(GiftRecord { gift: gift_from_row(&gift)?, send_requests, outbox }))
    }

    /// QUEUED gifts last touched before `before`, the longest untouched first.
    pub async fn queued_untouched_since(&self, before: Timestamp, limit: u32) -> Result<Vec<Gift>, StoreError> {
        let rows = self
            .pool
            .run(move |c| {
                Box::pin(
                    async move { sqlx::query(QUEUED_UNTOUCHED).bind(before).bind(i64::from(limit)).fetch_all(c).await },
                )
            })
            .await
            .map_err(store_error)?;
        rows.iter().map(gift_from_row).collect()
    }

    /// FAILED gifts, the most recently failed first.
    pub async fn failed(&self, limit: u32) -> Result<Vec<Gift>, StoreError> {
        let rows = self
            .pool
            .run(move |c| {
                Box::pin(async move { sqlx::query(FAILED_NEWEST_FIRST).bind(i64::from(limit)).fetch_all(c).await })
            })
            .await
            .map_err(store_error)?;
        rows.iter().map(gift_from_row).collect()
    }

    /// The embedded migrations this database has not applied, as (version, description).
    pub async fn pending_migrations(&self) -> Result<Vec<(i64, &'static str)>, StoreError> {
        let applied: Vec<i64> = self
            .pool
            .run(|c| {
                Box::pin(async move {
                    let ledger: Option<String> =
                        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text").fetch_one(&mut *c).await?;
                    if ledger.is_none() {
                        return Ok(Vec::new());
                    }
                    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(c).await
                })
            })
            .await
            .map_err(store_error)?;
        Ok(crate::sql::POSTGRES_MIGRATIONS
            .iter()
            .filter(|(version, _, _)| !applied.contains(version))
            .map(|&(version, description, _)| (version, description))
            .collect())
    }
}
