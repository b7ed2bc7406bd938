//! The worker's step: one received batch, from load to delete (spec §4).
//!
//! A batch goes through phases, each returning what it decided: [`Batch::parse`] groups
//! the deliveries by gift (duplicates of one gift in a batch share one attempt, led by the
//! delivery with the highest receive count); `load` reads every gift at once; `attempt`
//! pseudo-sends each QUEUED gift once, under the batch's [`lease::Lease`]; `record` writes
//! SENT for all successes in one call and FAILED for final failures; `settle` deletes,
//! delays or leaves each delivery. Only after every attempt of the batch has ended is any
//! outcome written, so a success and a failure of one gift can never race each other.

mod lease;
mod plan;

use std::time::Duration;

use futures::future::{join_all, select, Either};

use crate::domain::{Gift, GiftId, Status, Timestamp};
use crate::metrics;
use crate::ports::{Delivery, Env, Receipt};
use crate::service::Deps;
use lease::Lease;
use plan::{Action, GiftWork, Verdict};

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
        Self { max_receives: 5, backoff: Duration::from_secs(2) }
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
/// never race a success against a failure.
#[derive(Debug, Default)]
pub struct InFlight(std::sync::Mutex<std::collections::BTreeSet<GiftId>>);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<GiftId>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The gifts one batch holds in [`InFlight`], released when the batch is done with them.
struct Held<'a> {
    in_flight: &'a InFlight,
    gifts: Vec<GiftId>,
}

impl Held<'_> {
    /// Takes `gift` for this batch, unless another batch holds it.
    fn take(&mut self, gift: GiftId) -> bool {
        let taken = self.in_flight.lock().insert(gift);
        if taken {
            self.gifts.push(gift);
        }
        taken
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut set = self.in_flight.lock();
        for g in &self.gifts {
            set.remove(g);
        }
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
    let batch = Batch::parse(deliveries, &*deps.env);
    let actions = {
        let lease = Lease::new(&*deps.env, terms.visibility, terms.received_at);
        let mut held = Held { in_flight, gifts: Vec::new() };
        let works: Vec<_> =
            batch.load(deps).await.into_iter().map(|(w, v)| (w, v.unless_in_flight(w, &mut held))).collect();
        // Only messages whose gift is being attempted are kept hidden.
        let receipts: Vec<Receipt> = works
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Attempt(_)))
            .flat_map(|(w, _)| w.all.iter().map(|&i| batch.deliveries[i].receipt.clone()))
            .collect();
        let work = async {
            let attempted = batch.attempt(deps, terms.retry, &lease, works).await;
            batch.record(deps, attempted).await
        };
        let heartbeat = lease.heartbeat(&*deps.queue, &receipts);
        futures::pin_mut!(work, heartbeat);
        let actions = match select(work, heartbeat).await {
            Either::Left((verdicts, _)) => batch.actions(verdicts),
            Either::Right((never, _)) => match never {},
        };
        // A delete with a superseded receipt could remove the message from under the worker
        // that holds it now (one that just recorded FAILED and leaves it for the dead-letter
        // queue): once the lease has lapsed, what was to be deleted is left to come back,
        // a duplicate then.
        if lease.lapsed() {
            actions.into_iter().map(Action::kept).collect()
        } else {
            actions
        }
    };
    batch.settle(deps, terms.retry, actions).await
}

/// The deliveries of one receive, grouped by gift.
struct Batch {
    deliveries: Vec<Delivery>,
    works: Vec<GiftWork>,
    /// Deliveries whose body is not a send message, with the parse error.
    poison: Vec<(usize, String)>,
}

impl Batch {
    /// Groups the deliveries; each gift traced by its lead gets a span of its own in that
    /// trace (its id drawn from `env`, so a replayed seed draws the same).
    fn parse(deliveries: Vec<Delivery>, env: &dyn Env) -> Self {
        let (mut works, poison) = plan::group(&deliveries);
        for work in &mut works {
            if let Some(trace) = &deliveries[work.lead].trace {
                let gift_id = work.msg.gift_id;
                work.span = crate::traced_span!("delivery", trace, env.random_u64() | 1, %gift_id);
            }
        }
        for (i, e) in &poison {
            let receive_count = deliveries[*i].receive_count;
            tracing::error!(error_code = "POISON_MESSAGE", error_message = %e, receive_count, "unreadable message left for the dead-letter queue");
        }
        Self { deliveries, works, poison }
    }

