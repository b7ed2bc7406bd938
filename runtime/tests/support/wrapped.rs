//! A store that passes each call on to another but for those a test changes: the test
//! implements [`Wrap`] with only those, and [`Wrapped`] makes it a [`Store`]. Every other
//! call reaches the inner store as made, batched calls included, so a planted bug changes
//! one thing and nothing else. [`WrapQueue`] and [`WrappedQueue`] do the same for a queue.

use std::time::Duration;

use async_trait::async_trait;
use gift_core::domain::{Gift, GiftId, SendMessage, Timestamp, TraceParent};
use gift_core::ports::{Delivery, MessageId, OutboxEntry, Queue, Receipt, SendCommand, SendDecision, Store};
use gift_core::{QueueError, StoreError};

#[async_trait]
pub trait Wrap: Send + Sync + 'static {
    fn inner(&self) -> &dyn Store;

    async fn insert_gift(&self, gift: &Gift) -> Result<(), StoreError> {
        self.inner().insert_gift(gift).await
    }
    async fn get_gift(&self, id: GiftId) -> Result<Option<Gift>, StoreError> {
        self.inner().get_gift(id).await
    }
    async fn get_gifts(&self, ids: &[GiftId]) -> Result<Vec<Option<Gift>>, StoreError> {
        self.inner().get_gifts(ids).await
    }
    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        self.inner().request_send(cmd).await
    }
    async fn mark_sent(&self, id: GiftId, now: Timestamp) -> Result<bool, StoreError> {
        self.inner().mark_sent(id, now).await
    }
    async fn mark_sent_all(&self, ids: &[GiftId], now: Timestamp) -> Result<Vec<bool>, StoreError> {
        self.inner().mark_sent_all(ids, now).await
    }
    async fn mark_failed(&self, id: GiftId, error: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.inner().mark_failed(id, error, now).await
    }
    async fn outbox_claim(&self, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner().outbox_claim(now, until, limit).await
    }
    async fn outbox_published(&self, entry: &OutboxEntry, due_again: Timestamp) -> Result<(), StoreError> {
        self.inner().outbox_published(entry, due_again).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner().ping().await
    }
}

/// A [`Wrap`] as a [`Store`].
pub struct Wrapped<W>(pub W);

impl<W> std::ops::Deref for Wrapped<W> {
    type Target = W;
    fn deref(&self) -> &W {
        &self.0
    }
}

#[async_trait]
impl<W: Wrap> Store for Wrapped<W> {
    async fn insert_gift(&self, gift: &Gift) -> Result<(), StoreError> {
        self.0.insert_gift(gift).await
    }
    async fn get_gift(&self, id: GiftId) -> Result<Option<Gift>, StoreError> {
        self.0.get_gift(id).await
    }
    async fn get_gifts(&self, ids: &[GiftId]) -> Result<Vec<Option<Gift>>, StoreError> {
        self.0.get_gifts(ids).await
    }
    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        self.0.request_send(cmd).await
    }
    async fn mark_sent(&self, id: GiftId, now: Timestamp) -> Result<bool, StoreError> {
        self.0.mark_sent(id, now).await
    }
    async fn mark_sent_all(&self, ids: &[GiftId], now: Timestamp) -> Result<Vec<bool>, StoreError> {
        self.0.mark_sent_all(ids, now).await
    }
    async fn mark_failed(&self, id: GiftId, error: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.0.mark_failed(id, error, now).await
    }
    async fn outbox_claim(&self, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.0.outbox_claim(now, until, limit).await
    }
    async fn outbox_published(&self, entry: &OutboxEntry, due_again: Timestamp) -> Result<(), StoreError> {
        self.0.outbox_published(entry, due_again).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
}

#[async_trait]
pub trait WrapQueue: Send + Sync + 'static {
    fn inner(&self) -> &dyn Queue;

    async fn publish(&self, message: &SendMessage, trace: Option<&TraceParent>) -> Result<MessageId, QueueError> {
        self.inner().publish(message, trace).await
    }
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.inner().receive(max, wait).await
    }
    async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.inner().delete(receipt).await
    }
    async fn delete_all(&self, receipts: &[Receipt]) -> Vec<Result<(), QueueError>> {
        self.inner().delete_all(receipts).await
    }
    async fn set_visibility(&self, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        self.inner().set_visibility(receipt, delay).await
    }
    async fn ping(&self) -> Result<(), QueueError> {
        self.inner().ping().await
    }
}

/// A [`WrapQueue`] as a [`Queue`].
pub struct WrappedQueue<W>(pub W);

impl<W> std::ops::Deref for WrappedQueue<W> {
    type Target = W;
    fn deref(&self) -> &W {
        &self.0
    }
}

#[async_trait]
impl<W: WrapQueue> Queue for WrappedQueue<W> {
    async fn publish(&self, message: &SendMessage, trace: Option<&TraceParent>) -> Result<MessageId, QueueError> {
        self.0.publish(message, trace).await
    }
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.0.receive(max, wait).await
    }
    async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.0.delete(receipt).await
    }
    async fn delete_all(&self, receipts: &[Receipt]) -> Vec<Result<(), QueueError>> {
        self.0.delete_all(receipts).await
    }
    async fn set_visibility(&self, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        self.0.set_visibility(receipt, delay).await
    }
    async fn ping(&self) -> Result<(), QueueError> {
        self.0.ping().await
    }
}
