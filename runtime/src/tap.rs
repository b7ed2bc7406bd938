//! The effect tap: a process's port calls — store, queue, pseudo-send — as asked and as
//! answered, one JSON line each, appended to a file. The real-stack run (`gift-stack`)
//! reads these files from every process and builds the same history the simulation records
//! through its own wrappers, so one checker judges both worlds.
//!
//! The tap sits between the deciding code and the adapters: it sees what the service asked
//! for and what came back, never the service's own opinion of it. Lines from different
//! processes are ordered by their clocks, so each is stamped at the end of its call's
//! interval that keeps that order sound: the SENT and FAILED writes and the queue calls when
//! answered (they took effect no later); a read and the send transaction when answered and
//! with when they were asked (what they saw held somewhere between; the history places an
//! accepted send at its asking, since what it wrote existed no earlier). A call that ended in an error writes nothing: it may or may not
//! have happened, and the run's final database settles what did.
//!
//! Off unless `EFFECT_LOG` is set; production never sets it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gift_core::domain::SendMessage;
use gift_core::domain::{Gift, GiftId, IdempotencyKey, Status, TraceParent};
use gift_core::error::{QueueError, StoreError};
use gift_core::ports::{
    Delivery, Dispatcher, MessageId, OutboxEntry, Queue, Receipt, SendCommand, SendDecision, Store,
};
use gift_core::service::DeliveryOutcome;
use serde::{Deserialize, Serialize};

use crate::rt;

/// One line of an effect log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Microseconds since the Unix epoch.
    pub at_us: i64,
    pub node: String,
    #[serde(flatten)]
    pub effect: Effect,
}

/// What the send transaction answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decided {
    Queued,
    Replay,
    Conflict(Status),
    NotFound,
}

/// What the worker reported for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handled {
    Sent,
    LostRace,
    Duplicate,
    RetryLater,
    Failed,
    Poison,
    Error,
}

impl From<&DeliveryOutcome> for Handled {
    fn from(o: &DeliveryOutcome) -> Self {
        match o {
            DeliveryOutcome::Sent => Handled::Sent,
            DeliveryOutcome::LostRace => Handled::LostRace,
            DeliveryOutcome::Duplicate => Handled::Duplicate,
            DeliveryOutcome::RetryLater => Handled::RetryLater,
            DeliveryOutcome::Failed => Handled::Failed,
            DeliveryOutcome::Poison(_) => Handled::Poison,
            DeliveryOutcome::Error(_) => Handled::Error,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// `get_gift`/`get_gifts`, stamped when answered, with when it was asked.
    Read {
        gifts: Vec<(GiftId, Option<Status>)>,
        asked_us: i64,
    },
    RequestSend {
        gift: GiftId,
        key: String,
        decided: Decided,
        asked_us: i64,
    },
    MarkSent {
        gifts: Vec<(GiftId, bool)>,
    },
    MarkFailed {
        gift: GiftId,
        applied: bool,
    },
    Published {
        msg: String,
        gift: GiftId,
        key: String,
    },
    /// Stamped when answered, with when the (long-polling) receive was asked.
    Received {
        msg: String,
        gift: GiftId,
        key: String,
        receive_count: u32,
        asked_us: i64,
    },
    Deleted {
        msg: String,
    },
    DeleteFailed {
        msg: String,
    },
    Visibility {
        msg: String,
        delay_ms: u64,
        applied: bool,
    },
    DispatchStarted {
        attempt: u64,
        gift: GiftId,
        key: String,
        receive_count: u32,
        status: Status,
    },
    Dispatched {
        attempt: u64,
        gift: GiftId,
        ok: bool,
    },
    Handled {
        msg: String,
        receive_count: u32,
        gift: Option<GiftId>,
        outcome: Handled,
    },
    /// The worker loop returned after a graceful stop.
    Stopped,
}

/// The writer every wrapper of one process shares.
pub struct Tap {
    node: String,
    file: Mutex<File>,
    attempts: AtomicU64,
    /// Receipt → message id, so deletes and visibility changes name their message.
    receipts: Mutex<std::collections::HashMap<Receipt, String>>,
}

fn micros() -> i64 {
    rt::now_utc().timestamp_micros()
}

impl Tap {
    /// Appends to `path` as `node` (api-1, worker-2, relay-2, …).
    pub fn open(path: &Path, node: &str) -> std::io::Result<Arc<Tap>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Arc::new(Tap {
            node: node.to_owned(),
            file: Mutex::new(file),
            attempts: AtomicU64::new(0),
            receipts: Mutex::new(Default::default()),
        }))
    }

