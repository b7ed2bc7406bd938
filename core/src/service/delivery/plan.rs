//! One gift of a batch, phase by phase: each phase's state is its own enum, and the last,
//! [`Verdict`], is all that is left to settle, so no gift can reach the queue undecided.

use crate::domain::{Gift, SendMessage, Status, Timestamp};
use crate::error::StoreError;
use crate::metrics;
use crate::ports::Delivery;

use super::{DeliveryOutcome, RetryPolicy};

/// A delivery with its place in the receive: outcomes are answered in that order.
pub struct Placed {
    pub at: usize,
    pub delivery: Delivery,
}

/// The deliveries of one gift in a batch. `lead` (the highest receive count, the first of
/// equals) carries the gift's one attempt; the `others` share its fate.
pub struct GiftWork {
    pub msg: SendMessage,
    pub lead: Placed,
    pub others: Vec<Placed>,
    /// The gift's span in the lead's trace (none if it came untraced): the gift's log lines
    /// carry the trace of the request that accepted it.
    pub span: tracing::Span,
}

/// A gift once loaded.
pub enum Loaded {
    /// QUEUED: pseudo-send it.
    Attempt(Gift),
    /// QUEUED, and another batch of this worker is attempting it: wait for that attempt's
    /// outcome, then read the gift again.
    Elsewhere,
    /// Nothing to attempt.
    Decided(Verdict),
}

/// A gift once its attempt (if any) has ended.
pub enum Attempted {
    /// Pseudo-sent: record SENT, then delete. `queued_at` is the gift's QUEUED time, when
    /// its send was accepted.
    Dispatched { queued_at: Timestamp },
    /// Failed on its final receive: record FAILED.
    GiveUp(String),
    /// Attempted in another batch.
    Elsewhere,
    /// Nothing to record.
    Decided(Verdict),
}

/// A gift once the batch's outcomes are written.
pub enum Recorded {
    Done(Verdict),
    /// Attempted in another batch, whose outcome is still to be read.
    Elsewhere,
}

/// What becomes of a gift's deliveries.
pub enum Verdict {
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
pub fn group(deliveries: Vec<Delivery>) -> (Vec<GiftWork>, Vec<(Placed, String)>) {
    let mut works: Vec<GiftWork> = Vec::new();
    let mut poison = Vec::new();
    for (at, delivery) in deliveries.into_iter().enumerate() {
        let placed = Placed { at, delivery };
        match SendMessage::from_body(&placed.delivery.body) {
            Ok(msg) => match works.iter_mut().find(|w| w.msg.gift_id == msg.gift_id) {
                Some(w) if placed.delivery.receive_count > w.lead.delivery.receive_count => {
                    w.others.push(std::mem::replace(&mut w.lead, placed));
                }
                Some(w) => w.others.push(placed),
                None => works.push(GiftWork { msg, lead: placed, others: Vec::new(), span: tracing::Span::none() }),
            },
            Err(e) => poison.push((placed, e.to_string())),
        }
    }
    (works, poison)
}

impl GiftWork {
    /// The gift's deliveries in the order received.
    pub fn in_order(&self) -> Vec<&Placed> {
        let mut all: Vec<&Placed> = std::iter::once(&self.lead).chain(&self.others).collect();
        all.sort_by_key(|p| p.at);
        all
    }

    /// Each delivery with what becomes of it under `verdict`.
    pub fn actions(self, verdict: &Verdict) -> Vec<(Placed, Action)> {
        let lead = (self.lead, verdict.action(true));
        std::iter::once(lead).chain(self.others.into_iter().map(|p| (p, verdict.action(false)))).collect()
    }

