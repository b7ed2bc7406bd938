use std::time::Duration;

use futures::future::join_all;

use crate::domain::{Gift, GiftId, SendMessage};
use crate::ports::{Delivery, Dispatcher, Env, Queue, Receipt, Store};

/// How failed attempts are retried. The queue's redrive policy is the retry mechanism;
/// this only says when a failed receive may be seen again and when the budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The receive on which a failure becomes final (SQS `maxReceiveCount`, 5).
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
    /// The send succeeded but another worker had already finished the gift.
    LostRace,
    /// The gift was already SENT/FAILED: a duplicate, deleted.
    Duplicate,
    /// The send failed with budget left; the message comes back after the backoff.
    RetryLater,
    /// QUEUED → FAILED; the message is left for the queue to dead-letter.
    Failed,
    /// The body is not a send message, or names no gift; left to reach the dead-letter queue.
    Poison(String),
    /// A store or queue error; the message is left and will be redelivered.
    Error(String),
}

/// What a delivery came to before the shared update and delete.
enum Attempt {
    Done(DeliveryOutcome),
    /// Its gift is SENT or FAILED already: delete the message.
    Finished,
    /// Pseudo-sent: record SENT, then delete the message.
    Dispatched,
}

/// Handles the deliveries of one receive per spec §4, each on its own terms: load; skip
/// terminal gifts; pseudo-send; conditional update; delete on success; on failure either
/// retry later or, at the last receive, record FAILED and leave the message for the
/// dead-letter queue. The store and queue work is shared: one load for the whole batch,
/// one conditional update for all its successful sends, one delete for every message done
/// with — two round trips and one commit per batch where one per message would take twenty
/// and ten (docs/benchmarks.md), and one SQS request instead of ten. Outcomes come back in
/// the order of `deliveries`.
pub async fn handle_deliveries(
    store: &dyn Store,
    queue: &dyn Queue,
    env: &dyn Env,
    dispatcher: &dyn Dispatcher,
    policy: RetryPolicy,
    deliveries: Vec<Delivery>,
) -> Vec<(Delivery, DeliveryOutcome)> {
    let mut outcomes: Vec<Option<DeliveryOutcome>> = Vec::with_capacity(deliveries.len());
    let mut readable = Vec::with_capacity(deliveries.len());
    for (i, delivery) in deliveries.iter().enumerate() {
        match SendMessage::from_body(&delivery.body) {
            Ok(msg) => {
                readable.push((i, msg));
                outcomes.push(None);
            }
            Err(e) => {
                tracing::error!(error_code = "POISON_MESSAGE", error_message = %e, receive_count = delivery.receive_count, "unreadable message left for the dead-letter queue");
                outcomes.push(Some(DeliveryOutcome::Poison(e.to_string())));
            }
        }
    }
    if readable.is_empty() {
        return paired(deliveries, outcomes);
    }

    let ids: Vec<GiftId> = readable.iter().map(|(_, msg)| msg.gift_id).collect();
    let gifts = match store.get_gifts(&ids).await.and_then(|gifts| answered_each(&ids, gifts)) {
        Ok(gifts) => gifts,
        Err(e) => {
            for (i, msg) in &readable {
                outcomes[*i] = Some(store_error(msg, &e));
            }
            return paired(deliveries, outcomes);
        }
    };
    let attempts = join_all(
        readable
            .iter()
            .zip(gifts)
            .map(|((i, msg), gift)| attempt(store, queue, env, dispatcher, policy, &deliveries[*i], msg, gift)),
    )
    .await;

    // Messages to delete, each with what its delivery comes to once the delete is done.
    let mut to_delete: Vec<(usize, DeliveryOutcome)> = Vec::new();
    let mut dispatched = Vec::new();
    for ((i, msg), attempt) in readable.iter().zip(attempts) {
        match attempt {
            Attempt::Done(outcome) => outcomes[*i] = Some(outcome),
            Attempt::Finished => to_delete.push((*i, DeliveryOutcome::Duplicate)),
            Attempt::Dispatched => dispatched.push((*i, msg)),
        }
    }
    if !dispatched.is_empty() {
        let ids: Vec<GiftId> = dispatched.iter().map(|(_, msg)| msg.gift_id).collect();
        match store.mark_sent_all(&ids, env.now()).await.and_then(|won| answered_each(&ids, won)) {
            Ok(won) => {
                for ((i, msg), won) in dispatched.iter().zip(won) {
                    let (gift_id, request_id) = (msg.gift_id, &msg.request_id);
                    if won {
                        tracing::info!(%gift_id, %request_id, event = "SENT", receive_count = deliveries[*i].receive_count, "gift sent");
                        to_delete.push((*i, DeliveryOutcome::Sent));
                    } else {
                        tracing::info!(%gift_id, %request_id, event = "SKIPPED", "another worker finished this gift first");
                        to_delete.push((*i, DeliveryOutcome::LostRace));
                    }
                }
            }
            Err(e) => {
                for (i, msg) in &dispatched {
                    outcomes[*i] = Some(store_error(msg, &e));
                }
            }
        }
    }
    if !to_delete.is_empty() {
        let receipts: Vec<Receipt> = to_delete.iter().map(|(i, _)| deliveries[*i].receipt.clone()).collect();
        for ((i, outcome), deleted) in to_delete.into_iter().zip(queue.delete_all(&receipts).await) {
            // Not deleted: the message comes back after its visibility timeout and is then a
            // duplicate of a finished gift.
            outcomes[i] = Some(deleted.map_or_else(|e| DeliveryOutcome::Error(e.to_string()), |()| outcome));
        }
    }
    paired(deliveries, outcomes)
}

