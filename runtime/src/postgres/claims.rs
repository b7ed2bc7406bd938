//! The relay's claims on due outbox rows.
//!
//! A claim is one statement in a REPEATABLE READ transaction, run again when PostgreSQL
//! reports that a row it meant to take changed under it (40001). Under READ COMMITTED a
//! claim that waits for rows another claim holds re-reads just those rows once the holder
//! commits, and keeps the snapshot of its start for everything else: it misses a row
//! committed during the wait and still takes the rows the other claim has just seen
//! unclaimed, which no order of the two claims and that commit explains (the store's
//! linearizability tests find it; `claim_wait.rs` among them plays it step by step). Under
//! REPEATABLE READ the waiting claim fails instead and runs again on a snapshot taken after
//! the holder's commit, so each claim answers as of one moment.
//!
//! `FOR UPDATE`, not `SKIP LOCKED`: a skipping claim misses rows another claim only locked
//! and then gave back (rolled back, its backend killed), which no order explains either.

use gift_core::domain::Timestamp;
use gift_core::ports::OutboxEntry;
use gift_core::StoreError;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Connection, Row};

use super::outbox_from_row;
use super::pool::Pool;
use crate::sql::store_error;

/// Runs of one claim at most: each failed run means another claim or send committed, so
/// claims progress; past this the claim is unavailable and the relay's next pass tries again.
const RUNS: u32 = 5;

/// The due rows, oldest first by their own due time (an UPDATE's RETURNING has no order),
/// claimed until `until`.
pub(super) async fn claim(
    pool: &Pool,
    now: Timestamp,
    until: Timestamp,
    limit: u32,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let rows = pool
        .run(move |c| {
            Box::pin(async move {
                let mut run = 1;
                loop {
                    match claim_once(c, now, until, limit).await {
                        Err(e) if run < RUNS && is_serialization_failure(&e) => run += 1,
                        done => return done,
                    }
                }
            })
        })
        .await
        .map_err(store_error)?;
    let mut claimed = rows
        .iter()
        .map(|row| Ok((row.try_get::<Timestamp, _>("available_at").map_err(store_error)?, outbox_from_row(row)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    claimed.sort();
    Ok(claimed.into_iter().map(|(_, entry)| entry).collect())
}

async fn claim_once(
    c: &mut PgConnection,
    now: Timestamp,
    until: Timestamp,
    limit: u32,
) -> Result<Vec<PgRow>, sqlx::Error> {
    // A failed statement drops `tx`, which queues its ROLLBACK ahead of the next run's BEGIN.
    let mut tx = c.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ").await?;
    let rows = sqlx::query(
        "WITH due AS (SELECT gift_id, request_id, available_at FROM outbox \
                      WHERE available_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) \
                      ORDER BY available_at, gift_id, request_id LIMIT $3 FOR UPDATE) \
         UPDATE outbox o SET claimed_until = $2 FROM due \
         WHERE o.gift_id = due.gift_id AND o.request_id = due.request_id \
         RETURNING o.gift_id, o.request_id, o.traceparent, o.publishes, due.available_at",
    )
    .bind(now)
    .bind(until)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

fn is_serialization_failure(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("40001"))
}
