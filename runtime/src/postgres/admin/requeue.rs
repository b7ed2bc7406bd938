//! The admin re-queue: a gift put back on the queue by an operator, with a new outbox row
//! for its latest send request, so the relay publishes a new message with a fresh receive
//! budget.

use gift_core::domain::{GiftId, IdempotencyKey, Status, Timestamp};
use gift_core::StoreError;
use sqlx::Connection;
use uuid::Uuid;

use super::{PgAdmin, Write};
use crate::sql::store_error;

/// The two ways an operator re-queues a gift. Neither is an edge of `Status::can_become`:
/// the service never takes them, only gift-admin does, each on an explicit request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// FAILED → QUEUED with `last_error` cleared: the operator decided to try again.
    Retry,
    /// QUEUED stays QUEUED and gets a new message: its last one is in the dead-letter queue.
    Rearm,
}

impl Requeue {
    /// The status the gift must have for the re-queue to happen.
    pub fn from(self) -> Status {
        match self {
            Requeue::Retry => Status::Failed,
            Requeue::Rearm => Status::Queued,
        }
    }
}

/// What a re-queue found. Only `Requeued` wrote anything (and only with `Write::Apply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeued {
    /// QUEUED now (or, dry, would be), `updated_at` the given time, and an outbox row for
    /// `request_id` due at once.
    Requeued {
        request_id: IdempotencyKey,
    },
    /// The gift is in another status than the re-queue starts from.
    Refused(Status),
    /// The gift has no send request to publish. A gift becomes QUEUED only through one, so
    /// this is a gift written by something other than the service.
    NoSendRequest,
    NotFound,
}

impl PgAdmin<'_> {
    /// Re-queues gift `id` as `how` says, in one transaction that holds the gift's row lock
    /// from the status check to the commit, so a worker finishing the gift meanwhile either
    /// waits or is seen. A dry run takes no lock and writes nothing.
    pub async fn requeue(
        &self,
        id: GiftId,
        how: Requeue,
        now: Timestamp,
        write: Write,
    ) -> Result<Requeued, StoreError> {
        let lock = match write {
            Write::Apply => "SELECT status FROM gifts WHERE id = $1 FOR UPDATE",
            Write::DryRun => "SELECT status FROM gifts WHERE id = $1",
        };
        let (status, request_id): (Option<String>, Option<String>) = self
            .pool
            .run(move |c| {
                Box::pin(async move {
                    let mut tx = c.begin().await?;
                    let status: Option<String> =
                        sqlx::query_scalar(lock).bind(id.as_uuid()).fetch_optional(&mut *tx).await?;
                    let latest: Option<String> = if status.as_deref() == Some(how.from().as_str()) {
                        sqlx::query_scalar(
                            "SELECT request_id FROM send_requests WHERE gift_id = $1 \
                             ORDER BY created_at DESC, request_id DESC LIMIT 1",
                        )
                        .bind(id.as_uuid())
                        .fetch_optional(&mut *tx)
                        .await?
                    } else {
                        None
                    };
                    match (&latest, write) {
                        (Some(key), Write::Apply) => {
                            requeue_row(&mut tx, id.as_uuid(), key, how.from(), now).await?;
                            tx.commit().await?;
                        }
                        _ => tx.rollback().await?,
                    }
                    Ok((status, latest))
                })
            })
            .await
            .map_err(store_error)?;
        let Some(status) = status else { return Ok(Requeued::NotFound) };
        let status = Status::parse(&status).map_err(|e| StoreError::Other(format!("bad row: {e}")))?;
        if status != how.from() {
            return Ok(Requeued::Refused(status));
        }
        match request_id {
            Some(key) => IdempotencyKey::parse(&key)
                .map(|request_id| Requeued::Requeued { request_id })
                .map_err(|e| StoreError::Other(format!("bad row: {e}"))),
            None => Ok(Requeued::NoSendRequest),
        }
    }
}

/// The writes of a re-queue, on the locked row. An outbox row still waiting for the relay
/// is made due at once instead of duplicated.
async fn requeue_row(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    key: &str,
    from: Status,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE gifts SET status = 'QUEUED', last_error = NULL, updated_at = $3 WHERE id = $1 AND status = $2")
        .bind(id)
        .bind(from.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO outbox (gift_id, request_id, available_at) VALUES ($1, $2, $3) \
         ON CONFLICT (gift_id, request_id) DO UPDATE SET available_at = EXCLUDED.available_at, claimed_until = NULL, publishes = 0",
    )
    .bind(id)
    .bind(key)
    .bind(now)
    .execute(tx)
    .await?;
    Ok(())
}
