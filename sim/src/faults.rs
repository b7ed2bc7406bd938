//! The simulated world's side of each port: the in-memory models wrapped with fault
//! injection and with the recording of every call. Each node gets its own wrappers (over
//! the one shared model), so the history says who asked what.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gift_core::domain::{Gift, GiftId, IdempotencyKey, SendMessage, Status, Timestamp, TraceParent};
use gift_core::ports::{
    Delivery, Dispatcher, MessageId, OutboxEntry, Queue, Receipt, SendCommand, SendDecision, Store,
};
use gift_core::{QueueError, StoreError};
use gift_runtime::memory::{MemoryQueue, MemoryStore};
use gift_runtime::rt;
use madsim::rand::{thread_rng, Rng};

use crate::history::{Decision, Event, History, StoreCall};
use crate::world::{FaultRates, World};

/// What every wrapper shares: the history, the fault rates, the switch that heals, and
/// the name of the node whose calls these are.
#[derive(Clone)]
pub struct Ctx {
    pub history: History,
    rates: FaultRates,
    latency_max_ms: u64,
    faults_on: Arc<AtomicBool>,
    start: rt::Instant,
    node: Arc<str>,
}

impl Ctx {
    pub fn new(world: &World, history: History) -> Self {
        Self {
            history,
            rates: world.faults,
            latency_max_ms: world.latency_max_ms,
            faults_on: Arc::new(AtomicBool::new(true)),
            start: rt::now_instant(),
            node: Arc::from("main"),
        }
    }

    /// The same world, for the calls of `node`.
    pub fn on(&self, node: &str) -> Self {
        Self { node: Arc::from(node), ..self.clone() }
    }