    /// Reads every gift of the batch in one call; what each gift's work is to do.
    async fn load(&self, deps: &Deps) -> Vec<(&GiftWork, Verdict)> {
        if self.works.is_empty() {
            return Vec::new();
        }
        let ids: Vec<GiftId> = self.works.iter().map(|w| w.msg.gift_id).collect();
        match deps.store.get_gifts(&ids).await.and_then(|gifts| answered_each(&ids, gifts)) {
            Ok(gifts) => self.works.iter().zip(gifts).map(|(w, g)| (w, Verdict::after_load(w, g))).collect(),
            Err(e) => self.works.iter().map(|w| (w, Verdict::Leave(w.store_error(&e)))).collect(),
        }
    }

    /// Pseudo-sends each gift to attempt, all at once, each abandoned if the lease runs out.
    async fn attempt<'w>(
        &self,
        deps: &Deps,
        retry: RetryPolicy,
        lease: &Lease<'_>,
        works: Vec<(&'w GiftWork, Verdict)>,
    ) -> Vec<(&'w GiftWork, Verdict)> {
        join_all(works.into_iter().map(|(work, verdict)| async move {
            let Verdict::Attempt(gift) = verdict else { return (work, verdict) };
            let receive_count = self.deliveries[work.lead].receive_count;
            let send = deps.dispatcher.dispatch(&gift, &work.msg.request_id, receive_count);
            futures::pin_mut!(send);
            let ran_out = lease.run_out();
            futures::pin_mut!(ran_out);
            let verdict = match select(send, ran_out).await {
                Either::Left((Ok(()), _)) => {
                    metrics::pseudo_send(true);
                    Verdict::Dispatched { queued_at: gift.updated_at }
                }
                Either::Left((Err(reason), _)) => {
                    metrics::pseudo_send(false);
                    work.failed(reason, receive_count, retry)
                }
                Either::Right(_) => work.abandoned(),
            };
            (work, verdict)
        }))
        .await
    }

    /// Writes the outcomes: one SENT update for every success, a FAILED update for each
    /// final failure.
    async fn record<'w>(&self, deps: &Deps, works: Vec<(&'w GiftWork, Verdict)>) -> Vec<(&'w GiftWork, Verdict)> {
        let sent: Vec<GiftId> =
            works.iter().filter(|(_, v)| matches!(v, Verdict::Dispatched { .. })).map(|(w, _)| w.msg.gift_id).collect();
        let mut won = record_sent(deps, &sent).await.into_iter();
        let mut recorded = Vec::with_capacity(works.len());
        for (work, verdict) in works {
            let verdict = match verdict {
                Verdict::Dispatched { queued_at } => work.sent(won.next().unwrap_or(false), queued_at, deps.env.now()),
                Verdict::GiveUp(reason) => {
                    match deps.store.mark_failed(work.msg.gift_id, &reason, deps.env.now()).await {
                        Ok(applied) => work.gave_up(applied, &reason),
                        Err(e) => Verdict::Leave(work.store_error(&e)),
                    }
                }
                other => other,
            };
            recorded.push((work, verdict));
        }
        recorded
    }

    /// What becomes of each delivery, in the order of the deliveries.
    fn actions(&self, verdicts: Vec<(&GiftWork, Verdict)>) -> Vec<Action> {
        let mut actions: Vec<Option<Action>> = vec![None; self.deliveries.len()];
        for (i, e) in &self.poison {
            actions[*i] = Some(Action::Leave(DeliveryOutcome::Poison(e.clone())));
        }
        for (work, verdict) in &verdicts {
            for &i in &work.all {
                actions[i] = Some(verdict.action(i == work.lead));
            }
        }
        actions.into_iter().map(|a| a.unwrap_or(Action::Leave(unplanned()))).collect()
    }

    /// Deletes what is done with, delays what will be retried, leaves the rest; the
    /// outcomes in the order of the deliveries.
    async fn settle(self, deps: &Deps, retry: RetryPolicy, actions: Vec<Action>) -> Vec<(Delivery, DeliveryOutcome)> {
        let deletes: Vec<usize> = (0..actions.len()).filter(|&i| matches!(actions[i], Action::Delete(_))).collect();
        let receipts: Vec<Receipt> = deletes.iter().map(|&i| self.deliveries[i].receipt.clone()).collect();
        let mut deleted =
            if receipts.is_empty() { Vec::new() } else { deps.queue.delete_all(&receipts).await }.into_iter();
        let delays = join_all(actions.iter().zip(&self.deliveries).map(|(a, d)| async move {
            match a {
                Action::Delay => Some(deps.queue.set_visibility(&d.receipt, retry.backoff).await),
                _ => None,
            }
        }))
        .await;
        let mut outcomes = Vec::with_capacity(actions.len());
        for ((action, delayed), delivery) in actions.into_iter().zip(delays).zip(self.deliveries) {
            let outcome = match (action, delayed) {
                // Not deleted: the message comes back after its visibility timeout and is
                // then a duplicate of a finished gift.
                (Action::Delete(outcome), _) => match deleted.next() {
                    Some(Err(e)) => DeliveryOutcome::Error(e.to_string()),
                    _ => outcome,
                },
                // Not delayed: the visibility timeout still brings it back, only later.
                (Action::Delay, Some(Err(e))) => DeliveryOutcome::Error(e.to_string()),
                (Action::Delay, _) => DeliveryOutcome::RetryLater,
                (Action::Leave(outcome), _) => outcome,
            };
            outcomes.push((delivery, outcome));
        }
        outcomes
    }
}

