//! The simulated world's side of each port: the in-memory models wrapped with fault
//! injection and history recording, plus the test-only mutants.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gift_core::domain::{Gift, GiftId, IdempotencyKey, SendAccepted, SendMessage, Status, Timestamp};
use gift_core::ports::{Delivery, Dispatcher, OutboxEntry, Queue, Receipt, SendCommand, SendDecision, Store};
use gift_core::{QueueError, StoreError};
use gift_runtime::memory::{MemoryQueue, MemoryStore};
use gift_runtime::rt;
use madsim::rand::{thread_rng, Rng};

use crate::history::{Event, History};
use crate::world::{FaultRates, Mutant, World};

/// What every wrapper shares: the history, the fault rates, and the switch that heals.
#[derive(Clone)]
pub struct Ctx {
    pub history: History,
    rates: FaultRates,
    latency_max_ms: u64,
    faults_on: Arc<AtomicBool>,
    start: rt::Instant,
}

impl Ctx {
    pub fn new(world: &World, history: History) -> Self {
        Self {
            history,
            rates: world.faults,
            latency_max_ms: world.latency_max_ms,
            faults_on: Arc::new(AtomicBool::new(true)),
            start: rt::now_instant(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        rt::now_instant().saturating_duration_since(self.start).as_millis() as u64
    }

    pub fn record(&self, event: Event) {
        self.history.record(self.now_ms(), event);
    }

    /// Ends the safety phase: no fault fires from now on.
    pub fn heal(&self) {
        self.faults_on.store(false, Ordering::SeqCst);
    }

    /// Draws whether a fault of `kind` fires now, and records it if so.
    fn fire(&self, rate: f64, kind: &'static str) -> bool {
        if !self.faults_on.load(Ordering::SeqCst) || rate <= 0.0 {
            return false;
        }
        let fired = thread_rng().gen_bool(rate.min(1.0));
        if fired {
            self.record(Event::Fault { kind });
        }
        fired
    }

    /// A random delay up to `max_ms`, drawn only while faults are on.
    async fn lag(&self, max_ms: u64) {
        if max_ms > 0 && self.fire(self.rates.latency, "latency") {
            rt::sleep(Duration::from_millis(thread_rng().gen_range(0..=max_ms))).await;
        }
    }

    async fn timeout(&self) {
        rt::sleep(Duration::from_millis(thread_rng().gen_range(1_000..=5_000))).await;
    }
}

fn unavailable(what: &str) -> StoreError {
    StoreError::Unavailable(format!("injected: {what}"))
}

/// The store model with database faults: errors before the write, timeouts, and commits
/// whose success the caller never learns.
pub struct FaultyStore {
    inner: Arc<MemoryStore>,
    ctx: Ctx,
    mutant: Option<Mutant>,
}

impl FaultyStore {
    pub fn new(inner: Arc<MemoryStore>, ctx: Ctx, mutant: Option<Mutant>) -> Self {
        Self { inner, ctx, mutant }
    }

    async fn before(&self) -> Result<(), StoreError> {
        self.ctx.lag(self.ctx.latency_max_ms).await;
        if self.ctx.fire(self.ctx.rates.db_error, "db_error") {
            return Err(unavailable("connection refused"));
        }
        if self.ctx.fire(self.ctx.rates.db_timeout, "db_timeout") {
            self.ctx.timeout().await;
            return Err(unavailable("statement timeout"));
        }
        Ok(())
    }

    /// After a write was applied: maybe the acknowledgement is lost.
    fn after<T>(&self, value: T) -> Result<T, StoreError> {
        if self.ctx.fire(self.ctx.rates.db_ambiguous_commit, "db_ambiguous_commit") {
            Err(unavailable("connection lost during commit"))
        } else {
            Ok(value)
        }
    }

    fn status(&self, id: GiftId) -> Option<Status> {
        self.inner.gift(id).map(|g| g.status)
    }

    fn transition(&self, gift: GiftId, from: Option<Status>, applied: bool, to: Status) {
        if let (true, Some(from)) = (applied, from) {
            self.ctx.record(Event::Transition { gift, from, to });
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn insert_gift(&self, gift: &Gift) -> Result<(), StoreError> {
        self.before().await?;
        self.inner.insert_gift(gift).await?;
        self.after(())
    }

    async fn get_gift(&self, id: GiftId) -> Result<Option<Gift>, StoreError> {
        self.before().await?;
        self.inner.get_gift(id).await
    }

    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        self.before().await?;
        let seen_before = self.status(cmd.gift_id);
        if self.mutant == Some(Mutant::UnlockedSend) {
            // The broken variant reads, then writes later without holding a lock.
            rt::sleep(Duration::from_millis(thread_rng().gen_range(0..=50))).await;
        }
        let decision = self.inner.request_send(cmd).await?;
        if let SendDecision::Queued(_) = &decision {
            self.transition(cmd.gift_id, Some(Status::Created), true, Status::Queued);
        }
        let decision = match (self.mutant, seen_before, decision) {
            (Some(Mutant::UnlockedSend), Some(Status::Created), SendDecision::Conflict(Status::Queued)) => {
                // Lost update: it saw CREATED, so it believes its own write queued the gift.
                SendDecision::Queued(SendAccepted {
                    gift_id: cmd.gift_id,
                    status: Status::Queued,
                    request_id: cmd.key.clone(),
                })
            }
            (_, _, d) => d,
        };
        self.after(decision)
    }

    async fn mark_sent(&self, id: GiftId, now: Timestamp) -> Result<bool, StoreError> {
        self.before().await?;
        let from = self.status(id);
        let applied = if self.mutant == Some(Mutant::UnconditionalSent) {
            self.inner.force_status(id, Status::Sent, None, now)
        } else {
            self.inner.mark_sent(id, now).await?
        };
        self.transition(id, from, applied, Status::Sent);
        self.after(applied)
    }

    async fn mark_failed(&self, id: GiftId, error: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.before().await?;
        let from = self.status(id);
        let applied = self.inner.mark_failed(id, error, now).await?;
        self.transition(id, from, applied, Status::Failed);
        self.after(applied)
    }

    async fn outbox_due(&self, now: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.before().await?;
        self.inner.outbox_due(now, limit).await
    }

    async fn outbox_remove(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.before().await?;
        self.inner.outbox_remove(entry).await?;
        self.after(())
    }

    async fn rearm_stale(&self, stale_before: Timestamp, now: Timestamp, limit: u32) -> Result<u32, StoreError> {
        self.before().await?;
        let n = self.inner.rearm_stale(stale_before, now, limit).await?;
        for _ in 0..n {
            self.ctx.history.count("stale_rearmed");
        }
        self.after(n)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.before().await
    }
}

/// The queue model with SQS's failure modes: publishes that fail, time out, or succeed but
/// report failure; duplicate deliveries; receives SQS counted but nobody saw; failing
/// receives, deletes and visibility changes.
pub struct FaultyQueue {
    inner: Arc<MemoryQueue>,
    ctx: Ctx,
    /// Message id → receipt currently held by a worker, to notice two holders at once.
    held: Mutex<BTreeMap<String, String>>,
}

fn message_id(receipt: &str) -> String {
    receipt.split(':').next().unwrap_or_default().to_owned()
}

fn gift_of(body: &str) -> Option<SendMessage> {
    SendMessage::from_body(body).ok()
}

impl FaultyQueue {
    pub fn new(inner: Arc<MemoryQueue>, ctx: Ctx) -> Self {
        Self { inner, ctx, held: Mutex::new(BTreeMap::new()) }
    }

    async fn apply_publish(&self, body: &str) {
        self.inner.publish(body).await.expect("the model's publish cannot fail");
        if let Some(m) = gift_of(body) {
            self.ctx.record(Event::Published { gift: m.gift_id, key: m.request_id.to_string() });
        }
    }

    fn note_dead_letters(&self, before: usize) {
        for body in self.inner.dead_letters().into_iter().skip(before) {
            if let Some(m) = gift_of(&body) {
                self.ctx.record(Event::DeadLettered { gift: m.gift_id });
            }
        }
    }

    fn release(&self, receipt: &Receipt) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.get(&message_id(&receipt.0)) == Some(&receipt.0) {
            held.remove(&message_id(&receipt.0));
        }
    }
}

fn queue_down(what: &str) -> QueueError {
    QueueError::Unavailable(format!("injected: {what}"))
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn publish(&self, body: &str) -> Result<(), QueueError> {
        let r = self.ctx.rates;
        self.ctx.lag(self.ctx.latency_max_ms).await;
        if self.ctx.fire(r.publish_fail, "publish_fail") {
            return Err(queue_down("SendMessage refused"));
        }
        if self.ctx.fire(r.publish_timeout, "publish_timeout") {
            self.ctx.timeout().await;
            // A timed-out request may or may not have reached SQS.
            if thread_rng().gen_bool(0.5) {
                self.apply_publish(body).await;
            }
            return Err(queue_down("SendMessage timed out"));
        }
        self.apply_publish(body).await;
        if self.ctx.fire(r.duplicate_delivery, "duplicate_delivery") {
            self.apply_publish(body).await;
        }
        if self.ctx.fire(r.publish_lie, "publish_lie") {
            return Err(queue_down("SendMessage succeeded but the response was lost"));
        }
        Ok(())
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let r = self.ctx.rates;
        if self.ctx.fire(r.receive_error, "receive_error") {
            rt::sleep(Duration::from_millis(100)).await;
            return Err(queue_down("ReceiveMessage failed"));
        }
        let dead_before = self.inner.dead_letters().len();
        if self.ctx.fire(r.unseen_receive, "unseen_receive") {
            for d in self.inner.receive(1, Duration::ZERO).await? {
                if let Some(m) = gift_of(&d.body) {
                    self.ctx.record(Event::Received { gift: m.gift_id, receive_count: d.receive_count, seen: false });
                }
            }
        }
        let batch = self.inner.receive(max, wait).await?;
        self.note_dead_letters(dead_before);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for d in &batch {
            if held.insert(message_id(&d.receipt.0), d.receipt.0.clone()).is_some() {
                self.ctx.history.count("two_workers_hold_one_message");
            }
            if let Some(m) = gift_of(&d.body) {
                self.ctx.record(Event::Received { gift: m.gift_id, receive_count: d.receive_count, seen: true });
            }
        }
        Ok(batch)
    }

    async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.ctx.lag(self.ctx.latency_max_ms).await;
        if self.ctx.fire(self.ctx.rates.ack_error, "delete_error") {
            return Err(queue_down("DeleteMessage failed"));
        }
        self.release(receipt);
        self.inner.delete(receipt).await
    }

    async fn set_visibility(&self, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        self.ctx.lag(self.ctx.latency_max_ms).await;
        if self.ctx.fire(self.ctx.rates.ack_error, "visibility_error") {
            return Err(queue_down("ChangeMessageVisibility failed"));
        }
        self.release(receipt);
        self.inner.set_visibility(receipt, delay).await
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

/// The real pseudo-send, slowed down at random (so visibility timeouts expire mid-work)
/// and recorded. `in_progress` counts deliveries past their dispatch and not yet handled
/// on this node; the worker observer brings it back down.
pub struct RecordingDispatcher {
    pub inner: Arc<dyn Dispatcher>,
    pub ctx: Ctx,
    pub latency_max_ms: u64,
    /// Deliveries this node is in the middle of; read by the nemesis when it kills.
    pub in_progress: Arc<std::sync::atomic::AtomicU32>,
}

#[async_trait]
impl Dispatcher for RecordingDispatcher {
    async fn dispatch(&self, gift: &Gift, request_id: &IdempotencyKey, receive_count: u32) -> Result<(), String> {
        self.in_progress.fetch_add(1, Ordering::SeqCst);
        self.ctx.lag(self.latency_max_ms).await;
        let result = self.inner.dispatch(gift, request_id, receive_count).await;
        self.ctx.record(Event::Dispatched { gift: gift.id, receive_count, ok: result.is_ok() });
        result
    }
}
