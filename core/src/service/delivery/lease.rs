//! How long a received batch is ours: a message stays hidden from other workers until its
//! visibility timeout runs out. A heartbeat renews it while the batch is in hand, and a
//! pseudo-send that would outlive it is abandoned — so no other worker takes a message
//! whose attempt is still running, and never decides FAILED while it might succeed.

use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::join_all;

use crate::domain::Timestamp;
use crate::ports::{Env, Queue, Receipt};

/// Part of each visibility timeout kept in reserve for recording an outcome.
const RESERVE_DIVISOR: u32 = 5;
/// Renewals per visibility timeout.
const RENEWALS: u32 = 3;

pub struct Lease<'a> {
    env: &'a dyn Env,
    visibility: Duration,
    until: Mutex<Timestamp>,
}

fn span(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl<'a> Lease<'a> {
    /// A lease taken when the batch was received.
    pub fn new(env: &'a dyn Env, visibility: Duration, received_at: Timestamp) -> Self {
        Self { env, visibility, until: Mutex::new(received_at + span(visibility)) }
    }

    fn until(&self) -> Timestamp {
        *self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Time left before a pseudo-send must have ended, keeping a reserve to record it.
    fn left(&self) -> Duration {
        let deadline = self.until() - span(self.visibility / RESERVE_DIVISOR);
        (deadline - self.env.now()).to_std().unwrap_or(Duration::ZERO)
    }

    /// Whether the visibility itself has run out: the queue may have handed these messages
    /// to another worker, so their receipts here are superseded.
    pub fn lapsed(&self) -> bool {
        self.until() <= self.env.now()
    }

    /// Resolves once the lease (less its reserve) has run out, renewals included.
    pub async fn run_out(&self) {
        loop {
            let left = self.left();
            if left.is_zero() {
                return;
            }
            self.env.sleep(left).await;
        }
    }

    /// Renews the visibility of `receipts` every third of the timeout, forever (the caller
    /// drops it when done). A renewal that fails for any receipt extends nothing: the
    /// lease then ends when it would have, and attempts still running are abandoned.
    pub async fn heartbeat(&self, queue: &dyn Queue, receipts: &[Receipt]) -> Infallible {
        if receipts.is_empty() {
            return std::future::pending().await;
        }
        loop {
            self.env.sleep(self.visibility / RENEWALS).await;
            let asked_at = self.env.now();
            let renewed = join_all(receipts.iter().map(|r| queue.set_visibility(r, self.visibility))).await;
            match renewed.iter().find_map(|r| r.as_ref().err()) {
                None => {
                    // Applied no earlier than asked, so hidden at least until then + timeout.
                    let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
                    *until = (*until).max(asked_at + span(self.visibility));
                }
                Some(e) => {
                    tracing::warn!(error_code = "HEARTBEAT_FAILED", error_message = %e, "visibility not renewed; attempts stop when it runs out");
                }
            }
        }
    }
}
