//! What each gift of a batch comes to, phase by phase, and what that means for each of its
//! deliveries.

use crate::domain::{Gift, SendMessage, Timestamp};
use crate::error::StoreError;
use crate::metrics;
use crate::ports::Delivery;

use super::{DeliveryOutcome, RetryPolicy};

/// The deliveries of one gift in a batch. `lead` (the highest receive count, the first of
/// equals) carries the gift's one attempt; the others share its fate.
pub struct GiftWork {
    pub msg: SendMessage,
    pub lead: usize,
    /// Indices into the batch's deliveries, `lead` included.
    pub all: Vec<usize>,
    /// The gift's span in the lead's trace (none if it came untraced): the gift's log lines
    /// carry the trace of the request that accepted it.
    pub span: tracing::Span,
}

/// Where a gift's work stands.
pub enum Verdict {
    /// QUEUED when loaded: pseudo-send it.
    Attempt(Gift),
    /// Pseudo-sent: record SENT, then delete. `queued_at` is the gift's QUEUED time, when
    /// its send was accepted.
    Dispatched { queued_at: Timestamp },
    /// Failed on its final receive: record FAILED.
    GiveUp(String),
    /// Failed with budget left: delay every delivery by the backoff.
    Retry,
    /// Done with the gift: delete every delivery; the lead's outcome is this.
    Delete(DeliveryOutcome),
    /// Leave every delivery to come back (or be dead-lettered); each's outcome is this.
    Leave(DeliveryOutcome),
    /// FAILED recorded: the lead is left for the dead-letter queue, the others deleted.
    Failed,
}

/// What becomes of one delivery.
#[derive(Debug, Clone)]
pub enum Action {
    Delete(DeliveryOutcome),
    Delay,
    Leave(DeliveryOutcome),
}

impl Action {
    /// The action with its message kept on the queue: a delete becomes a leave, an error
    /// for the delivery (its message comes back and is then a duplicate).
    pub fn kept(self) -> Self {
        match self {
            Action::Delete(_) => Action::Leave(DeliveryOutcome::Error("the lease lapsed before the delete".into())),
            other => other,
        }
    }
}

/// Groups readable deliveries by gift, in order of first appearance; the others are poison.
pub fn group(deliveries: &[Delivery]) -> (Vec<GiftWork>, Vec<(usize, String)>) {
    let mut works: Vec<GiftWork> = Vec::new();
    let mut poison = Vec::new();
    for (i, d) in deliveries.iter().enumerate() {
        match SendMessage::from_body(&d.body) {
            Ok(msg) => match works.iter_mut().find(|w| w.msg.gift_id == msg.gift_id) {
                Some(w) => {
                    w.all.push(i);
                    if d.receive_count > deliveries[w.lead].receive_count {
                        w.lead = i;
                    }
                }
                None => works.push(GiftWork { msg, lead: i, all: vec![i], span: tracing::Span::none() }),
            },
            Err(e) => poison.push((i, e.to_string())),
        }
    }
    (works, poison)
}

impl GiftWork {
    pub fn store_error(&self, e: &StoreError) -> DeliveryOutcome {
        let _span = self.span.enter();
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        tracing::error!(%gift_id, %request_id, error_code = "STORE_ERROR", error_message = %e, "store error; message left for redelivery");
        DeliveryOutcome::Error(e.to_string())
    }

    /// A failed pseudo-send: final on the last receive, otherwise retried.
    pub fn failed(&self, reason: String, receive_count: u32, retry: RetryPolicy) -> Verdict {
        let _span = self.span.enter();
        if receive_count >= retry.max_receives {
            return Verdict::GiveUp(reason);
        }
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        tracing::warn!(%gift_id, %request_id, event = "RETRY", error_code = "SEND_FAILED", error_message = %reason, receive_count, "send failed; will retry");
        Verdict::Retry
    }

    pub fn abandoned(&self) -> Verdict {
        let _span = self.span.enter();
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        tracing::warn!(%gift_id, %request_id, error_code = "LEASE_EXPIRED", "pseudo-send abandoned: the message's visibility ran out");
        Verdict::Leave(DeliveryOutcome::Error("the lease ran out during the pseudo-send".into()))
    }

