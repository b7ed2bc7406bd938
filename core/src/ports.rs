//! The traits every effect goes through. Services are written against these only, so the
//! same code runs on Postgres + SQS, on the embedded SQLite adapters, and inside madsim.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{Gift, GiftId, IdempotencyKey, SendAccepted, SendMessage, Status, Timestamp, TraceParent};
use crate::error::{QueueError, StoreError};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Time and randomness. Production reads the real clock and OS randomness; the simulation
/// answers from the seed. Deciding code must take both from here and nowhere else.
pub trait Env: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
    fn random_u64(&self) -> u64;
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;

    fn random_u128(&self) -> u128 {
        (u128::from(self.random_u64()) << 64) | u128::from(self.random_u64())
    }

    /// A uniform draw in `[0, 1)`.
    fn random_unit(&self) -> f64 {
        (self.random_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The command the send transaction executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendCommand {
    pub gift_id: GiftId,
    pub key: IdempotencyKey,
    pub now: Timestamp,
    /// When the relay may publish the outbox row if the API's own publish has not removed it.
    pub outbox_available_at: Timestamp,
    /// The request's trace, kept with the outbox row so the relay's publish continues it.
    pub trace: Option<TraceParent>,
}

/// What the send transaction decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// CREATED → QUEUED, the send request and the outbox row were written in one transaction.
    Queued(SendAccepted),
    /// This `(gift_id, key)` was accepted before; nothing was written.
    Replay(SendAccepted),
    /// The gift is not CREATED and the key is new.
    Conflict(Status),
    NotFound,
}

/// The outbox row of a QUEUED gift: its queue message is still to be published, or was
/// published and is due again at the stale deadline in case the message was lost. The row
/// lives from the send that queues the gift to the update that settles it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutboxEntry {
    pub gift_id: GiftId,
    pub request_id: IdempotencyKey,
    /// The accepting request's trace.
    pub trace: Option<TraceParent>,
    /// The row's message was published before: the gift outlived its stale deadline still
    /// QUEUED, so that message is presumed lost. Only a claim sets it.
    pub stale: bool,
}

/// Persistent state: gifts, send requests, and the outbox. Every method is atomic.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a CREATED gift. `Err(CodeTaken)` when its code exists already.
    async fn insert_gift(&self, gift: &Gift) -> Result<(), StoreError>;

    async fn get_gift(&self, id: GiftId) -> Result<Option<Gift>, StoreError>;

    /// The gifts of `ids`, in the order asked (`None` for an unknown id): the worker loads a
    /// received batch at once. The default asks one by one; PostgreSQL answers in one
    /// round trip.
    async fn get_gifts(&self, ids: &[GiftId]) -> Result<Vec<Option<Gift>>, StoreError> {
        let mut gifts = Vec::with_capacity(ids.len());
        for &id in ids {
            gifts.push(self.get_gift(id).await?);
        }
        Ok(gifts)
    }

    /// The send transaction: lock the gift row, replay a known key, re-check CREATED, insert
    /// the send request and the outbox row, set QUEUED — all or nothing.
    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError>;

    /// `QUEUED → SENT` if still QUEUED, removing the gift's outbox row in the same step;
    /// `Ok(false)` means someone else finished it first.
    async fn mark_sent(&self, id: GiftId, now: Timestamp) -> Result<bool, StoreError>;

    /// [`Store::mark_sent`] for each of `ids`, answered in the order asked; an id listed
    /// twice is won at most once, not necessarily by its first place (the one-by-one
    /// default may see it queued only between the two). Each gift's update is atomic on its
    /// own; after an error some of them may have been applied, which a redelivery finds
    /// finished, as after an answer lost in transit. The default updates one by one;
    /// PostgreSQL runs one statement and one commit for the lot.
    async fn mark_sent_all(&self, ids: &[GiftId], now: Timestamp) -> Result<Vec<bool>, StoreError> {
        let mut won = Vec::with_capacity(ids.len());
        for &id in ids {
            won.push(self.mark_sent(id, now).await?);
        }
        Ok(won)
    }

    /// `QUEUED → FAILED` with `last_error` if still QUEUED, removing the gift's outbox row in
    /// the same step.
    async fn mark_failed(&self, id: GiftId, error: &str, now: Timestamp) -> Result<bool, StoreError>;

    /// Claims up to `limit` outbox rows due at `now` (`available_at <= now`, and no claim
    /// running past `now`), oldest first, until `until`: a concurrent claim (another
    /// worker's relay) passes them over, and a row whose publish never lands is due again
    /// when its claim lapses. A claim whose `until` is not after `now` reads what is due and
    /// holds nothing.
    async fn outbox_claim(&self, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Records that the row's message is on the queue, which ends any claim on the row: the
    /// row stays while its gift is QUEUED, due again at `due_again` (the stale deadline), when a gift still QUEUED is
    /// presumed to have lost its message and the relay publishes it again. A row already gone
    /// (the gift settled) is not an error. A store may return before the row has moved
    /// (PostgreSQL batches these writes off the request's path); until it has, the relay may
    /// publish the row again after its grace period, a duplicate the worker ignores, as after
    /// a write that fails.
    async fn outbox_published(&self, entry: &OutboxEntry, due_again: Timestamp) -> Result<(), StoreError>;

    /// Cheap round trip for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// An opaque handle to one receipt of a message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Receipt(pub String);

/// The queue's own id of a message (SQS `MessageId`): the same on every receipt of it, so
/// log lines and the real-stack history can follow one message from publish to delete.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub String);

/// One receipt of a queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: MessageId,
    /// Raw body; the worker parses it so a poison message is its decision, not the adapter's.
    pub body: String,
    pub receipt: Receipt,
    /// SQS `ApproximateReceiveCount`: 1 on the first receive.
    pub receive_count: u32,
    /// The trace the message was published in (its `traceparent` attribute), if any.
    pub trace: Option<TraceParent>,
}

/// An SQS-like queue: at-least-once, visibility timeout, receive count, dead-letter after
/// the maximum number of receives.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Publishes `message` (its body is [`SendMessage::to_body`]); `trace` travels with it
    /// as the message's `traceparent` attribute and comes back on each [`Delivery`].
    async fn publish(&self, message: &SendMessage, trace: Option<&TraceParent>) -> Result<MessageId, QueueError>;
    /// Waits up to `wait` for at least one message; returns at most `max`.
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError>;
    async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError>;

    /// [`Queue::delete`] for each receipt, answered in the order given: the worker deletes
    /// a handled batch at once. The default deletes one by one; SQS takes up to ten per
    /// `DeleteMessageBatch` request.
    async fn delete_all(&self, receipts: &[Receipt]) -> Vec<Result<(), QueueError>> {
        let mut results = Vec::with_capacity(receipts.len());
        for receipt in receipts {
            results.push(self.delete(receipt).await);
        }
        results
    }
    /// Makes the message visible again after `delay` (zero releases it at once).
    async fn set_visibility(&self, receipt: &Receipt, delay: Duration) -> Result<(), QueueError>;
    async fn ping(&self) -> Result<(), QueueError>;
}

/// The pseudo-send: the stand-in for e-mail/SMS delivery.
#[async_trait]
pub trait Dispatcher: Send + Sync + 'static {
    /// `Err(reason)` when the send failed.
    async fn dispatch(&self, gift: &Gift, request_id: &IdempotencyKey, receive_count: u32) -> Result<(), String>;
}
