//! The tapped store: every call passed through, the answered writes and reads written down.

use std::sync::Arc;

use async_trait::async_trait;
use gift_core::domain::{Gift, GiftId};
use gift_core::error::StoreError;
use gift_core::ports::{OutboxEntry, SendCommand, SendDecision, Store};

use super::{micros, Decided, Effect, Tap};

pub(super) struct TappedStore {
    pub(super) inner: Arc<dyn Store>,
    pub(super) tap: Arc<Tap>,
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

    async fn outbox_published(
        &self,
        entry: &OutboxEntry,
        due_again: gift_core::domain::Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.outbox_published(entry, due_again).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}
