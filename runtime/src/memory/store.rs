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
    outbox: BTreeMap<(GiftId, IdempotencyKey), OutboxRow>,
}

#[derive(Clone)]
struct OutboxRow {
    available_at: Timestamp,
    trace: Option<TraceParent>,
    /// Whether the row's message was published before.
    published: bool,
    /// Until when the relay's claim holds the row.
    claimed_until: Option<Timestamp>,
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

    /// The outbox rows of `id`, each with when it is due, for checkers and tests.
    pub fn outbox_of(&self, id: GiftId) -> Vec<(IdempotencyKey, Timestamp)> {
        let st = self.lock();
        st.outbox.iter().filter(|((g, _), _)| *g == id).map(|((_, k), row)| (k.clone(), row.available_at)).collect()
    }

    /// The conditional update of the worker: only a QUEUED gift moves, and its outbox row
    /// goes with the move.
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
        st.outbox.retain(|(g, _), _| *g != id);
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
        let row = OutboxRow {
            available_at: cmd.outbox_available_at,
            trace: cmd.trace,
            published: false,
            claimed_until: None,
        };
        st.outbox.insert((cmd.gift_id, cmd.key.clone()), row);
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
        let mut due: Vec<(Timestamp, &(GiftId, IdempotencyKey))> = st
            .outbox
            .iter()
            .filter(|(_, row)| row.available_at <= now && row.claimed_until.is_none_or(|c| c <= now))
            .map(|(at, row)| (row.available_at, at))
            .collect();
        due.sort();
        let taken: Vec<(GiftId, IdempotencyKey)> =
            due.into_iter().take(limit as usize).map(|(_, at)| at.clone()).collect();
        let mut claimed = Vec::with_capacity(taken.len());
        for (gift_id, request_id) in taken {
            let row = st.outbox.get_mut(&(gift_id, request_id.clone())).expect("listed above");
            row.claimed_until = Some(until);
            claimed.push(OutboxEntry { gift_id, request_id, trace: row.trace, stale: row.published });
        }
        Ok(claimed)
    }

    async fn outbox_published(&self, entry: &OutboxEntry, due_again: Timestamp) -> Result<(), StoreError> {
        if let Some(row) = self.lock().outbox.get_mut(&(entry.gift_id, entry.request_id.clone())) {
            row.available_at = due_again;
            row.published = true;
            row.claimed_until = None;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