    pub fn node(&self) -> String {
        self.node.to_string()
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

/// The store model with database faults: errors before the call, timeouts, and commits
/// whose answer the caller never hears. Every call that reaches the model is recorded
/// with the model's answer, right where the model answered (its methods never yield).
pub struct FaultyStore {
    inner: Arc<MemoryStore>,
    ctx: Ctx,
}

impl FaultyStore {
    pub fn new(inner: Arc<MemoryStore>, ctx: Ctx) -> Self {
        Self { inner, ctx }
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

    /// Records `call` as the model answered it; for a write, the answer may then be lost.
    fn answered<T>(&self, call: StoreCall, write: bool, answer: Result<T, StoreError>) -> Result<T, StoreError> {
        let lost = write && answer.is_ok() && self.ctx.fire(self.ctx.rates.db_ambiguous_commit, "db_ambiguous_commit");
        self.ctx.record(Event::Store { node: self.ctx.node(), call, heard: !lost });
        if lost {
            Err(unavailable("connection lost during commit"))
        } else {
            answer
        }
    }
}

fn decision(d: &Result<SendDecision, StoreError>) -> Decision {
    match d {
        Ok(SendDecision::Queued(_)) => Decision::Queued,
        Ok(SendDecision::Replay(_)) => Decision::Replay,
        Ok(SendDecision::Conflict(s)) => Decision::Conflict(*s),
        Ok(SendDecision::NotFound) => Decision::NotFound,
        Err(_) => Decision::Error,
    }
}

fn statuses(ids: &[GiftId], gifts: &Result<Vec<Option<Gift>>, StoreError>) -> Vec<(GiftId, Option<Status>)> {
    match gifts {
        Ok(gifts) => ids.iter().zip(gifts).map(|(id, g)| (*id, g.as_ref().map(|g| g.status))).collect(),
        Err(_) => Vec::new(),
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn insert_gift(&self, gift: &Gift) -> Result<(), StoreError> {
        self.before().await?;
        let r = self.inner.insert_gift(gift).await;
        self.answered(StoreCall::Insert { gift: gift.id, applied: r.is_ok() }, true, r)
    }

    async fn get_gift(&self, id: GiftId) -> Result<Option<Gift>, StoreError> {
        self.before().await?;
        let r = self.inner.get_gift(id).await;
        let status = r.as_ref().ok().and_then(|g| g.as_ref().map(|g| g.status));
        self.answered(StoreCall::Read { gifts: vec![(id, status)], asked_ms: None }, false, r)
    }

    async fn get_gifts(&self, ids: &[GiftId]) -> Result<Vec<Option<Gift>>, StoreError> {
        self.before().await?;
        let r = self.inner.get_gifts(ids).await;
        self.answered(StoreCall::Read { gifts: statuses(ids, &r), asked_ms: None }, false, r)
    }

    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        let asked_ms = self.ctx.now_ms();
        self.before().await?;
        let r = self.inner.request_send(cmd).await;
        let (gift, key) = (cmd.gift_id, cmd.key.to_string());
        let call = StoreCall::RequestSend { gift, key, decision: decision(&r), asked_ms };
        self.answered(call, true, r)
    }

    async fn mark_sent(&self, id: GiftId, now: Timestamp) -> Result<bool, StoreError> {
        self.before().await?;
        let r = self.inner.mark_sent(id, now).await;
        let won = *r.as_ref().unwrap_or(&false);
        self.answered(StoreCall::MarkSent { gifts: vec![(id, won)] }, true, r)
    }

    async fn mark_sent_all(&self, ids: &[GiftId], now: Timestamp) -> Result<Vec<bool>, StoreError> {
        self.before().await?;
        let r = self.inner.mark_sent_all(ids, now).await;
        let won = r.as_ref().map(|w| ids.iter().copied().zip(w.iter().copied()).collect()).unwrap_or_default();
        self.answered(StoreCall::MarkSent { gifts: won }, true, r)
    }

    async fn mark_failed(&self, id: GiftId, error: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.before().await?;
        let r = self.inner.mark_failed(id, error, now).await;
        let applied = *r.as_ref().unwrap_or(&false);
        self.answered(StoreCall::MarkFailed { gift: id, applied }, true, r)
    }

    async fn outbox_claim(&self, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.before().await?;
        let r = self.inner.outbox_claim(now, until, limit).await;
        let entries = r.as_ref().map_or(0, Vec::len);
        // A write: the claim may commit and its answer be lost.
        self.answered(StoreCall::OutboxClaim { entries }, true, r)
    }

    async fn outbox_remove(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.before().await?;
        let r = self.inner.outbox_remove(entry).await;
        let call = StoreCall::OutboxRemove { gift: entry.gift_id, key: entry.request_id.to_string() };
        self.answered(call, true, r)
    }

    async fn rearm_stale(&self, stale_before: Timestamp, now: Timestamp, limit: u32) -> Result<u32, StoreError> {
        self.before().await?;
        let r = self.inner.rearm_stale(stale_before, now, limit).await;
        let count = *r.as_ref().unwrap_or(&0);
        self.ctx.history.count_n("stale_rearmed", u64::from(count));
        self.answered(StoreCall::Rearm { count }, true, r)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.before().await
    }
}

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

    fn apply_publish(&self, body: &str) -> MessageId {
        let msg = self.inner.enqueue(body);
        if let Some(m) = gift_of(body) {
            let (gift, key) = (m.gift_id, m.request_id.to_string());
            self.ctx.record(Event::Published { node: self.ctx.node(), msg, gift, key });
        }
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
    async fn publish(&self, body: &str, _trace: Option<&TraceParent>) -> Result<MessageId, QueueError> {
        let r = self.ctx.rates;
        self.ctx.lag(self.ctx.latency_max_ms).await;
        if self.ctx.fire(r.publish_fail, "publish_fail") {
            return Err(queue_down("SendMessage refused"));
        }
        if self.ctx.fire(r.publish_timeout, "publish_timeout") {
            self.ctx.timeout().await;
            // A timed-out request may or may not have reached SQS.
            if thread_rng().gen_bool(0.5) {
                self.apply_publish(body);
            }
            return Err(queue_down("SendMessage timed out"));
        }
        let id = self.apply_publish(body);
        if self.ctx.fire(r.duplicate_delivery, "duplicate_delivery") {
            self.apply_publish(body);
        }
        if self.ctx.fire(r.publish_lie, "publish_lie") {
            return Err(queue_down("SendMessage succeeded but the response was lost"));
        }
        Ok(id)
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let r = self.ctx.rates;
        if self.ctx.fire(r.receive_error, "receive_error") {
            rt::sleep(Duration::from_millis(100)).await;
            return Err(queue_down("ReceiveMessage failed"));
        }
        if self.ctx.fire(r.unseen_receive, "unseen_receive") {
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
                    self.ctx.history.count("two_workers_hold_one_message");
                }
            }
        }
        Ok(batch)
    }

    async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.ctx.lag(self.ctx.latency_max_ms).await;
        if self.ctx.fire(self.ctx.rates.ack_error, "delete_error") {
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
        self.ctx.lag(self.ctx.latency_max_ms).await;
        if self.ctx.fire(self.ctx.rates.ack_error, "visibility_error") {
            return Err(queue_down("ChangeMessageVisibility failed"));
        }
        let r = self.inner.set_visibility(receipt, delay).await;
        if let Some(msg) = MemoryQueue::message_of(receipt) {
            if r.is_ok() {
                self.release(msg, receipt);
            }
            let (node, delay_ms) = (self.ctx.node(), delay.as_millis() as u64);
            self.ctx.record(Event::Visibility { node, msg, delay_ms, applied: r.is_ok() });
        }
        r
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

/// The real pseudo-send, slowed down at random (so visibility timeouts expire mid-work)
/// and recorded from its start to its outcome. A pseudo-send whose future is dropped (its
/// node killed, its lease run out) records no outcome: it did not happen. `in_progress`
/// counts deliveries past their dispatch and not yet handled on this node; the worker
/// observer brings it back down.
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
        let (node, attempt) = (self.ctx.node(), self.ctx.history.next_attempt());
        let (key, status) = (request_id.to_string(), gift.status);
        self.ctx.record(Event::DispatchStarted {
            node: node.clone(),
            attempt,
            gift: gift.id,
            key,
            receive_count,
            status,
        });
        self.ctx.lag(self.latency_max_ms).await;
        let result = self.inner.dispatch(gift, request_id, receive_count).await;
        self.ctx.record(Event::Dispatched { node, attempt, gift: gift.id, ok: result.is_ok() });
        result
    }
}
