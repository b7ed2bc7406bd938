//! The worker's step: one received batch, from load to delete (spec §4).
//!
//! # Layout
//!
//! - this file: the step's public face — [`handle_deliveries`], the outcomes it reports,
//!   the retry policy, and [`InFlight`], the gifts this worker has in hand across batches.
//! - `batch`: the batch as a value moving through its phases — parse (group by gift: the
//!   duplicates of one gift share one attempt, led by the delivery with the highest
//!   receive count), load (every gift in one call), attempt (each QUEUED gift pseudo-sent
//!   once, under the lease), record (SENT for all successes in one call, FAILED for final
//!   failures), after the holders (each gift another batch was attempting, read again
//!   once that batch has written its outcome), plan and settle (delete, delay or leave
//!   each delivery).
//! - `plan`: one gift's state at each phase and the decisions that move it on.
//! - `lease`: how long the batch's messages are ours, and the heartbeat that renews it.
//!
//! Only after every attempt of the batch has ended is any outcome written, so a success
//! and a failure of one gift can never race each other.

mod batch;
mod lease;
mod plan;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{select, Either};

use crate::defaults;
use crate::domain::{GiftId, Timestamp};
use crate::ports::Delivery;
use crate::service::Deps;
use batch::Batch;
use lease::Lease;

/// How failed attempts are retried. The queue's redrive policy is the retry mechanism;
/// this only says when a failed receive may be seen again and when the budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The receive on which a failure becomes final (SQS `maxReceiveCount`).
    pub max_receives: u32,
    /// Visibility given to a failed message before its next attempt.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_receives: defaults::MAX_RECEIVES, backoff: Duration::from_secs(defaults::RETRY_BACKOFF_SECONDS) }
    }
}

/// What the worker did with one delivery; returned so loops and tests can count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// QUEUED → SENT and the message deleted.
    Sent,
    /// Another worker had finished the gift first (SENT or FAILED); the message deleted.
    LostRace,
    /// The gift was already SENT/FAILED, or this was a second message of a gift the batch
    /// handled: deleted.
    Duplicate,
    /// The send failed with budget left; the message comes back after the backoff.
    RetryLater,
    /// QUEUED → FAILED; the message is left for the queue to dead-letter.
    Failed,
    /// The body is not a send message, or names no gift; left to reach the dead-letter queue.
    Poison(String),
    /// A store or queue error, or an attempt abandoned when the lease ran out; the message
    /// is left and will be redelivered.
    Error(String),
}

/// The gifts this worker is attempting, across the batches it has in hand: a gift has at
/// most one attempt per worker at a time, so two messages of one gift in two batches can
/// never race a success against a failure. Each gift held lists the batches waiting for it
/// to be released.
#[derive(Debug, Default)]
pub struct InFlight(std::sync::Mutex<BTreeMap<GiftId, Vec<oneshot::Sender<()>>>>);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<GiftId, Vec<oneshot::Sender<()>>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once no batch holds `gift`.
    async fn released(&self, gift: GiftId) {
        let waiting = self.lock().get_mut(&gift).map(|waiters| {
            let (tx, rx) = oneshot::channel();
            waiters.push(tx);
            rx
        });
        if let Some(rx) = waiting {
            // Either answer means released: the holder sends, or drops its side when dropped.
            let _ = rx.await;
        }
    }
}

/// The gifts one batch holds in [`InFlight`], released when the batch has recorded their
/// outcomes (or is dropped).
struct Held<'a> {
    in_flight: &'a InFlight,
    gifts: Vec<GiftId>,
}

impl Held<'_> {
    /// Takes `gift` for this batch, unless another batch holds it.
    fn take(&mut self, gift: GiftId) -> bool {
        let mut held = self.in_flight.lock();
        if held.contains_key(&gift) {
            return false;
        }
        held.insert(gift, Vec::new());
        self.gifts.push(gift);
        true
    }

    /// Releases every gift this batch holds, waking the batches waiting for them.
    fn release(&mut self) {
        let mut held = self.in_flight.lock();
        for g in self.gifts.drain(..) {
            for waiter in held.remove(&g).unwrap_or_default() {
                let _ = waiter.send(());
            }
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// The facts of one received batch the step needs besides the deliveries.
#[derive(Debug, Clone, Copy)]
pub struct BatchTerms {
    pub retry: RetryPolicy,
    /// The queue's visibility timeout.
    pub visibility: Duration,
    /// When the receive returned: the lease runs from here.
    pub received_at: Timestamp,
}

/// Handles the deliveries of one receive; outcomes come back in the order of `deliveries`.
pub async fn handle_deliveries(
    deps: &Deps,
    terms: BatchTerms,
    in_flight: &InFlight,
    deliveries: Vec<Delivery>,
) -> Vec<(Delivery, DeliveryOutcome)> {
    let parsed = Batch::parse(deliveries, &*deps.env);
    let planned = {
        let lease = Lease::new(&*deps.env, terms.visibility, terms.received_at);
        let mut held = Held { in_flight, gifts: Vec::new() };
        let loaded = parsed.load(deps).await.unless_in_flight(&mut held);
        // Only messages whose gift is being attempted, here or in another batch, are kept
        // hidden.
        let receipts = loaded.receipts_to_keep();
        let work = async {
            let recorded = loaded.attempt(deps, terms.retry, &lease).await.record(deps).await;
            // Outcomes written: this batch's gifts are free for the batches waiting for them,
            // and only then does it wait for the gifts other batches hold (so no two batches
            // can wait for each other).
            held.release();
            recorded.after_holders(deps, in_flight, &lease).await
        };
        let heartbeat = lease.heartbeat(&*deps.queue, &receipts);
        futures::pin_mut!(work, heartbeat);
        let recorded = match select(work, heartbeat).await {
            Either::Left((recorded, _)) => recorded,
            Either::Right((never, _)) => match never {},
        };
        // A delete with a superseded receipt could remove the message from under the worker
        // that holds it now (one that just recorded FAILED and leaves it for the dead-letter
        // queue): once the lease has lapsed, what was to be deleted is left to come back,
        // a duplicate then.
        recorded.plan(lease.lapsed())
    };
    planned.settle(deps, terms.retry).await
}
