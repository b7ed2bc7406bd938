//! One received batch as a value that moves through its phases: each phase consumes the
//! batch in one state and returns it in the next — `Batch<()>` (parsed) → `Batch<Loaded>`
//! → `Batch<Attempted>` → `Batch<Recorded>` → `Batch<Verdict>` → [`Planned`] → the
//! outcomes — so a gift cannot reach the settle undecided, and every delivery, owned by
//! its gift or by the poison list, comes out exactly once.

use std::time::Duration;

use futures::future::{join_all, select, Either};

use crate::domain::{Gift, GiftId};
use crate::metrics;
use crate::ports::{Delivery, Env, Receipt};
use crate::service::Deps;

use super::lease::Lease;
use super::plan::{self, Action, Attempted, GiftWork, Loaded, Placed, Recorded, Verdict};
use super::{DeliveryOutcome, Held, InFlight, RetryPolicy};

/// The deliveries of one receive grouped by gift, each gift in its state `P` of a phase.
pub struct Batch<P> {
    gifts: Vec<(GiftWork, P)>,
    /// Deliveries whose body is not a send message, with the parse error.
    poison: Vec<(Placed, String)>,
}

impl Batch<()> {
    /// Groups the deliveries; each gift traced by its lead gets a span of its own in that
    /// trace (its id drawn from `env`, so a replayed seed draws the same).
    pub fn parse(deliveries: Vec<Delivery>, env: &dyn Env) -> Self {
        let (mut works, poison) = plan::group(deliveries);
        for work in &mut works {
            if let Some(trace) = &work.lead.delivery.trace {
                let gift_id = work.msg.gift_id;
                work.span = crate::traced_span!("delivery", trace, env.random_u64() | 1, %gift_id);
            }
        }
        for (placed, e) in &poison {
            let receive_count = placed.delivery.receive_count;
            tracing::error!(error_code = "POISON_MESSAGE", error_message = %e, receive_count, "unreadable message left for the dead-letter queue");
        }
        Self { gifts: works.into_iter().map(|w| (w, ())).collect(), poison }
    }

    /// Reads every gift of the batch in one call.
    pub async fn load(self, deps: &Deps) -> Batch<Loaded> {
        let Batch { gifts, poison } = self;
        if gifts.is_empty() {
            return Batch { gifts: Vec::new(), poison };
        }
        let ids: Vec<GiftId> = gifts.iter().map(|(w, ())| w.msg.gift_id).collect();
        let gifts = match deps.store.get_gifts(&ids).await.and_then(|found| answered_each(&ids, found)) {
            Ok(found) => gifts
                .into_iter()
                .zip(found)
                .map(|((work, ()), gift)| {
                    let loaded = work.loaded(gift);
                    (work, loaded)
                })
                .collect(),
            Err(e) => gifts
                .into_iter()
                .map(|(work, ())| {
                    let left = Verdict::Leave(work.store_error(&e));
                    (work, Loaded::Decided(left))
                })
                .collect(),
        };
        Batch { gifts, poison }
    }
}

impl Batch<Loaded> {
    /// Takes each gift to attempt into `held`; one that another batch holds is not
    /// attempted here.
    pub fn unless_in_flight(self, held: &mut Held<'_>) -> Self {
        let Batch { gifts, poison } = self;
        let gifts = gifts
            .into_iter()
            .map(|(work, loaded)| match loaded {
                Loaded::Attempt(_) if !held.take(work.msg.gift_id) => {
                    let delayed = work.in_hand_elsewhere();
                    (work, delayed)
                }
                other => (work, other),
            })
            .collect();
        Batch { gifts, poison }
    }

    /// The receipts of every delivery of a gift to attempt, here or in another batch: the
    /// messages kept hidden.
    pub fn receipts_to_keep(&self) -> Vec<Receipt> {
        self.gifts
            .iter()
            .filter(|(_, loaded)| matches!(loaded, Loaded::Attempt(_) | Loaded::Elsewhere))
            .flat_map(|(work, _)| work.in_order().into_iter().map(|p| p.delivery.receipt.clone()))
            .collect()
    }