    /// The same file under another node name (the worker's relay).
    pub fn renamed(&self, node: &str) -> std::io::Result<Arc<Tap>> {
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner()).try_clone()?;
        Ok(Arc::new(Tap {
            node: node.to_owned(),
            file: Mutex::new(file),
            attempts: AtomicU64::new(0),
            receipts: Mutex::new(Default::default()),
        }))
    }

    /// One whole line per write: with `O_APPEND` it survives a `kill -9` of the process
    /// and never interleaves with another writer's line.
    pub fn write(&self, at_us: i64, effect: Effect) {
        let line = Line { at_us, node: self.node.clone(), effect };
        let Ok(mut text) = serde_json::to_string(&line) else { return };
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(text.as_bytes()) {
            tracing::warn!(error_code = "EFFECT_LOG_FAILED", error_message = %e, "effect line not written");
        }
    }

    pub fn store(self: &Arc<Self>, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(TappedStore { inner, tap: self.clone() })
    }

    pub fn queue(self: &Arc<Self>, inner: Arc<dyn Queue>) -> Arc<dyn Queue> {
        Arc::new(TappedQueue { inner, tap: self.clone() })
    }

    pub fn dispatcher(self: &Arc<Self>, inner: Arc<dyn Dispatcher>) -> Arc<dyn Dispatcher> {
        Arc::new(TappedDispatcher { inner, tap: self.clone() })
    }

    /// The worker observer's part: what the worker reported for `delivery`.
    pub fn handled(&self, delivery: &Delivery, outcome: &DeliveryOutcome) {
        let gift = SendMessage::from_body(&delivery.body).ok().map(|m| m.gift_id);
        let msg = delivery.message_id.0.clone();
        let effect = Effect::Handled { msg, receive_count: delivery.receive_count, gift, outcome: outcome.into() };
        self.write(micros(), effect);
    }

    fn message_of(&self, receipt: &Receipt) -> Option<String> {
        self.receipts.lock().unwrap_or_else(|p| p.into_inner()).get(receipt).cloned()
    }
}

struct TappedStore {
    inner: Arc<dyn Store>,
    tap: Arc<Tap>,
}

#[async_trait]
impl Store for TappedStore {
    async fn insert_gift(&self, gift: &Gift) -> Result<(), StoreError> {
        self.inner.insert_gift(gift).await
    }

    async fn get_gift(&self, id: GiftId) -> Result<Option<Gift>, StoreError> {
        let asked = micros();
        let gift = self.inner.get_gift(id).await?;
        let gifts = vec![(id, gift.as_ref().map(|g| g.status))];
        self.tap.write(micros(), Effect::Read { gifts, asked_us: asked });
        Ok(gift)
    }

