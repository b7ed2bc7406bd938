//! The queue model with SQS's failure modes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gift_core::domain::{SendMessage, TraceParent};
use gift_core::ports::{Delivery, MessageId, Queue, Receipt};
use gift_core::QueueError;
use gift_runtime::memory::MemoryQueue;
use gift_runtime::rt;
use madsim::rand::{thread_rng, Rng};

use super::Ctx;
use crate::history::Event;
use crate::kinds::{Counter, FaultKind};

/// The queue model with SQS's failure modes: publishes that fail, time out, or succeed but
/// report failure; duplicate deliveries; receives SQS counted but nobody saw; failing
/// receives, deletes and visibility changes. Every change to a message is recorded.
pub struct FaultyQueue {
    inner: Arc<MemoryQueue>,
    ctx: Ctx,
    /// Message → receipt currently held by a worker (shared by every node's wrapper), to
    /// notice two holders at once.
    held: Arc<Mutex<BTreeMap<u64, Receipt>>>,
    /// Dead letters already recorded (shared: concurrent receives see the same ones).
    dead_noted: Arc<Mutex<usize>>,
}

fn gift_of(body: &str) -> Option<SendMessage> {
    SendMessage::from_body(body).ok()
}

impl FaultyQueue {
    pub fn new(inner: Arc<MemoryQueue>, ctx: Ctx) -> Self {
        Self { inner, ctx, held: Arc::default(), dead_noted: Arc::default() }
    }

    /// The same queue, for the calls of `node`.
    pub fn on(&self, node: &str) -> Self {
        Self {
            inner: self.inner.clone(),
            ctx: self.ctx.on(node),
            held: self.held.clone(),
            dead_noted: self.dead_noted.clone(),
        }
    }

    fn apply_publish(&self, message: &SendMessage) -> MessageId {
        let msg = self.inner.enqueue(&message.to_body());
        let (gift, key) = (message.gift_id, message.request_id.to_string());
        self.ctx.record(Event::Published { node: self.ctx.node(), msg, gift, key });
        MessageId(msg.to_string())
    }

    fn note_dead_letters(&self) {
        let mut noted = self.dead_noted.lock().unwrap_or_else(|p| p.into_inner());
        let dead = self.inner.dead_lettered();
        let before = std::mem::replace(&mut *noted, dead.len());
        for (msg, body) in dead.into_iter().skip(before) {
            if let Some(m) = gift_of(&body) {
                self.ctx.record(Event::DeadLettered { msg, gift: m.gift_id });
            }
        }
    }

    fn note_received(&self, d: &Delivery, seen: bool) -> Option<u64> {
        let msg = MemoryQueue::message_of(&d.receipt)?;
        if let Some(m) = gift_of(&d.body) {
            let (node, gift, key) = (self.ctx.node(), m.gift_id, m.request_id.to_string());
            self.ctx.record(Event::Received { node, msg, gift, key, receive_count: d.receive_count, seen });
        }
        Some(msg)
    }

    fn release(&self, msg: u64, receipt: &Receipt) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.get(&msg) == Some(receipt) {
            held.remove(&msg);
        }
    }
}

fn queue_down(what: &str) -> QueueError {
    QueueError::Unavailable(format!("injected: {what}"))
}

#[async_trait]
impl Queue for FaultyQueue {
    /// The simulated requests carry no trace, so none is kept.
    async fn publish(&self, message: &SendMessage, _trace: Option<&TraceParent>) -> Result<MessageId, QueueError> {
        self.ctx.lag(self.ctx.latency_max_ms).await;
        if self.ctx.fire(FaultKind::PublishFail) {
            return Err(queue_down("SendMessage refused"));
        }
        if self.ctx.fire(FaultKind::PublishTimeout) {
            self.ctx.timeout().await;
            // A timed-out request may or may not have reached SQS.
            if thread_rng().gen_bool(0.5) {
                self.apply_publish(message);
            }
            return Err(queue_down("SendMessage timed out"));
        }
        let id = self.apply_publish(message);
        if self.ctx.fire(FaultKind::DuplicateDelivery) {
            self.apply_publish(message);
        }
        if self.ctx.fire(FaultKind::PublishLie) {
            return Err(queue_down("SendMessage succeeded but the response was lost"));
        }
        Ok(id)
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        if self.ctx.fire(FaultKind::ReceiveError) {
            rt::sleep(Duration::from_millis(100)).await;
            return Err(queue_down("ReceiveMessage failed"));
        }
        if self.ctx.fire(FaultKind::UnseenReceive) {
            for d in self.inner.receive(1, Duration::ZERO).await? {
                self.note_received(&d, false);
            }
        }
        let batch = self.inner.receive(max, wait).await?;
        self.note_dead_letters();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for d in &batch {
            if let Some(msg) = self.note_received(d, true) {
                if held.insert(msg, d.receipt.clone()).is_some() {
                    self.ctx.history.count(Counter::TwoWorkersHoldOneMessage);
                }
            }
        }
        Ok(batch)
    }

    async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.ctx.lag(self.ctx.latency_max_ms).await;
        if self.ctx.fire(FaultKind::DeleteError) {
            if let Some(msg) = MemoryQueue::message_of(receipt) {
                self.ctx.record(Event::DeleteFailed { node: self.ctx.node(), msg });
            }
            return Err(queue_down("DeleteMessage failed"));
        }
        let r = self.inner.delete(receipt).await;
        if let (Ok(()), Some(msg)) = (&r, MemoryQueue::message_of(receipt)) {
            self.release(msg, receipt);
            self.ctx.record(Event::Deleted { node: self.ctx.node(), msg });
        }
        r
    }

    async fn set_visibility(&self, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        let msg = MemoryQueue::message_of(receipt);
        let (node, delay_ms) = (self.ctx.node(), delay.as_millis() as u64);
        let answered = |applied: bool| {
            if let Some(msg) = msg {
                self.ctx.record(Event::Visibility { node: node.clone(), msg, delay_ms, applied });
            }
        };
        if let Some(msg) = msg {
            self.ctx.record(Event::VisibilityAsked { node: node.clone(), msg, delay_ms });
        }
        self.ctx.lag(self.ctx.latency_max_ms).await;
        if self.ctx.fire(FaultKind::VisibilityError) {
            // Answered, and not applied: a failed renewal is no renewal in flight.
            answered(false);
            return Err(queue_down("ChangeMessageVisibility failed"));
        }
        let r = self.inner.set_visibility(receipt, delay).await;
        if let (Ok(()), Some(msg)) = (&r, msg) {
            self.release(msg, receipt);
        }
        answered(r.is_ok());
        r
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}