/// Pauses between tries of the SENT update: doubling from the first, capped at the last.
const SENT_RETRY_FIRST: Duration = Duration::from_millis(100);
const SENT_RETRY_MAX: Duration = Duration::from_secs(5);

/// Records SENT for `sent`, trying until the store answers. These gifts were pseudo-sent:
/// if the worker gave up here, the message would come back, be attempted again, and could
/// end FAILED although it was delivered. So the batch waits (its lease renewed) for as
/// long as the store is down; only a crash of the worker loses the success.
async fn record_sent(deps: &Deps, sent: &[GiftId]) -> Vec<bool> {
    if sent.is_empty() {
        return Vec::new();
    }
    let mut pause = SENT_RETRY_FIRST;
    loop {
        match deps.store.mark_sent_all(sent, deps.env.now()).await.and_then(|won| answered_each(sent, won)) {
            Ok(won) => return won,
            Err(e) => {
                tracing::error!(error_code = "STORE_ERROR", error_message = %e, gifts = sent.len(), "SENT not recorded; trying again");
                deps.env.sleep(pause).await;
                pause = (pause * 2).min(SENT_RETRY_MAX);
            }
        }
    }
}

fn unplanned() -> DeliveryOutcome {
    DeliveryOutcome::Error("delivery left without a plan".into())
}

/// A batch answer with one entry per id asked, or the store's contract is broken.
fn answered_each<T>(ids: &[GiftId], answers: Vec<T>) -> Result<Vec<T>, crate::error::StoreError> {
    if answers.len() == ids.len() {
        Ok(answers)
    } else {
        Err(crate::error::StoreError::Other(format!("the store answered {} of {} gifts", answers.len(), ids.len())))
    }
}

impl Verdict {
    /// A gift another batch of this worker is attempting is not attempted again: its
    /// deliveries come back after the backoff, when that attempt has ended. (They are not
    /// deleted: one may be the very message the other batch holds, redelivered after its
    /// visibility ran out.)
    fn unless_in_flight(self, work: &GiftWork, held: &mut Held<'_>) -> Self {
        let _span = work.span.enter();
        match self {
            Verdict::Attempt(_) if !held.take(work.msg.gift_id) => {
                let (gift_id, request_id) = (work.msg.gift_id, &work.msg.request_id);
                tracing::info!(%gift_id, %request_id, event = "IN_HAND", "gift in hand in another batch; delivery delayed");
                Verdict::Retry
            }
            other => other,
        }
    }

    /// What a loaded gift calls for: a pseudo-send if QUEUED, a delete if finished.
    fn after_load(work: &GiftWork, gift: Option<Gift>) -> Self {
        let _span = work.span.enter();
        let (gift_id, request_id) = (work.msg.gift_id, &work.msg.request_id);
        match gift {
            None => {
                tracing::error!(%gift_id, %request_id, error_code = "UNKNOWN_GIFT", "message names no gift; left for the dead-letter queue");
                Verdict::Leave(DeliveryOutcome::Poison(format!("unknown gift {gift_id}")))
            }
            Some(g) if g.status.is_terminal() => {
                tracing::info!(%gift_id, %request_id, event = "DUPLICATE", gift_status = g.status.as_str(), "duplicate delivery deleted");
                Verdict::Delete(DeliveryOutcome::Duplicate)
            }
            Some(g) if g.status == Status::Queued => Verdict::Attempt(g),
            Some(g) => {
                tracing::error!(%gift_id, %request_id, error_code = "NOT_QUEUED", gift_status = g.status.as_str(), "message for a gift not queued; left for redelivery");
                Verdict::Leave(DeliveryOutcome::Error(format!("gift {gift_id} is {}", g.status)))
            }
        }
    }
}
