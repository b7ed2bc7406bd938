//! The tapped pseudo-send: each attempt written down as it starts and as it ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use gift_core::domain::{Gift, IdempotencyKey};
use gift_core::ports::Dispatcher;

use super::{micros, Effect, Tap};

pub(super) struct TappedDispatcher {
    pub(super) inner: Arc<dyn Dispatcher>,
    pub(super) tap: Arc<Tap>,
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
