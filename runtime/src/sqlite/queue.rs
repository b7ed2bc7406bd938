use std::time::Duration;

use async_trait::async_trait;
use gift_core::domain::{SendMessage, TraceParent};
use gift_core::ports::{Delivery, MessageId, Queue, Receipt};
use gift_core::{QueueError, StoreError};
use sqlx::Row;

use super::{micros, Pool};
use crate::memory::QueueSettings;
use crate::rt;
use crate::sql::store_error;

/// How often a long poll looks again. The local service is the only writer, so a short
/// fixed interval is simpler than cross-task notification and costs nothing noticeable.
const POLL: Duration = Duration::from_millis(100);

/// An SQS-like queue in the embedded database; see [`crate::memory::MemoryQueue`] for the
/// semantics it shares.
pub struct SqliteQueue {
    pool: Pool,
    settings: QueueSettings,
}

fn queue_error(e: sqlx::Error) -> QueueError {
    match store_error(e) {
        StoreError::Unavailable(m) => QueueError::Unavailable(m),
        other => QueueError::Other(other.to_string()),
    }
}

impl SqliteQueue {
    pub(super) fn new(pool: Pool, settings: QueueSettings) -> Self {
        Self { pool, settings }
    }

    /// Bodies in the dead-letter table.
    pub async fn dead_letters(&self) -> Result<Vec<String>, QueueError> {
        sqlx::query_scalar("SELECT body FROM dead_letters ORDER BY id").fetch_all(&self.pool).await.map_err(queue_error)
    }

    /// Messages neither deleted nor dead-lettered.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_messages")
            .fetch_one(&self.pool)
            .await
            .map_err(queue_error)?;
        Ok(n as u64)
    }

    async fn try_receive(&self, max: u32) -> Result<Vec<Delivery>, QueueError> {
        let now = micros(rt::now_utc());
        let mut tx = self.pool.begin().await.map_err(queue_error)?;
        let rows = sqlx::query(
            "SELECT id, body, receive_count, traceparent FROM queue_messages WHERE visible_at <= ? ORDER BY id LIMIT ?",
        )
        .bind(now)
        .bind(i64::from(max))
        .fetch_all(&mut *tx)
        .await
        .map_err(queue_error)?;
        let mut out = Vec::new();
        for row in rows {
            let id: i64 = row.get("id");
            let count: i64 = row.get("receive_count");
            if count >= i64::from(self.settings.max_receives) {
                sqlx::query("INSERT INTO dead_letters (id, body, receive_count, moved_at) SELECT id, body, receive_count, ? FROM queue_messages WHERE id = ?")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(queue_error)?;
                sqlx::query("DELETE FROM queue_messages WHERE id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(queue_error)?;
                continue;
            }
            let receive_count = count + 1;
            let receipt = format!("{id}:{receive_count}");
            let visible_at = now + self.settings.visibility_timeout.as_micros() as i64;
            sqlx::query("UPDATE queue_messages SET receive_count = ?, visible_at = ?, receipt = ? WHERE id = ?")
                .bind(receive_count)
                .bind(visible_at)
                .bind(&receipt)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(queue_error)?;
            out.push(Delivery {
                message_id: MessageId(id.to_string()),
                body: row.get("body"),
                receipt: Receipt(receipt),
                receive_count: receive_count as u32,
                trace: row.get::<Option<String>, _>("traceparent").and_then(|t| TraceParent::parse(&t).ok()),
            });
        }
        tx.commit().await.map_err(queue_error)?;
        Ok(out)
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn publish(&self, message: &SendMessage, trace: Option<&TraceParent>) -> Result<MessageId, QueueError> {
        sqlx::query("INSERT INTO queue_messages (body, visible_at, traceparent) VALUES (?, ?, ?)")
            .bind(message.to_body())
            .bind(micros(rt::now_utc()))
            .bind(trace.map(|t| t.to_string()))
            .execute(&self.pool)
            .await
            .map(|done| MessageId(done.last_insert_rowid().to_string()))
            .map_err(queue_error)
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = rt::now_instant() + wait;
        loop {
            let batch = self.try_receive(max).await?;
            if !batch.is_empty() || rt::now_instant() >= deadline {
                return Ok(batch);
            }
            rt::sleep(POLL.min(deadline.saturating_duration_since(rt::now_instant()))).await;
        }
    }

    async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        let id = message_id(receipt)?;
        sqlx::query("DELETE FROM queue_messages WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(queue_error)
    }

    async fn set_visibility(&self, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        let visible_at = micros(rt::now_utc()) + delay.as_micros() as i64;
        let done = sqlx::query("UPDATE queue_messages SET visible_at = ? WHERE id = ? AND receipt = ?")
            .bind(visible_at)
            .bind(message_id(receipt)?)
            .bind(&receipt.0)
            .execute(&self.pool)
            .await
            .map_err(queue_error)?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(QueueError::Other("receipt handle is no longer current".into()))
        }
    }

    async fn ping(&self) -> Result<(), QueueError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(queue_error)
    }
}

fn message_id(receipt: &Receipt) -> Result<i64, QueueError> {
    receipt
        .0
        .split(':')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| QueueError::Other(format!("malformed receipt {:?}", receipt.0)))
}
