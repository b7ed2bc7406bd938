use std::time::Duration;

use crate::domain::{GiftId, IdempotencyKey, SendAccepted, SendMessage, TraceParent};
use crate::error::AppError;
use crate::metrics::{self, SendTag};
use crate::ports::{OutboxEntry, SendCommand, SendDecision};
use crate::service::Deps;

/// The answer to a send request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Newly accepted (202).
    Accepted(SendAccepted),
    /// Same key as an earlier accepted request (200, identical body).
    Replayed(SendAccepted),
}

/// When a send's outbox row is due for the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxTiming {
    /// After the send, for a message the API did not publish.
    pub publish_grace: Duration,
    /// After a publish, for a message presumed lost while its gift stays QUEUED.
    pub stale_after: Duration,
}

/// Accepts a send: the transaction queues the gift and writes an outbox row; then the
/// message is published right away and the row made due at the stale deadline. If that
/// publish fails, or the process dies before it, the relay publishes the outbox row after
/// `publish_grace` — the client's 202 stands either way, which is what makes "accepted"
/// mean "will be processed". `trace` (the request's) goes with the outbox row and the
/// message.
pub async fn request_send(
    deps: &Deps,
    gift_id: GiftId,
    key: IdempotencyKey,
    timing: OutboxTiming,
    trace: Option<TraceParent>,
) -> Result<SendOutcome, AppError> {
    let (store, queue) = (&deps.store, &deps.queue);
    let now = deps.env.now();
    let cmd = SendCommand {
        gift_id,
        key: key.clone(),
        now,
        outbox_available_at: crate::relay::deadline(now, timing.publish_grace),
        trace,
    };
    let accepted = match store.request_send(&cmd).await? {
        SendDecision::NotFound => {
            metrics::send(SendTag::NotFound);
            return Err(AppError::NotFound);
        }
        SendDecision::Conflict(status) => {
            metrics::send(SendTag::Conflict);
            return Err(AppError::Conflict { status });
        }
        SendDecision::Replay(body) => {
            metrics::send(SendTag::Replayed);
            tracing::info!(gift_id = %gift_id, request_id = %key, event = "REPLAYED", "send replayed");
            return Ok(SendOutcome::Replayed(body));
        }
        SendDecision::Queued(body) => body,
    };
    metrics::send(SendTag::Accepted);
    tracing::info!(gift_id = %gift_id, request_id = %key, event = "QUEUED", "send accepted");

    let message = SendMessage { gift_id, request_id: key.clone() };
    match queue.publish(&message, trace.as_ref()).await {
        Ok(message_id) => {
            tracing::info!(gift_id = %gift_id, request_id = %key, message_id = %message_id.0, event = "PUBLISHED", "send message published");
            let entry = OutboxEntry { gift_id, request_id: key.clone(), trace, stale: false };
            let due_again = crate::relay::deadline(deps.env.now(), timing.stale_after);
            if let Err(e) = store.outbox_published(&entry, due_again).await {
                // Harmless: the relay will publish a duplicate, which the worker ignores.
                tracing::warn!(gift_id = %gift_id, request_id = %key, error_code = "OUTBOX_DEFER_FAILED", error_message = %e, "outbox row left due for the relay");
            }
        }
        Err(e) => {
            tracing::warn!(gift_id = %gift_id, request_id = %key, error_code = "PUBLISH_FAILED", error_message = %e, "publish failed; the relay will retry");
        }
    }
    Ok(SendOutcome::Accepted(accepted))
}
