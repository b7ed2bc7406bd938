//! The store model with database faults.

use std::sync::Arc;

use async_trait::async_trait;
use gift_core::domain::{Gift, GiftId, Status, Timestamp};
use gift_core::ports::{OutboxEntry, SendCommand, SendDecision, Store};
use gift_core::StoreError;
use gift_runtime::memory::MemoryStore;

use super::Ctx;
use crate::history::{Decision, Event, StoreCall};
use crate::kinds::{Counter, FaultKind};

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
        if self.ctx.fire(FaultKind::DbError) {
            return Err(unavailable("connection refused"));
        }
        if self.ctx.fire(FaultKind::DbTimeout) {
            self.ctx.timeout().await;
            return Err(unavailable("statement timeout"));
        }
        Ok(())
    }

    /// Records `call` as the model answered it; for a write, the answer may then be lost.
    fn answered<T>(&self, call: StoreCall, write: bool, answer: Result<T, StoreError>) -> Result<T, StoreError> {
        let lost = write && answer.is_ok() && self.ctx.fire(FaultKind::DbAmbiguousCommit);
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
        let stale = r.as_ref().map_or(0, |rows| rows.iter().filter(|e| e.stale).count());
        self.ctx.history.count_n(Counter::StaleRearmed, stale as u64);
        // A write: the claim may commit and its answer be lost.
        self.answered(StoreCall::OutboxClaim { entries }, true, r)
    }

    async fn outbox_published(&self, entry: &OutboxEntry, due_again: Timestamp) -> Result<(), StoreError> {
        self.before().await?;
        let r = self.inner.outbox_published(entry, due_again).await;
        let call = StoreCall::OutboxPublished { gift: entry.gift_id, key: entry.request_id.to_string() };
        self.answered(call, true, r)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.before().await
    }
}
