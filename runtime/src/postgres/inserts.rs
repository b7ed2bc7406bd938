//! Creates that wait for a connection share one `INSERT` (group commit).
//!
//! A create queues its row, then waits for a connection. Whoever gets one inserts every row
//! queued at that moment with one statement and tells each create how its row fared; a
//! create whose row went in with another's statement hands its connection straight on. An idle
//! service inserts each row on its own, with the single-row statement; a busy one — whose
//! creates would queue for a connection anyway — shares statements, round trips and commits
//! among them instead of queueing.
//!
//! A row is only ever inserted once, by whichever statement took it off the queue, and a
//! create whose future is dropped while its row is still queued takes the row back, so a
//! client that gave up does not leave a row to be inserted later by a stranger. A statement
//! that fails fails every row in it, which is what each of those creates would have seen
//! from its own statement had the failure been the database's; a row whose code is taken
//! fails alone (`ON CONFLICT (code) DO NOTHING`).

use std::sync::{Mutex, MutexGuard};

use gift_core::domain::Gift;
use gift_core::StoreError;
use sqlx::postgres::PgConnection;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::pool::Pool;
use crate::sql::{is_code_violation, store_error, store_error_of};

/// Rows per statement at most; more stay queued for the next connection.
const MAX_ROWS: usize = 64;

type Answer = Result<(), StoreError>;

struct Queued {
    ticket: u64,
    gift: Gift,
    done: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Queue {
    rows: Vec<Queued>,
    next_ticket: u64,
}

pub(crate) struct Inserts {
    pool: Pool,
    queue: Mutex<Queue>,
}

impl Inserts {
    pub(crate) fn new(pool: Pool) -> Self {
        Self { pool, queue: Mutex::default() }
    }

    pub(crate) async fn insert(&self, gift: Gift) -> Answer {
        let (done, mut answer) = oneshot::channel();
        let ticket = {
            let mut queue = lock(&self.queue);
            let ticket = queue.next_ticket;
            queue.next_ticket += 1;
            queue.rows.push(Queued { ticket, gift, done });
            ticket
        };
        let mut guard = Withdraw { queue: &self.queue, ticket: Some(ticket) };
        // Waited for like any store call's connection, never given up half-way: a pool
        // whose connection attempts are abandoned keeps opening connections (a backend
        // each) and never grows.
        let conn = match self.pool.connection().await {
            Ok(conn) => conn,
            Err(e) => {
                if guard.withdraw() {
                    return Err(store_error(e));
                }
                // Taken meanwhile: its statement answers.
                return finished(&mut guard, (&mut answer).await);
            }
        };
        if let Ok(answered) = answer.try_recv() {
            // Another create's statement took the row while this one waited: the
            // connection goes straight back to the next create in line.
            return finished(&mut guard, Ok(answered));
        }
        // This create's own row first (if no one took it meanwhile), so it never waits for
        // an answer that no one is about to give; then the oldest of the others.
        let rows: Vec<Queued> = {
            let mut queue = lock(&self.queue);
            let mut rows = Vec::new();
            if let Some(at) = queue.rows.iter().position(|q| q.ticket == ticket) {
                rows.push(queue.rows.remove(at));
            }
            let more = queue.rows.len().min(MAX_ROWS - rows.len());
            rows.extend(queue.rows.drain(..more));
            rows
        };
        if !rows.is_empty() {
            // Runs to completion even if this create is dropped: the other rows' creates
            // are waiting for its answers. The outcome reaches everyone through `done`.
            let _ = Pool::run_on(conn, move |c| Box::pin(insert_rows(c, rows))).await;
        }
        finished(&mut guard, answer.await)
    }
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // A panic while holding the lock leaves the rows as they were; keep going.
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// The row's answer, once it has one: it is no longer queued.
fn finished(guard: &mut Withdraw<'_>, answered: Result<Answer, oneshot::error::RecvError>) -> Answer {
    guard.ticket = None;
    // The sender goes away unanswered only if the statement's task was torn down with the runtime.
    answered.unwrap_or_else(|_| Err(StoreError::Unavailable("the insert was abandoned".into())))
}

/// Takes a create's row back off the queue if the create ends before the row was taken.
struct Withdraw<'a> {
    queue: &'a Mutex<Queue>,
    ticket: Option<u64>,
}

impl Withdraw<'_> {
    /// Whether the row was still queued (and now is not).
    fn withdraw(&mut self) -> bool {
        let Some(ticket) = self.ticket.take() else { return false };
        let mut queue = lock(self.queue);
        let before = queue.rows.len();
        queue.rows.retain(|q| q.ticket != ticket);
        queue.rows.len() < before
    }
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// Inserts `rows` with one statement and answers each. Returns the driver's error, if any,
/// so that the pool can close a broken connection.
async fn insert_rows(c: &mut PgConnection, rows: Vec<Queued>) -> Result<(), sqlx::Error> {
    let (answers, result) = if let [row] = rows.as_slice() {
        let result = insert_one(c, &row.gift).await;
        let answer = match &result {
            Ok(()) => Ok(()),
            Err(e) if is_code_violation(e) => Err(StoreError::CodeTaken),
            Err(e) => Err(store_error_of(e)),
        };
        (vec![answer], result)
    } else {
        match insert_many(c, &rows).await {
            Ok(inserted) => {
                let answers = rows
                    .iter()
                    .map(|r| if inserted.contains(&r.gift.id.as_uuid()) { Ok(()) } else { Err(StoreError::CodeTaken) })
                    .collect();
                (answers, Ok(()))
            }
            Err(e) => (vec![Err(store_error_of(&e)); rows.len()], Err(e)),
        }
    };
    for (row, answer) in rows.into_iter().zip(answers) {
        // A create that gave up no longer listens; its row's fate is in the table.
        let _ = row.done.send(answer);
    }
    result
}

async fn insert_one(c: &mut PgConnection, gift: &Gift) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(gift.id.as_uuid())
    .bind(gift.code.as_str())
    .bind(gift.amount.get())
    .bind(gift.message.as_ref().map(|m| m.as_str()))
    .bind(gift.status.as_str())
    .bind(gift.created_at)
    .bind(gift.updated_at)
    .execute(c)
    .await
    .map(|_| ())
}

/// The ids of the rows inserted; a row whose code was taken (by an earlier gift or by a row
/// before it in this statement) is not among them.
async fn insert_many(c: &mut PgConnection, rows: &[Queued]) -> Result<Vec<Uuid>, sqlx::Error> {
    let gifts = rows.iter().map(|r| &r.gift);
    sqlx::query_scalar(
        "INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::text[], \
                              $6::timestamptz[], $7::timestamptz[]) \
         ON CONFLICT (code) DO NOTHING RETURNING id",
    )
    .bind(gifts.clone().map(|g| g.id.as_uuid()).collect::<Vec<_>>())
    .bind(gifts.clone().map(|g| g.code.as_str().to_owned()).collect::<Vec<_>>())
    .bind(gifts.clone().map(|g| g.amount.get()).collect::<Vec<_>>())
    .bind(gifts.clone().map(|g| g.message.as_ref().map(|m| m.as_str().to_owned())).collect::<Vec<_>>())
    .bind(gifts.clone().map(|g| g.status.as_str().to_owned()).collect::<Vec<_>>())
    .bind(gifts.clone().map(|g| g.created_at).collect::<Vec<_>>())
    .bind(gifts.map(|g| g.updated_at).collect::<Vec<_>>())
    .fetch_all(c)
    .await
}
