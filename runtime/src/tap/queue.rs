//! The tapped queue: publishes, receives, deletes and visibility changes written down as answered.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gift_core::domain::SendMessage;
use gift_core::domain::TraceParent;
use gift_core::error::QueueError;
use gift_core::ports::{Delivery, MessageId, Queue, Receipt};

use super::{micros, Effect, Tap};

pub(super) struct TappedQueue {
    pub(super) inner: Arc<dyn Queue>,
    pub(super) tap: Arc<Tap>,
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

#[async_trait]
impl Queue for TappedQueue {
    async fn publish(&self, message: &SendMessage, trace: Option<&TraceParent>) -> Result<MessageId, QueueError> {
        let id = self.inner.publish(message, trace).await?;
        let (msg, gift, key) = (id.0.clone(), message.gift_id, message.request_id.to_string());
        self.tap.write(micros(), Effect::Published { msg, gift, key });
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
        let asked_us = micros();
        let result = self.inner.set_visibility(receipt, delay).await;
        if let Some(msg) = self.tap.message_of(receipt) {
            let effect =
                Effect::Visibility { msg, delay_ms: delay.as_millis() as u64, applied: result.is_ok(), asked_us };
            self.tap.write(micros(), effect);
        }
        result
    }

    async fn ping(&self) -> Result<(), QueueError> {
        self.inner.ping().await
    }
}
