use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use gift_core::domain::{Gift, GiftId, IdempotencyKey, SendAccepted, Status, Timestamp, TraceParent};
use gift_core::ports::{OutboxEntry, SendCommand, SendDecision, Store};
use gift_core::StoreError;

/// A store in a mutex: every method is one critical section, which is exactly the
/// atomicity the port promises.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default, Clone)]
struct State {
    gifts: BTreeMap<GiftId, Gift>,
    codes: BTreeSet<String>,
    send_requests: BTreeSet<(GiftId, IdempotencyKey)>,
    /// (available_at, gift, key, trace): ordered the way `outbox_due` returns them.
    outbox: BTreeSet<(Timestamp, GiftId, IdempotencyKey, Option<TraceParent>)>,
    /// The relay's claims on outbox rows: until when each is held.
    claims: BTreeMap<(GiftId, IdempotencyKey), Timestamp>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (no await inside), so poison is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every gift, for checkers and tests.
    pub fn gifts(&self) -> Vec<Gift> {
        self.lock().gifts.values().cloned().collect()
    }

    /// One gift, read synchronously (no await point), for checkers and tests.
    pub fn gift(&self, id: GiftId) -> Option<Gift> {
        self.lock().gifts.get(&id).cloned()
    }

    /// Outbox rows still waiting, for checkers and tests.
    pub fn outbox_len(&self) -> usize {
        self.lock().outbox.len()
    }

    /// The conditional update of the worker: only a QUEUED gift moves.
    fn set_status(&self, id: GiftId, to: Status, error: Option<&str>, now: Timestamp) -> bool {
        let mut st = self.lock();
        let Some(g) = st.gifts.get_mut(&id) else { return false };
        if g.status != Status::Queued {
            return false;
        }
        g.status = to;
        g.updated_at = now;
        if let Some(e) = error {
            g.last_error = Some(e.to_owned());
        }
        true
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_gift(&self, gift: &Gift) -> Result<(), StoreError> {
        let mut st = self.lock();
        if st.codes.contains(gift.code.as_str()) {
            return Err(StoreError::CodeTaken);
        }
        if st.gifts.contains_key(&gift.id) {
            return Err(StoreError::Other(format!("duplicate gift id {}", gift.id)));
        }
        st.codes.insert(gift.code.as_str().to_owned());
        st.gifts.insert(gift.id, gift.clone());
        Ok(())
    }

    async fn get_gift(&self, id: GiftId) -> Result<Option<Gift>, StoreError> {
        Ok(self.lock().gifts.get(&id).cloned())
    }

    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        let mut st = self.lock();
        let Some(status) = st.gifts.get(&cmd.gift_id).map(|g| g.status) else {
            return Ok(SendDecision::NotFound);
        };
        let accepted = SendAccepted { gift_id: cmd.gift_id, status: Status::Queued, request_id: cmd.key.clone() };
        if st.send_requests.contains(&(cmd.gift_id, cmd.key.clone())) {
            return Ok(SendDecision::Replay(accepted));
        }
        if status != Status::Created {
            return Ok(SendDecision::Conflict(status));
        }
        st.send_requests.insert((cmd.gift_id, cmd.key.clone()));
        st.outbox.insert((cmd.outbox_available_at, cmd.gift_id, cmd.key.clone(), cmd.trace));
        let g = st.gifts.get_mut(&cmd.gift_id).expect("checked above");
        g.status = Status::Queued;
        g.updated_at = cmd.now;
        Ok(SendDecision::Queued(accepted))
    }

    async fn mark_sent(&self, id: GiftId, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self.set_status(id, Status::Sent, None, now))
    }

    async fn mark_failed(&self, id: GiftId, error: &str, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self.set_status(id, Status::Failed, Some(error), now))
    }

    async fn outbox_claim(&self, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut st = self.lock();
        let st = &mut *st;
        let claimed: Vec<OutboxEntry> = st
            .outbox
            .iter()
            .take_while(|(at, _, _, _)| *at <= now)
            .filter(|(_, g, k, _)| st.claims.get(&(*g, k.clone())).is_none_or(|c| *c <= now))
            .take(limit as usize)
            .map(|(_, gift_id, key, trace)| OutboxEntry { gift_id: *gift_id, request_id: key.clone(), trace: *trace })
            .collect();
        for entry in &claimed {
            st.claims.insert((entry.gift_id, entry.request_id.clone()), until);
        }
        Ok(claimed)
    }

    async fn outbox_remove(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let mut st = self.lock();
        st.outbox.retain(|(_, g, k, _)| !(*g == entry.gift_id && *k == entry.request_id));
        st.claims.remove(&(entry.gift_id, entry.request_id.clone()));
        Ok(())
    }

    async fn rearm_stale(&self, stale_before: Timestamp, now: Timestamp, limit: u32) -> Result<u32, StoreError> {
        let mut st = self.lock();
        let armed: BTreeSet<GiftId> = st.outbox.iter().map(|(_, g, _, _)| *g).collect();
        let stale: Vec<GiftId> = st
            .gifts
            .values()
            .filter(|g| g.status == Status::Queued && g.updated_at < stale_before && !armed.contains(&g.id))
            .map(|g| g.id)
            .take(limit as usize)
            .collect();
        for id in &stale {
            // The gift's accepted key: a QUEUED gift has exactly one send request.
            let key = st
                .send_requests
                .range((*id, IdempotencyKey::parse("!").expect("valid"))..)
                .find(|(g, _)| g == id)
                .map(|(_, k)| k.clone())
                .ok_or_else(|| StoreError::Other(format!("QUEUED gift {id} has no send request")))?;
            st.outbox.insert((now, *id, key, None));
            st.gifts.get_mut(id).expect("listed above").updated_at = now;
        }
        Ok(stale.len() as u32)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
