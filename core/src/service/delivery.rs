use std::time::Duration;

use crate::domain::SendMessage;
use crate::ports::{Delivery, Dispatcher, Env, Queue, Store};

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

/// Handles one delivery per spec §4: load; skip terminal gifts; pseudo-send; conditional
/// update; delete on success; on failure either retry later or, at the last receive,
/// record FAILED and leave the message for the dead-letter queue.
pub async fn handle_delivery(
    store: &dyn Store,
    queue: &dyn Queue,
    env: &dyn Env,
    dispatcher: &dyn Dispatcher,
    policy: RetryPolicy,
    delivery: &Delivery,
) -> DeliveryOutcome {
    let msg = match SendMessage::from_body(&delivery.body) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error_code = "POISON_MESSAGE", error_message = %e, receive_count = delivery.receive_count, "unreadable message left for the dead-letter queue");
            return DeliveryOutcome::Poison(e.to_string());
        }
    };
    let (gift_id, request_id) = (msg.gift_id, &msg.request_id);
    let gift = match store.get_gift(gift_id).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            tracing::error!(%gift_id, %request_id, error_code = "UNKNOWN_GIFT", "message names no gift; left for the dead-letter queue");
            return DeliveryOutcome::Poison(format!("unknown gift {gift_id}"));
        }
        Err(e) => return store_error(&msg, e),
    };
    if gift.status.is_terminal() {
        tracing::info!(%gift_id, %request_id, event = "DUPLICATE", gift_status = gift.status.as_str(), "duplicate delivery deleted");
        return match queue.delete(&delivery.receipt).await {
            Ok(()) => DeliveryOutcome::Duplicate,
            Err(e) => DeliveryOutcome::Error(e.to_string()),
        };
    }

    match dispatcher.dispatch(&gift, request_id, delivery.receive_count).await {
        Ok(()) => match store.mark_sent(gift_id, env.now()).await {
            Ok(won) => {
                if won {
                    tracing::info!(%gift_id, %request_id, event = "SENT", receive_count = delivery.receive_count, "gift sent");
                } else {
                    tracing::info!(%gift_id, %request_id, event = "SKIPPED", "another worker finished this gift first");
                }
                match queue.delete(&delivery.receipt).await {
                    Ok(()) if won => DeliveryOutcome::Sent,
                    Ok(()) => DeliveryOutcome::LostRace,
                    Err(e) => DeliveryOutcome::Error(e.to_string()),
                }
            }
            Err(e) => store_error(&msg, e),
        },
        Err(reason) if delivery.receive_count >= policy.max_receives => {
            match store.mark_failed(gift_id, &reason, env.now()).await {
                Ok(false) => DeliveryOutcome::LostRace,
                Ok(true) => {
                    tracing::warn!(%gift_id, %request_id, event = "FAILED", error_code = "SEND_FAILED", error_message = %reason, receive_count = delivery.receive_count, "retry budget exhausted");
                    DeliveryOutcome::Failed
                }
                Err(e) => store_error(&msg, e),
            }
        }
        Err(reason) => {
            tracing::warn!(%gift_id, %request_id, event = "RETRY", error_code = "SEND_FAILED", error_message = %reason, receive_count = delivery.receive_count, "send failed; will retry");
            match queue.set_visibility(&delivery.receipt, policy.backoff).await {
                Ok(()) => DeliveryOutcome::RetryLater,
                // The visibility timeout still brings it back, only later.
                Err(e) => DeliveryOutcome::Error(e.to_string()),
            }
        }
    }
}

fn store_error(msg: &SendMessage, e: crate::error::StoreError) -> DeliveryOutcome {
    tracing::error!(gift_id = %msg.gift_id, request_id = %msg.request_id, error_code = "STORE_ERROR", error_message = %e, "store error; message left for redelivery");
    DeliveryOutcome::Error(e.to_string())
}
