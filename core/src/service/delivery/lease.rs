//! How long a received batch is ours: a message stays hidden from other workers until its
//! visibility timeout runs out. A heartbeat renews it while the batch is in hand, and a
//! pseudo-send that would outlive it is abandoned — so no other worker takes a message
//! whose attempt is still running, and never decides FAILED while it might succeed.

use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::{join_all, select, Either};
use futures::stream::{FuturesUnordered, StreamExt};

use crate::domain::Timestamp;
use crate::error::QueueError;
use crate::ports::{Env, Queue, Receipt};

/// Part of each visibility timeout kept in reserve for recording an outcome.
const RESERVE_DIVISOR: u32 = 5;
/// Renewals per visibility timeout.
const RENEWALS: u32 = 3;

pub struct Lease<'a> {
    env: &'a dyn Env,
    visibility: Duration,
    received_at: Timestamp,
    until: Mutex<Timestamp>,
}

fn span(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl<'a> Lease<'a> {
    /// A lease taken when the batch was received.
    pub fn new(env: &'a dyn Env, visibility: Duration, received_at: Timestamp) -> Self {
        Self { env, visibility, received_at, until: Mutex::new(received_at + span(visibility)) }
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

    /// Renews the visibility of `receipts` every third of the timeout counted from the
    /// receive, forever (the caller drops it when done). The ticks keep their schedule: a
    /// renewal still in flight does not hold back the next, so one slow answer costs one
    /// renewal, not the lease. A renewal that fails for any receipt extends nothing: the
    /// lease then ends when it would have, and attempts still running are abandoned.
    pub async fn heartbeat(&self, queue: &dyn Queue, receipts: &[Receipt]) -> Infallible {
        if receipts.is_empty() {
            return std::future::pending().await;
        }
        let period = span(self.visibility / RENEWALS);
        let renew = |asked_at: Timestamp| async move {
            let renewed = join_all(receipts.iter().map(|r| queue.set_visibility(r, self.visibility))).await;
            (asked_at, renewed.into_iter().find_map(Result::err))
        };
        let mut rounds = FuturesUnordered::new();
        let mut due = self.received_at + period;
        loop {
            let wait = (due - self.env.now()).to_std().unwrap_or(Duration::ZERO);
            let tick = self.env.sleep(wait);
            futures::pin_mut!(tick);
            loop {
                if rounds.is_empty() {
                    tick.as_mut().await;
                    break;
                }
                match select(tick.as_mut(), rounds.select_next_some()).await {
                    Either::Left(_) => break,
                    Either::Right(((asked_at, failed), _)) => self.renewed(asked_at, failed),
                }
            }
            let now = self.env.now();
            rounds.push(renew(now));
            // A tick that comes late (a busy runtime) is not made up for with a burst.
            while due <= now {
                due += period;
            }
        }
    }

    fn renewed(&self, asked_at: Timestamp, failed: Option<QueueError>) {
        match failed {
            None => {
                // Applied no earlier than asked, so hidden at least until then + timeout.
                let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
                *until = (*until).max(asked_at + span(self.visibility));
            }
            Some(e) => {
                tracing::warn!(error_code = "RENEWAL_FAILED", error_message = %e, "visibility not renewed; attempts stop when it runs out");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use tokio::time::Instant;

    use super::*;
    use crate::domain::{SendMessage, TraceParent};
    use crate::ports::{BoxFuture, Delivery, MessageId};

    /// Tokio's paused clock, as timestamps from `base`.
    struct Clock {
        base: Timestamp,
        start: Instant,
    }

    impl Env for Clock {
        fn now(&self) -> Timestamp {
            self.base + span(self.start.elapsed())
        }

        fn random_u64(&self) -> u64 {
            4
        }

        fn sleep(&self, duration: Duration) -> BoxFuture<()> {
            Box::pin(tokio::time::sleep(duration))
        }
    }

    /// A queue whose renewals take `answer_after` to answer, recording when each was asked.
    struct SlowQueue {
        env: Arc<Clock>,
        answer_after: Duration,
        fails: bool,
        asked: Mutex<Vec<Timestamp>>,
    }

    #[async_trait]
    impl Queue for SlowQueue {
        async fn publish(&self, _: &SendMessage, _: Option<&TraceParent>) -> Result<MessageId, QueueError> {
            unreachable!("a lease only renews")
        }
        async fn receive(&self, _: u32, _: Duration) -> Result<Vec<Delivery>, QueueError> {
            unreachable!("a lease only renews")
        }
        async fn delete(&self, _: &Receipt) -> Result<(), QueueError> {
            unreachable!("a lease only renews")
        }
        async fn set_visibility(&self, _: &Receipt, _: Duration) -> Result<(), QueueError> {
            self.asked.lock().unwrap().push(self.env.now());
            tokio::time::sleep(self.answer_after).await;
            if self.fails {
                Err(QueueError::Unavailable("renewal refused".into()))
            } else {
                Ok(())
            }
        }
        async fn ping(&self) -> Result<(), QueueError> {
            Ok(())
        }
    }

    const VISIBILITY: Duration = Duration::from_secs(3);

    /// Runs a heartbeat for `run` with renewals answered after `answer_after`; returns the
    /// offsets from the receive at which renewals were asked, and whether the lease lapsed.
    async fn beat(answer_after: Duration, fails: bool, run: Duration) -> (Vec<Duration>, bool) {
        let env = Arc::new(Clock { base: chrono::DateTime::UNIX_EPOCH, start: Instant::now() });
        let queue = SlowQueue { env: env.clone(), answer_after, fails, asked: Mutex::new(Vec::new()) };
        let received_at = env.now();
        let lease = Lease::new(&*env, VISIBILITY, received_at);
        let receipts = [Receipt("r".into())];
        let _ = tokio::time::timeout(run, lease.heartbeat(&queue, &receipts)).await;
        let asked = queue.asked.lock().unwrap().iter().map(|t| (*t - received_at).to_std().unwrap()).collect();
        (asked, lease.lapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_renewal_does_not_hold_back_the_next() {
        let (asked, lapsed) = beat(Duration::from_millis(1_500), false, Duration::from_millis(3_500)).await;
        assert_eq!(asked, [1, 2, 3].map(Duration::from_secs), "one renewal per third of the timeout");
        assert!(!lapsed, "the first renewal, answered at 2.5 s, holds the lease until 4 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_extends_nothing() {
        let (asked, lapsed) = beat(Duration::from_millis(10), true, Duration::from_millis(3_100)).await;
        assert_eq!(asked, [1, 2, 3].map(Duration::from_secs));
        assert!(lapsed, "no renewal succeeded, so the lease ends 3 s after the receive");
    }
}