    /// Pseudo-sends each gift to attempt, all at once.
    pub async fn attempt(self, deps: &Deps, retry: RetryPolicy, lease: &Lease<'_>) -> Batch<Attempted> {
        let Batch { gifts, poison } = self;
        let gifts = join_all(gifts.into_iter().map(|(work, loaded)| async move {
            let attempted = match loaded {
                Loaded::Attempt(gift) => attempt_one(deps, retry, lease, &work, gift).await,
                Loaded::Elsewhere => Attempted::Elsewhere,
                Loaded::Decided(verdict) => Attempted::Decided(verdict),
            };
            (work, attempted)
        }))
        .await;
        Batch { gifts, poison }
    }
}

/// Pseudo-sends one gift on behalf of its lead delivery, abandoned if the lease runs out.
async fn attempt_one(deps: &Deps, retry: RetryPolicy, lease: &Lease<'_>, work: &GiftWork, gift: Gift) -> Attempted {
    let receive_count = work.lead.delivery.receive_count;
    let send = deps.dispatcher.dispatch(&gift, &work.msg.request_id, receive_count);
    futures::pin_mut!(send);
    let ran_out = lease.run_out();
    futures::pin_mut!(ran_out);
    match select(send, ran_out).await {
        Either::Left((Ok(()), _)) => {
            metrics::pseudo_send(true);
            Attempted::Dispatched { queued_at: gift.updated_at }
        }
        Either::Left((Err(reason), _)) => {
            metrics::pseudo_send(false);
            work.failed(reason, receive_count, retry)
        }
        Either::Right(_) => work.abandoned(),
    }
}

impl Batch<Attempted> {
    /// Writes the outcomes: one SENT update for every success, a FAILED update for each
    /// final failure.
    pub async fn record(self, deps: &Deps) -> Batch<Recorded> {
        let Batch { gifts, poison } = self;
        let sent: Vec<GiftId> = gifts
            .iter()
            .filter(|(_, attempted)| matches!(attempted, Attempted::Dispatched { .. }))
            .map(|(work, _)| work.msg.gift_id)
            .collect();
        let mut won = record_sent(deps, &sent).await.into_iter();
        let mut recorded = Vec::with_capacity(gifts.len());
        for (work, attempted) in gifts {
            let verdict = match attempted {
                Attempted::Dispatched { queued_at } => {
                    work.sent(won.next().unwrap_or(false), queued_at, deps.env.now())
                }
                Attempted::GiveUp(reason) => {
                    match deps.store.mark_failed(work.msg.gift_id, &reason, deps.env.now()).await {
                        Ok(applied) => work.gave_up(applied, &reason),
                        Err(e) => Verdict::Leave(work.store_error(&e)),
                    }
                }
                Attempted::Elsewhere => {
                    recorded.push((work, Recorded::Elsewhere));
                    continue;
                }
                Attempted::Decided(verdict) => verdict,
            };
            recorded.push((work, Recorded::Done(verdict)));
        }
        Batch { gifts: recorded, poison }
    }
}

impl Batch<Recorded> {
    /// Decides each gift another batch was attempting: waits, under the lease, until no
    /// batch holds it, then reads all of them in one call.
    pub async fn after_holders(self, deps: &Deps, in_flight: &InFlight, lease: &Lease<'_>) -> Batch<Verdict> {
        let Batch { gifts, poison } = self;
        let waited: Vec<GiftId> = gifts
            .iter()
            .filter(|(_, recorded)| matches!(recorded, Recorded::Elsewhere))
            .map(|(work, _)| work.msg.gift_id)
            .collect();
        let mut read =
            if waited.is_empty() { Vec::new() } else { wait_and_read(deps, in_flight, lease, &waited).await }
                .into_iter();
        let gifts = gifts
            .into_iter()
            .map(|(work, recorded)| {
                let verdict = match recorded {
                    Recorded::Done(verdict) => verdict,
                    Recorded::Elsewhere => match read.next() {
                        Some(AfterWait::Read(gift)) => work.after_holder(gift),
                        Some(AfterWait::StoreError(e)) => Verdict::Leave(work.store_error(&e)),
                        Some(AfterWait::RanOut) | None => work.outwaited(),
                    },
                };
                (work, verdict)
            })
            .collect();
        Batch { gifts, poison }
    }
}

