//! Deleting published outbox rows in batches.
//!
//! Every accepted send ends with the deletion of its outbox row, a third statement and a
//! third commit after the create and the send. Deletions are queued to one task that takes
//! everything queued so far and removes it with one `DELETE`: while one batch is on its way,
//! the next one gathers. An idle service deletes one row at once, a busy one many per round
//! trip, and nobody waits longer than the batch in flight plus their own. A caller still
//! learns whether its row is gone, so the store's contract does not change.

use std::sync::OnceLock;

use gift_core::ports::OutboxEntry;
use gift_core::StoreError;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::pool::Pool;
use crate::sql::store_error;

/// Rows per `DELETE` at most; keeps one statement's lock list and parameter arrays small.
const MAX_BATCH: usize = 256;

type Job = (OutboxEntry, oneshot::Sender<Result<(), StoreError>>);

pub(crate) struct OutboxReaper {
    pool: Pool,
    /// Started on first use, on the runtime of that use; the task ends with the store.
    jobs: OnceLock<mpsc::UnboundedSender<Job>>,
}

impl OutboxReaper {
    pub(crate) fn new(pool: Pool) -> Self {
        Self { pool, jobs: OnceLock::new() }
    }

    pub(crate) async fn remove(&self, entry: OutboxEntry) -> Result<(), StoreError> {
        let jobs = self.jobs.get_or_init(|| {
            let (jobs, queued) = mpsc::unbounded_channel();
            tokio::spawn(reap(self.pool.clone(), queued));
            jobs
        });
        let (done, result) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the outbox reaper has stopped".into());
        jobs.send((entry, done)).map_err(|_| stopped())?;
        result.await.unwrap_or_else(|_| Err(stopped()))
    }
}

async fn reap(pool: Pool, mut queued: mpsc::UnboundedReceiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (ids, keys): (Vec<Uuid>, Vec<String>) =
            batch.iter().map(|(e, _)| (e.gift_id.as_uuid(), e.request_id.as_str().to_owned())).unzip();
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
            .await
            .map(|_| ())
            .map_err(store_error);
        for (_, done) in batch.drain(..) {
            // A caller that went away no longer needs the answer.
            let _ = done.send(result.clone());
        }
    }
}
