//! Deleting published outbox rows in batches, off the request's path.
//!
//! Every accepted send ends with the deletion of its outbox row, a third statement and a
//! third commit after the create and the send. [`OutboxReaper::remove`] queues the row and
//! returns; one task takes everything queued so far and removes it with one `DELETE`, and
//! while one batch is on its way the next one gathers. An idle service deletes one row at
//! once, a busy one many per round trip, and no request waits for any of it.
//!
//! A row whose removal is queued but not yet done (a batch in flight, a failed `DELETE`, a
//! process that stopped first) stays in the outbox, where the relay publishes it after its
//! grace period: a duplicate message, which the worker ignores. That is the same outcome as a
//! removal that fails, which the store contract already allows for.

use std::sync::OnceLock;

use gift_core::ports::OutboxEntry;
use gift_core::StoreError;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::pool::Pool;
use crate::sql::store_error;

/// Rows per `DELETE` at most; keeps one statement's lock list and parameter arrays small.
const MAX_BATCH: usize = 256;

pub(crate) struct OutboxReaper {
    pool: Pool,
    /// Started on first use, on the runtime of that use; the task ends with the store.
    jobs: OnceLock<mpsc::UnboundedSender<OutboxEntry>>,
}

impl OutboxReaper {
    pub(crate) fn new(pool: Pool) -> Self {
        Self { pool, jobs: OnceLock::new() }
    }

    /// Queues the row's removal.
    pub(crate) fn remove(&self, entry: OutboxEntry) -> Result<(), StoreError> {
        let jobs = self.jobs.get_or_init(|| {
            let (jobs, queued) = mpsc::unbounded_channel();
            tokio::spawn(reap(self.pool.clone(), queued));
            jobs
        });
        jobs.send(entry).map_err(|_| StoreError::Unavailable("the outbox reaper has stopped".into()))
    }
}

async fn reap(pool: Pool, mut queued: mpsc::UnboundedReceiver<OutboxEntry>) {
    let mut batch: Vec<OutboxEntry> = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (ids, keys): (Vec<Uuid>, Vec<String>) =
            batch.drain(..).map(|e| (e.gift_id.as_uuid(), e.request_id.as_str().to_owned())).unzip();
        let rows = ids.len();
        let result = pool
            .run(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "DELETE FROM outbox o USING unnest($1::uuid[], $2::text[]) AS d(gift_id, request_id) \
                         WHERE o.gift_id = d.gift_id AND o.request_id = d.request_id",
                    )
                    .bind(ids)
                    .bind(keys)
                    .execute(c)
                    .await
                })
            })
            .await;
        if let Err(e) = result {
            let e = store_error(e);
            // Harmless: the relay publishes these rows again, and the worker ignores the duplicates.
            tracing::warn!(rows, error_code = "OUTBOX_REMOVE_FAILED", error_message = %e, "outbox rows left for the relay");
        }
    }
}