/// A gift another batch held, once it was released (or the wait gave up).
enum AfterWait {
    Read(Option<Gift>),
    StoreError(crate::error::StoreError),
    /// The lease ran out first.
    RanOut,
}

/// Waits until no batch holds any of `gifts`, unless the lease runs out first, then reads
/// them; one answer per gift, in order.
async fn wait_and_read(deps: &Deps, in_flight: &InFlight, lease: &Lease<'_>, gifts: &[GiftId]) -> Vec<AfterWait> {
    let released = join_all(gifts.iter().map(|g| in_flight.released(*g)));
    let ran_out = lease.run_out();
    futures::pin_mut!(released, ran_out);
    if let Either::Right(_) = select(released, ran_out).await {
        return gifts.iter().map(|_| AfterWait::RanOut).collect();
    }
    match deps.store.get_gifts(gifts).await.and_then(|found| answered_each(gifts, found)) {
        Ok(found) => found.into_iter().map(AfterWait::Read).collect(),
        Err(e) => gifts.iter().map(|_| AfterWait::StoreError(e.clone())).collect(),
    }
}

impl Batch<Verdict> {
    /// What becomes of each delivery, in the order received. `lapsed` (the lease ran out
    /// before the settle) keeps every message on the queue.
    pub fn plan(self, lapsed: bool) -> Planned {
        let poison = self.poison.into_iter().map(|(p, e)| (p, Action::Leave(DeliveryOutcome::Poison(e))));
        let gifts = self.gifts.into_iter().flat_map(|(work, verdict)| work.actions(&verdict));
        let mut actions: Vec<(Placed, Action)> =
            poison.chain(gifts).map(|(p, a)| if lapsed { (p, a.kept()) } else { (p, a) }).collect();
        actions.sort_by_key(|(p, _)| p.at);
        Planned(actions)
    }
}

/// What becomes of each delivery of a batch, in the order received.
pub struct Planned(Vec<(Placed, Action)>);

impl Planned {
    /// Deletes what is done with (in one call), delays what will be retried, leaves the
    /// rest; the outcomes in the order of the deliveries.
    pub async fn settle(self, deps: &Deps, retry: RetryPolicy) -> Vec<(Delivery, DeliveryOutcome)> {
        let receipts: Vec<Receipt> = self
            .0
            .iter()
            .filter(|(_, action)| matches!(action, Action::Delete(_)))
            .map(|(p, _)| p.delivery.receipt.clone())
            .collect();
        let mut deleted =
            if receipts.is_empty() { Vec::new() } else { deps.queue.delete_all(&receipts).await }.into_iter();
        let settled = self.0.into_iter().map(|(placed, action)| {
            let delete = if matches!(action, Action::Delete(_)) { deleted.next() } else { None };
            async move {
                let outcome = match action {
                    // Not deleted: the message comes back after its visibility timeout and
                    // is then a duplicate of a finished gift.
                    Action::Delete(outcome) => match delete {
                        Some(Err(e)) => DeliveryOutcome::Error(e.to_string()),
                        _ => outcome,
                    },
                    // Not delayed: the visibility timeout still brings it back, only later.
                    Action::Delay => match deps.queue.set_visibility(&placed.delivery.receipt, retry.backoff).await {
                        Ok(()) => DeliveryOutcome::RetryLater,
                        Err(e) => DeliveryOutcome::Error(e.to_string()),
                    },
                    Action::Leave(outcome) => outcome,
                };
                (placed.delivery, outcome)
            }
        });
        join_all(settled).await
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

/// A batch answer with one entry per id asked, or the store's contract is broken.
fn answered_each<T>(ids: &[GiftId], answers: Vec<T>) -> Result<Vec<T>, crate::error::StoreError> {
    if answers.len() == ids.len() {
        Ok(answers)
    } else {
        Err(crate::error::StoreError::Other(format!("the store answered {} of {} gifts", answers.len(), ids.len())))
    }
}
