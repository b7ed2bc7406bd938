//! Calls that wait for a connection share one statement (group commit).
//!
//! A call queues its item, then waits for a connection. Whoever gets one runs every item
//! queued at that moment (that do not [clash](Statement::clash)) with one statement and
//! tells each call how its item fared; a call whose item went in with another's statement
//! hands its connection straight on. An idle service runs each item on its own, with the
//! single-item statement; a busy one — whose calls would queue for a connection anyway —
//! shares statements, round trips and commits among them instead of queueing.
//!
//! An item is only ever run once, by whichever statement took it off the queue, and a call
//! whose future is dropped while its item is still queued takes the item back, so a client
//! that gave up does not leave work to be done later by a stranger. A statement that fails
//! fails every item it had not yet decided, which is what each of those calls would have seen
//! from its own statement had the failure been the database's; an item a committed statement
//! already decided keeps its answer ([`Ran`]).

use std::sync::{Mutex, MutexGuard};

use gift_core::StoreError;
use sqlx::postgres::PgConnection;
use tokio::sync::oneshot;

use super::pool::{OpFuture, Pool};
use crate::sql::{store_error, store_error_of};

/// One item's answer.
pub(crate) type Answer<T> = Result<T, StoreError>;

/// What a run came to: each item's answer, in order, and the driver's error if a statement
/// failed after others had committed (the pool sees it and closes a broken connection; the
/// items decided before it keep their answers).
pub(crate) struct Ran<T> {
    pub answers: Vec<Answer<T>>,
    pub error: Option<sqlx::Error>,
}

impl<T> Ran<T> {
    pub(crate) fn answered(answers: Vec<Answer<T>>) -> Self {
        Self { answers, error: None }
    }
}

/// A statement that can carry several callers' items.
pub(crate) trait Statement: 'static {
    type Item: Send + 'static;
    type Output: Send + 'static;

    /// Items per statement at most; more stay queued for the next connection.
    const MAX_ITEMS: usize;

    /// Whether two items may not share a statement. An item that clashes with one already
    /// taken stays queued for the next connection.
    fn clash(_a: &Self::Item, _b: &Self::Item) -> bool {
        false
    }

    /// Runs `items` and answers each, in order. An `Err` is the driver's error before any
    /// item was decided: every item fails with it, and the pool sees it (a broken connection
    /// is closed). A failure after some items were committed is a [`Ran`] with its error.
    fn run<'c>(c: &'c mut PgConnection, items: &'c [Self::Item]) -> OpFuture<'c, Ran<Self::Output>>;
}

struct Queued<S: Statement> {
    ticket: u64,
    item: S::Item,
    done: oneshot::Sender<Answer<S::Output>>,
}

struct Queue<S: Statement> {
    items: Vec<Queued<S>>,
    next_ticket: u64,
}

pub(crate) struct Shared<S: Statement> {
    pool: Pool,
    queue: Mutex<Queue<S>>,
}

impl<S: Statement> Shared<S> {
    pub(crate) fn new(pool: Pool) -> Self {
        Self { pool, queue: Mutex::new(Queue { items: Vec::new(), next_ticket: 0 }) }
    }

    pub(crate) async fn call(&self, item: S::Item) -> Answer<S::Output> {
        let (done, mut answer) = oneshot::channel();
        let ticket = {
            let mut queue = lock(&self.queue);
            let ticket = queue.next_ticket;
            queue.next_ticket += 1;
            queue.items.push(Queued { ticket, item, done });
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
            // Another call's statement took the item while this one waited: the
            // connection goes straight back to the next call in line.
            return finished(&mut guard, Ok(answered));
        }
        // This call's own item first (if no one took it meanwhile), so it never waits for
        // an answer that no one is about to give; then the oldest of the others that do not clash.
        let taken: Vec<Queued<S>> = {
            let mut queue = lock(&self.queue);
            let mut taken: Vec<Queued<S>> = Vec::new();
            if let Some(at) = queue.items.iter().position(|q| q.ticket == ticket) {
                taken.push(queue.items.remove(at));
            }
            let mut at = 0;
            while at < queue.items.len() && taken.len() < S::MAX_ITEMS {
                let candidate = &queue.items[at].item;
                if !taken.iter().any(|q| S::clash(&q.item, candidate)) {
                    taken.push(queue.items.remove(at));
                } else {
                    at += 1;
                }
            }
            taken
        };
        if !taken.is_empty() {
            // Runs to completion even if this call is dropped: the other items' calls are
            // waiting for its answers. The outcome reaches everyone through `done`.
            let _ = Pool::run_on(conn, move |c| Box::pin(run_and_answer::<S>(c, taken))).await;
        } else {
            // Another statement took the item and has not answered yet: the connection is
            // not this call's to hold meanwhile.
            drop(conn);
        }
        finished(&mut guard, answer.await)
    }
}

fn lock<S: Statement>(queue: &Mutex<Queue<S>>) -> MutexGuard<'_, Queue<S>> {
    // A panic while holding the lock leaves the items as they were; keep going.
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// The item's answer, once it has one: it is no longer queued.
fn finished<T>(
    guard: &mut Withdraw<'_, impl Statement>,
    answered: Result<Answer<T>, oneshot::error::RecvError>,
) -> Answer<T> {
    guard.ticket = None;
    // The sender goes away unanswered only if the statement's task was torn down with the runtime.
    answered.unwrap_or_else(|_| Err(StoreError::Unavailable("the statement was abandoned".into())))
}

/// Takes a call's item back off the queue if the call ends before the item was taken.
struct Withdraw<'a, S: Statement> {
    queue: &'a Mutex<Queue<S>>,
    ticket: Option<u64>,
}

impl<S: Statement> Withdraw<'_, S> {
    /// Whether the item was still queued (and now is not).
    fn withdraw(&mut self) -> bool {
        let Some(ticket) = self.ticket.take() else { return false };
        let mut queue = lock(self.queue);
        let before = queue.items.len();
        queue.items.retain(|q| q.ticket != ticket);
        queue.items.len() < before
    }
}

impl<S: Statement> Drop for Withdraw<'_, S> {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// Runs the statement on `queued` and answers each. Returns the driver's error, if any, so
/// that the pool can close a broken connection.
async fn run_and_answer<S: Statement>(c: &mut PgConnection, queued: Vec<Queued<S>>) -> Result<(), sqlx::Error> {
    let (items, dones): (Vec<S::Item>, Vec<_>) = queued.into_iter().map(|q| (q.item, q.done)).unzip();
    let (answers, result) = match S::run(c, &items).await {
        Ok(Ran { answers, error }) if answers.len() == items.len() => (answers, error.map_or(Ok(()), Err)),
        Ok(Ran { answers, error }) => {
            let wrong = format!("{} answers for {} items", answers.len(), items.len());
            (items.iter().map(|_| Err(StoreError::Other(wrong.clone()))).collect(), error.map_or(Ok(()), Err))
        }
        Err(e) => (items.iter().map(|_| Err(store_error_of(&e))).collect(), Err(e)),
    };
    for (done, answer) in dones.into_iter().zip(answers) {
        // A call that gave up no longer listens; its item's fate is in the tables.
        let _ = done.send(answer);
    }
    result
}