    /// The answer of the SENT update for this gift, recorded `now`.
    pub fn sent(&self, won: bool, queued_at: Timestamp, now: Timestamp) -> Verdict {
        let _span = self.span.enter();
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        if won {
            metrics::accept_to_sent((now - queued_at).to_std().unwrap_or_default().as_secs_f64());
            tracing::info!(%gift_id, %request_id, event = "SENT", "gift sent");
            Verdict::Delete(DeliveryOutcome::Sent)
        } else {
            tracing::info!(%gift_id, %request_id, event = "SKIPPED", "another worker finished this gift first");
            Verdict::Delete(DeliveryOutcome::LostRace)
        }
    }

    /// The answer of the FAILED update. Refused means the gift was finished meanwhile
    /// (SENT or FAILED elsewhere): the message is a duplicate then, deleted rather than
    /// left to reach the dead-letter queue.
    pub fn gave_up(&self, applied: bool, reason: &str) -> Verdict {
        let _span = self.span.enter();
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        if applied {
            tracing::warn!(%gift_id, %request_id, event = "FAILED", error_code = "SEND_FAILED", error_message = %reason, "retry budget exhausted");
            Verdict::Failed
        } else {
            tracing::info!(%gift_id, %request_id, event = "SKIPPED", "gift finished elsewhere before FAILED was recorded");
            Verdict::Delete(DeliveryOutcome::LostRace)
        }
    }
}

impl Verdict {
    /// What the verdict means for one of the gift's deliveries.
    pub fn action(&self, lead: bool) -> Action {
        match self {
            Verdict::Delete(outcome) if lead => Action::Delete(outcome.clone()),
            Verdict::Delete(_) => Action::Delete(DeliveryOutcome::Duplicate),
            Verdict::Failed if lead => Action::Leave(DeliveryOutcome::Failed),
            Verdict::Failed => Action::Delete(DeliveryOutcome::Duplicate),
            Verdict::Retry => Action::Delay,
            Verdict::Leave(outcome) => Action::Leave(outcome.clone()),
            Verdict::Attempt(_) | Verdict::Dispatched { .. } | Verdict::GiveUp(_) => {
                Action::Leave(DeliveryOutcome::Error("delivery left undecided".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GiftId, IdempotencyKey};
    use crate::ports::{MessageId, Receipt};

    fn delivery(gift: u128, receive_count: u32) -> Delivery {
        let msg = SendMessage { gift_id: GiftId::from_random(gift), request_id: IdempotencyKey::parse("k").unwrap() };
        let receipt = Receipt(format!("{gift}:{receive_count}"));
        Delivery { message_id: MessageId(gift.to_string()), body: msg.to_body(), receipt, receive_count, trace: None }
    }

    #[test]
    fn deliveries_of_one_gift_share_one_work_led_by_the_highest_receive_count() {
        let batch = [delivery(1, 2), delivery(2, 1), delivery(1, 5), delivery(1, 5)];
        let mut with_poison = batch.to_vec();
        with_poison.push(Delivery {
            message_id: MessageId("p".into()),
            body: "{".into(),
            receipt: Receipt("p".into()),
            receive_count: 1,
            trace: None,
        });
        let (works, poison) = group(&with_poison);
        assert_eq!(works.len(), 2);
        assert_eq!((works[0].lead, works[0].all.clone()), (2, vec![0, 2, 3]));
        assert_eq!((works[1].lead, works[1].all.clone()), (1, vec![1]));
        assert_eq!(poison.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn a_final_failure_leaves_its_lead_for_the_dead_letter_queue_and_deletes_the_rest() {
        assert!(matches!(Verdict::Failed.action(true), Action::Leave(DeliveryOutcome::Failed)));
        assert!(matches!(Verdict::Failed.action(false), Action::Delete(DeliveryOutcome::Duplicate)));
        assert!(matches!(Verdict::Retry.action(false), Action::Delay));
        assert!(matches!(
            Verdict::Delete(DeliveryOutcome::Sent).action(false),
            Action::Delete(DeliveryOutcome::Duplicate)
        ));
    }
}
