//! A planted lost update: a store that checks and writes in two steps, which the checker must catch.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use gift_core::domain::{GiftId, IdempotencyKey, SendAccepted, Status};
use gift_core::ports::{SendCommand, SendDecision, Store};
use gift_core::StoreError;
use gift_runtime::conformance::linearizable::history::{Answer, Decision, Op};
use gift_runtime::conformance::linearizable::{run, shrink};
use gift_runtime::memory::MemoryStore;

use crate::support::wrapped::{Wrap, Wrapped};
use crate::{CONFIG, HISTORIES};

/// The planted bug: `request_send` reads the gift, yields, and then accepts the send
/// without looking again, so two sends racing over a CREATED gift may both queue it. It
/// keeps the accepted keys itself and leaves the rest to the model.
struct LostUpdateStore {
    inner: MemoryStore,
    accepted: Mutex<BTreeSet<(GiftId, IdempotencyKey)>>,
}

#[async_trait]
impl Wrap for LostUpdateStore {
    fn inner(&self) -> &dyn Store {
        &self.inner
    }

    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        let Some(gift) = self.inner.get_gift(cmd.gift_id).await? else { return Ok(SendDecision::NotFound) };
        let accepted = SendAccepted { gift_id: cmd.gift_id, status: Status::Queued, request_id: cmd.key.clone() };
        let request = (cmd.gift_id, cmd.key.clone());
        if self.accepted.lock().unwrap().contains(&request) {
            return Ok(SendDecision::Replay(accepted));
        }
        if gift.status != Status::Created {
            return Ok(SendDecision::Conflict(gift.status));
        }
        tokio::task::yield_now().await;
        // The write, on what was read before the yield.
        self.accepted.lock().unwrap().insert(request);
        self.inner.request_send(cmd).await?;
        Ok(SendDecision::Queued(accepted))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_update_is_not_linearizable() {
    let store = Arc::new(Wrapped(LostUpdateStore { inner: MemoryStore::new(), accepted: Mutex::default() }));
    let started = Instant::now();
    let violation = run(store, 0..HISTORIES, CONFIG).await.expect_err("the lost update goes unnoticed");
    eprintln!("lost update found in {:.1?}: {violation}", started.elapsed());
    let queued = violation
        .shrunk_calls()
        .any(|r| matches!((&r.op, &r.answer), (Op::RequestSend { .. }, Ok(Answer::Send(Decision::Queued)))));
    assert!(queued && violation.shrunk.len() <= 4, "{}", shrink::timeline(&violation.history, &violation.shrunk));
}
