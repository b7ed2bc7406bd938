use async_trait::async_trait;
use gift_core::domain::{
    Amount, Gift, GiftCode, GiftId, IdempotencyKey, Message, SendAccepted, Status, Timestamp, TraceParent,
};
use gift_core::ports::{OutboxEntry, SendCommand, SendDecision, Store};
use gift_core::StoreError;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{from_micros, micros, Pool};
use crate::sql::{is_code_violation, store_error};

pub struct SqliteStore {
    pool: Pool,
}

impl SqliteStore {
    pub(super) fn new(pool: Pool) -> Self {
        Self { pool }
    }

    pub(super) fn pool(&self) -> &Pool {
        &self.pool
    }
}

fn bad_row(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("bad row: {e}"))
}

fn gift_from_row(row: &SqliteRow) -> Result<Gift, StoreError> {
    Ok(Gift {
        id: GiftId::parse(row.try_get("id").map_err(bad_row)?).map_err(bad_row)?,
        code: GiftCode::parse(row.try_get("code").map_err(bad_row)?).map_err(bad_row)?,
        amount: Amount::try_from(row.try_get::<i64, _>("amount").map_err(bad_row)?).map_err(bad_row)?,
        message: row
            .try_get::<Option<String>, _>("message")
            .map_err(bad_row)?
            .map(Message::parse)
            .transpose()
            .map_err(bad_row)?,
        status: Status::parse(row.try_get("status").map_err(bad_row)?).map_err(bad_row)?,
        last_error: row.try_get("last_error").map_err(bad_row)?,
        created_at: from_micros(row.try_get("created_at").map_err(bad_row)?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(bad_row)?)?,
    })
}

impl SqliteStore {
    /// QUEUED → `status` and the gift's outbox row deleted, in one transaction; false when
    /// the gift was no longer QUEUED.
    async fn settle_queued(
        &self,
        id: GiftId,
        status: Status,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let done = sqlx::query(
            "UPDATE gifts SET status = ?, last_error = COALESCE(?, last_error), updated_at = ? \
             WHERE id = ? AND status = 'QUEUED'",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(micros(now))
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        let moved = done.rows_affected() == 1;
        if moved {
            sqlx::query("DELETE FROM outbox WHERE gift_id = ?")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(moved)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_gift(&self, gift: &Gift) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(gift.id.to_string())
            .bind(gift.code.as_str())
            .bind(gift.amount.get())
            .bind(gift.message.as_ref().map(|m| m.as_str()))
            .bind(gift.status.as_str())
            .bind(micros(gift.created_at))
            .bind(micros(gift.updated_at))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| if is_code_violation(&e) { StoreError::CodeTaken } else { store_error(e) })
    }

    async fn get_gift(&self, id: GiftId) -> Result<Option<Gift>, StoreError> {
        let row = sqlx::query("SELECT * FROM gifts WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(gift_from_row).transpose()
    }

    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let id = cmd.gift_id.to_string();
        let row = sqlx::query(
            "SELECT status, EXISTS (SELECT 1 FROM send_requests WHERE gift_id = ?1 AND request_id = ?2) AS seen FROM gifts WHERE id = ?1",
        )
        .bind(&id)
        .bind(cmd.key.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(SendDecision::NotFound) };
        let status = Status::parse(row.try_get("status").map_err(bad_row)?).map_err(bad_row)?;
        let seen: bool = row.try_get("seen").map_err(bad_row)?;
        let accepted = SendAccepted { gift_id: cmd.gift_id, status: Status::Queued, request_id: cmd.key.clone() };
        if seen {
            return Ok(SendDecision::Replay(accepted));
        }
        if status != Status::Created {
            return Ok(SendDecision::Conflict(status));
        }
        sqlx::query("INSERT INTO send_requests (gift_id, request_id, created_at) VALUES (?, ?, ?)")
            .bind(&id)
            .bind(cmd.key.as_str())
            .bind(micros(cmd.now))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query("INSERT INTO outbox (gift_id, request_id, available_at, traceparent) VALUES (?, ?, ?, ?)")
            .bind(&id)
            .bind(cmd.key.as_str())
            .bind(micros(cmd.outbox_available_at))
            .bind(cmd.trace.map(|t| t.to_string()))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query("UPDATE gifts SET status = 'QUEUED', updated_at = ? WHERE id = ?")
            .bind(micros(cmd.now))
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(SendDecision::Queued(accepted))
    }

    async fn mark_sent(&self, id: GiftId, now: Timestamp) -> Result<bool, StoreError> {
        self.settle_queued(id, Status::Sent, None, now).await
    }

    async fn mark_failed(&self, id: GiftId, error: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.settle_queued(id, Status::Failed, Some(error), now).await
    }

    async fn outbox_claim(&self, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let rows = sqlx::query(
            "SELECT gift_id, request_id, traceparent, publishes FROM outbox \
             WHERE available_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?) \
             ORDER BY available_at, gift_id, request_id LIMIT ?",
        )
        .bind(micros(now))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        for row in &rows {
            sqlx::query("UPDATE outbox SET claimed_until = ? WHERE gift_id = ? AND request_id = ?")
                .bind(micros(until))
                .bind(row.try_get::<String, _>("gift_id").map_err(bad_row)?)
                .bind(row.try_get::<String, _>("request_id").map_err(bad_row)?)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEntry {
                    gift_id: GiftId::parse(r.try_get("gift_id").map_err(bad_row)?).map_err(bad_row)?,
                    request_id: IdempotencyKey::parse(r.try_get("request_id").map_err(bad_row)?).map_err(bad_row)?,
                    trace: r
                        .try_get::<Option<String>, _>("traceparent")
                        .map_err(bad_row)?
                        .and_then(|t| TraceParent::parse(&t).ok()),
                    stale: r.try_get::<i64, _>("publishes").map_err(bad_row)? > 0,
                })
            })
            .collect()
    }

    async fn outbox_published(&self, entry: &OutboxEntry, due_again: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET available_at = ?, publishes = publishes + 1, claimed_until = NULL WHERE gift_id = ? AND request_id = ?",
        )
        .bind(micros(due_again))
        .bind(entry.gift_id.to_string())
        .bind(entry.request_id.as_str())
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(store_error)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(store_error)
    }
}