    async fn get_gifts(&self, ids: &[GiftId]) -> Result<Vec<Option<Gift>>, StoreError> {
        let asked = micros();
        let gifts = self.inner.get_gifts(ids).await?;
        let read = ids.iter().zip(&gifts).map(|(id, g)| (*id, g.as_ref().map(|g| g.status))).collect();
        self.tap.write(micros(), Effect::Read { gifts: read, asked_us: asked });
        Ok(gifts)
    }

    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        // The service's own clock reading for the send, taken before the call: its outbox
        // row becomes due `PUBLISH_GRACE_MS` after it.
        let asked = cmd.now.timestamp_micros();
        let decision = self.inner.request_send(cmd).await?;
        let decided = match &decision {
            SendDecision::Queued(_) => Decided::Queued,
            SendDecision::Replay(_) => Decided::Replay,
            SendDecision::Conflict(s) => Decided::Conflict(*s),
            SendDecision::NotFound => Decided::NotFound,
        };
        let (gift, key) = (cmd.gift_id, cmd.key.to_string());
        self.tap.write(micros(), Effect::RequestSend { gift, key, decided, asked_us: asked });
        Ok(decision)
    }

    async fn mark_sent(&self, id: GiftId, now: gift_core::domain::Timestamp) -> Result<bool, StoreError> {
        let won = self.inner.mark_sent(id, now).await?;
        self.tap.write(micros(), Effect::MarkSent { gifts: vec![(id, won)] });
        Ok(won)
    }

    async fn mark_sent_all(&self, ids: &[GiftId], now: gift_core::domain::Timestamp) -> Result<Vec<bool>, StoreError> {
        let won = self.inner.mark_sent_all(ids, now).await?;
        self.tap.write(micros(), Effect::MarkSent { gifts: ids.iter().copied().zip(won.iter().copied()).collect() });
        Ok(won)
    }

    async fn mark_failed(
        &self,
        id: GiftId,
        error: &str,
        now: gift_core::domain::Timestamp,
    ) -> Result<bool, StoreError> {
        let applied = self.inner.mark_failed(id, error, now).await?;
        self.tap.write(micros(), Effect::MarkFailed { gift: id, applied });
        Ok(applied)
    }

    async fn outbox_claim(
        &self,
        now: gift_core::domain::Timestamp,
        until: gift_core::domain::Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.outbox_claim(now, until, limit).await
    }

    async fn outbox_remove(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.inner.outbox_remove(entry).await
    }

    async fn rearm_stale(
        &self,
        stale_before: gift_core::domain::Timestamp,
        now: gift_core::domain::Timestamp,
        limit: u32,
    ) -> Result<u32, StoreError> {
        self.inner.rearm_stale(stale_before, now, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

struct TappedQueue {
    inner: Arc<dyn Queue>,
    tap: Arc<Tap>,
}

#[async_trait]
impl Queue for TappedQueue {
    async fn publish(&self, body: &str, trace: Option<&TraceParent>) -> Result<MessageId, QueueError> {
        let id = self.inner.publish(body, trace).await?;
        if let Ok(m) = SendMessage::from_body(body) {
            let (msg, gift, key) = (id.0.clone(), m.gift_id, m.request_id.to_string());
            self.tap.write(micros(), Effect::Published { msg, gift, key });
        }
        Ok(id)
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let asked_us = micros();
        let deliveries = self.inner.receive(max, wait).await?;
        let at = micros();
        let mut receipts = self.tap.receipts.lock().unwrap_or_else(|p| p.into_inner());
        for d in &deliveries {
            receipts.insert(d.receipt.clone(), d.message_id.0.clone());
            if let Ok(m) = SendMessage::from_body(&d.body) {
                let (msg, gift, key) = (d.message_id.0.clone(), m.gift_id, m.request_id.to_string());
                let receive_count = d.receive_count;
                self.tap.write(at, Effect::Received { msg, gift, key, receive_count, asked_us });
            }
        }
        Ok(deliveries)
    }

    async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        let result = self.inner.delete(receipt).await;
        self.note_delete(receipt, &result);
        result
    }

    async fn delete_all(&self, receipts: &[Receipt]) -> Vec<Result<(), QueueError>> {
        let results = self.inner.delete_all(receipts).await;
        for (receipt, result) in receipts.iter().zip(&results) {
            self.note_delete(receipt, result);
        }
        results
    }

    async fn set_visibility(&self, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        let result = self.inner.set_visibility(receipt, delay).await;
        if let Some(msg) = self.tap.message_of(receipt) {
            let effect = Effect::Visibility { msg, delay_ms: delay.as_millis() as u64, applied: result.is_ok() };
            self.tap.write(micros(), effect);
        }
        result
    }

    async fn ping(&self) -> Result<(), QueueError> {
        self.inner.ping().await
    }
}

impl TappedQueue {
    /// A delete that failed is recorded too: the message stays, and a failed delete the
    /// worker reports as done is what the deliveries checker looks for.
    fn note_delete(&self, receipt: &Receipt, result: &Result<(), QueueError>) {
        let Some(msg) = self.tap.message_of(receipt) else { return };
        if result.is_ok() {
            self.tap.receipts.lock().unwrap_or_else(|p| p.into_inner()).remove(receipt);
        }
        let effect = if result.is_ok() { Effect::Deleted { msg } } else { Effect::DeleteFailed { msg } };
        self.tap.write(micros(), effect);
    }
}

struct TappedDispatcher {
    inner: Arc<dyn Dispatcher>,
    tap: Arc<Tap>,
}

#[async_trait]
impl Dispatcher for TappedDispatcher {
    async fn dispatch(&self, gift: &Gift, request_id: &IdempotencyKey, receive_count: u32) -> Result<(), String> {
        let attempt = self.tap.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let (key, status) = (request_id.to_string(), gift.status);
        let started = Effect::DispatchStarted { attempt, gift: gift.id, key, receive_count, status };
        self.tap.write(micros(), started);
        let result = self.inner.dispatch(gift, request_id, receive_count).await;
        self.tap.write(micros(), Effect::Dispatched { attempt, gift: gift.id, ok: result.is_ok() });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back_as_written() {
        let gift = GiftId::from_random(7);
        let line = Line {
            at_us: 1_700_000_000_000_001,
            node: "worker-1".into(),
            effect: Effect::RequestSend {
                gift,
                key: "k\"é".into(),
                decided: Decided::Conflict(Status::Sent),
                asked_us: 3,
            },
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(text.contains(r#""effect":"request_send""#), "{text}");
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
    }
}
