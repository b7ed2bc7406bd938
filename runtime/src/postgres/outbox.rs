//! Moving published outbox rows to their stale deadline in batches, off the request's path.
//!
//! Every accepted send ends with a write to its outbox row once the message is published,
//! a third statement and a third commit after the create and the send.
//! [`OutboxDeferrals::published`] queues the write and returns; one task takes everything
//! queued so far and writes it with one `UPDATE`, and while one batch is on its way the next
//! one gathers. An idle service writes one row at once, a busy one many per round trip, and
//! no request waits for any of it.
//!
//! A row whose write is queued but not yet done (a batch in flight, a failed `UPDATE`, a
//! process that stopped first) stays due at its grace period, where the relay publishes it:
//! a duplicate message, which the worker ignores. That is the same outcome as a write that
//! fails, which the store contract already allows for. For the same reason the `UPDATE`
//! skips rows another transaction holds (a worker's batch deleting them with its SENT
//! update, a relay's claim) instead of waiting: it takes rows in no fixed order, and a wait
//! could close a cycle with a batch that deletes several rows.

use std::sync::OnceLock;

use gift_core::domain::Timestamp;
use gift_core::ports::OutboxEntry;
use gift_core::StoreError;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::pool::Pool;
use crate::sql::store_error;

/// Rows per `UPDATE` at most; keeps one statement's lock list and parameter arrays small.
const MAX_BATCH: usize = 256;

pub(crate) struct OutboxDeferrals {
    pool: Pool,
    /// Started on first use, on the runtime of that use; the task ends with the store.
    jobs: OnceLock<mpsc::UnboundedSender<(OutboxEntry, Timestamp)>>,
}

impl OutboxDeferrals {
    pub(crate) fn new(pool: Pool) -> Self {
        Self { pool, jobs: OnceLock::new() }
    }

    /// Queues the write that makes the row due again at `due_again`.
    pub(crate) fn published(&self, entry: OutboxEntry, due_again: Timestamp) -> Result<(), StoreError> {
        let jobs = self.jobs.get_or_init(|| {
            let (jobs, queued) = mpsc::unbounded_channel();
            tokio::spawn(defer(self.pool.clone(), queued));
            jobs
        });
        jobs.send((entry, due_again)).map_err(|_| StoreError::Unavailable("the outbox writer has stopped".into()))
    }
}

async fn defer(pool: Pool, mut queued: mpsc::UnboundedReceiver<(OutboxEntry, Timestamp)>) {
    let mut batch: Vec<(OutboxEntry, Timestamp)> = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let rows = batch.len();
        let (mut ids, mut keys, mut due) =
            (Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows));
        for (entry, due_again) in batch.drain(..) {
            ids.push(entry.gift_id.as_uuid());
            keys.push(entry.request_id.as_str().to_owned());
            due.push(due_again);
        }
        let result = write(&pool, ids, keys, due).await;
        if let Err(e) = result {
            // Harmless: the relay publishes these rows again, and the worker ignores the duplicates.
            tracing::warn!(rows, error_code = "OUTBOX_DEFER_FAILED", error_message = %e, "outbox rows left due for the relay");
        }
    }
}

async fn write(pool: &Pool, ids: Vec<Uuid>, keys: Vec<String>, due: Vec<Timestamp>) -> Result<(), StoreError> {
    pool.run(move |c| {
        Box::pin(async move {
            sqlx::query(
                "WITH locked AS (SELECT o.gift_id, o.request_id, d.due_again FROM outbox o \
                                 JOIN unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS d(gift_id, request_id, due_again) \
                                   ON o.gift_id = d.gift_id AND o.request_id = d.request_id \
                                 FOR UPDATE OF o SKIP LOCKED) \
                 UPDATE outbox o SET available_at = locked.due_again, publishes = o.publishes + 1, claimed_until = NULL FROM locked \
                 WHERE o.gift_id = locked.gift_id AND o.request_id = locked.request_id",
            )
            .bind(ids)
            .bind(keys)
            .bind(due)
            .execute(c)
            .await
        })
    })
    .await
    .map(|_| ())
    .map_err(store_error)
}