/// One delivery up to the shared update: skip it if its gift is unknown or finished,
/// otherwise pseudo-send it and, if that failed, retry later or record FAILED.
#[allow(clippy::too_many_arguments)] // the ports, the policy, and the one delivery's facts
async fn attempt(
    store: &dyn Store,
    queue: &dyn Queue,
    env: &dyn Env,
    dispatcher: &dyn Dispatcher,
    policy: RetryPolicy,
    delivery: &Delivery,
    msg: &SendMessage,
    gift: Option<Gift>,
) -> Attempt {
    let (gift_id, request_id) = (msg.gift_id, &msg.request_id);
    let Some(gift) = gift else {
        tracing::error!(%gift_id, %request_id, error_code = "UNKNOWN_GIFT", "message names no gift; left for the dead-letter queue");
        return Attempt::Done(DeliveryOutcome::Poison(format!("unknown gift {gift_id}")));
    };
    if gift.status.is_terminal() {
        tracing::info!(%gift_id, %request_id, event = "DUPLICATE", gift_status = gift.status.as_str(), "duplicate delivery deleted");
        return Attempt::Finished;
    }
    let reason = match dispatcher.dispatch(&gift, request_id, delivery.receive_count).await {
        Ok(()) => return Attempt::Dispatched,
        Err(reason) => reason,
    };
    Attempt::Done(if delivery.receive_count >= policy.max_receives {
        match store.mark_failed(gift_id, &reason, env.now()).await {
            Ok(false) => DeliveryOutcome::LostRace,
            Ok(true) => {
                tracing::warn!(%gift_id, %request_id, event = "FAILED", error_code = "SEND_FAILED", error_message = %reason, receive_count = delivery.receive_count, "retry budget exhausted");
                DeliveryOutcome::Failed
            }
            Err(e) => store_error(msg, &e),
        }
    } else {
        tracing::warn!(%gift_id, %request_id, event = "RETRY", error_code = "SEND_FAILED", error_message = %reason, receive_count = delivery.receive_count, "send failed; will retry");
        match queue.set_visibility(&delivery.receipt, policy.backoff).await {
            Ok(()) => DeliveryOutcome::RetryLater,
            // The visibility timeout still brings it back, only later.
            Err(e) => DeliveryOutcome::Error(e.to_string()),
        }
    })
}

/// A batch answer with one entry per id asked, or the store's contract is broken.
fn answered_each<T>(ids: &[GiftId], answers: Vec<T>) -> Result<Vec<T>, crate::error::StoreError> {
    if answers.len() == ids.len() {
        Ok(answers)
    } else {
        Err(crate::error::StoreError::Other(format!("the store answered {} of {} gifts", answers.len(), ids.len())))
    }
}

fn paired(deliveries: Vec<Delivery>, outcomes: Vec<Option<DeliveryOutcome>>) -> Vec<(Delivery, DeliveryOutcome)> {
    deliveries.into_iter().zip(outcomes.into_iter().map(|o| o.expect("every delivery is decided"))).collect()
}

fn store_error(msg: &SendMessage, e: &crate::error::StoreError) -> DeliveryOutcome {
    tracing::error!(gift_id = %msg.gift_id, request_id = %msg.request_id, error_code = "STORE_ERROR", error_message = %e, "store error; message left for redelivery");
    DeliveryOutcome::Error(e.to_string())
}
