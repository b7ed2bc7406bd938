//! The pseudo-send, recorded.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use gift_core::domain::{Gift, IdempotencyKey};
use gift_core::ports::Dispatcher;

use super::Ctx;
use crate::history::Event;

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
    pub in_progress: Arc<AtomicU32>,
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