    /// What the loaded gift calls for: a pseudo-send if QUEUED, a delete if finished.
    pub fn loaded(&self, gift: Option<Gift>) -> Loaded {
        let _span = self.span.enter();
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        let verdict = match gift {
            None => {
                tracing::error!(%gift_id, %request_id, error_code = "UNKNOWN_GIFT", "message names no gift; left for the dead-letter queue");
                Verdict::Leave(DeliveryOutcome::Poison(format!("unknown gift {gift_id}")))
            }
            Some(g) if g.status.is_terminal() => {
                tracing::info!(%gift_id, %request_id, event = "DUPLICATE", gift_status = g.status.as_str(), "duplicate delivery deleted");
                Verdict::Delete(DeliveryOutcome::Duplicate)
            }
            Some(g) if g.status == Status::Queued => return Loaded::Attempt(g),
            Some(g) => {
                tracing::error!(%gift_id, %request_id, error_code = "NOT_QUEUED", gift_status = g.status.as_str(), "message for a gift not queued; left for redelivery");
                Verdict::Leave(DeliveryOutcome::Error(format!("gift {gift_id} is {}", g.status)))
            }
        };
        Loaded::Decided(verdict)
    }

    /// A gift another batch of this worker is attempting is not attempted again. Its
    /// deliveries stay hidden until that attempt's outcome is written, and then follow it
    /// ([`GiftWork::after_holder`]): released any earlier, one could reach another worker
    /// on its final receive and fail there while the attempt here succeeds.
    pub fn in_hand_elsewhere(&self) -> Loaded {
        let _span = self.span.enter();
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        tracing::info!(%gift_id, %request_id, event = "IN_HAND", "gift in hand in another batch; waiting for its outcome");
        Loaded::Elsewhere
    }

    /// The gift as read again once the other batch's attempt has ended: finished, the
    /// deliveries are duplicates (deleted: none can be the message that batch leaves for
    /// the dead-letter queue, which the queue moves there instead of delivering it again);
    /// still QUEUED (that attempt failed, with budget left, or was abandoned), they come
    /// back after the backoff.
    pub fn after_holder(&self, gift: Option<Gift>) -> Verdict {
        match self.loaded(gift) {
            Loaded::Attempt(_) | Loaded::Elsewhere => {
                let _span = self.span.enter();
                let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
                tracing::info!(%gift_id, %request_id, event = "IN_HAND", "gift still queued after another batch's attempt; delivery delayed");
                Verdict::Retry
            }
            Loaded::Decided(verdict) => verdict,
        }
    }

    /// The lease ran out while another batch held the gift: the deliveries are left.
    pub fn outwaited(&self) -> Verdict {
        let _span = self.span.enter();
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        tracing::warn!(%gift_id, %request_id, error_code = "LEASE_EXPIRED", "the visibility ran out while another batch held the gift; delivery left");
        Verdict::Leave(DeliveryOutcome::Error("the lease ran out while another batch held the gift".into()))
    }

    pub fn store_error(&self, e: &StoreError) -> DeliveryOutcome {
        let _span = self.span.enter();
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        tracing::error!(%gift_id, %request_id, error_code = "STORE_ERROR", error_message = %e, "store error; message left for redelivery");
        DeliveryOutcome::Error(e.to_string())
    }

    /// A failed pseudo-send: final on the last receive, otherwise retried.
    pub fn failed(&self, reason: String, receive_count: u32, retry: RetryPolicy) -> Attempted {
        let _span = self.span.enter();
        if receive_count >= retry.max_receives {
            return Attempted::GiveUp(reason);
        }
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        tracing::warn!(%gift_id, %request_id, event = "RETRY", error_code = "SEND_FAILED", error_message = %reason, receive_count, "send failed; will retry");
        Attempted::Decided(Verdict::Retry)
    }

    pub fn abandoned(&self) -> Attempted {
        let _span = self.span.enter();
        let (gift_id, request_id) = (self.msg.gift_id, &self.msg.request_id);
        tracing::warn!(%gift_id, %request_id, error_code = "LEASE_EXPIRED", "pseudo-send abandoned: the message's visibility ran out");
        Attempted::Decided(Verdict::Leave(DeliveryOutcome::Error("the lease ran out during the pseudo-send".into())))
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

    fn places(work: &GiftWork) -> (usize, Vec<usize>) {
        (work.lead.at, work.in_order().iter().map(|p| p.at).collect())
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
        let (works, poison) = group(with_poison);
        assert_eq!(works.len(), 2);
        assert_eq!(places(&works[0]), (2, vec![0, 2, 3]));
        assert_eq!(places(&works[1]), (1, vec![1]));
        assert_eq!(poison.iter().map(|(p, _)| p.at).collect::<Vec<_>>(), vec![4]);
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
