//! The `Queue` port held to SQS's semantics as a sequential specification, message by
//! message. Linearizability is local (Herlihy & Wing): a history is linearizable when each
//! object's part is, and every queue call but a receive names one message; a receive is,
//! per message, "returned it with this count and receipt" or nothing at all (SQS may always
//! return fewer messages than are visible). So each message's calls are searched on their
//! own, with Wing–Gong's rule that a call may go next only when no call still to be placed
//! returned before it was made, and a failed call may or may not have happened.
//!
//! Per message the model is: published → visible with count 0; a receive takes a visible
//! message with count c (c below the maximum) to in flight with count c + 1 and a fresh
//! receipt; a release (`set_visibility(receipt, 0)`) with the current receipt makes it
//! visible again (again on a visible message: nothing changes); a delete removes it — with the current receipt surely, with an older one
//! perhaps (AWS: "the request succeeds, but the message might not be deleted"); a visible
//! message at the maximum may move to the dead-letter queue at any time (a receive moves it)
//! and is never returned again. Visibility timeouts are long enough not to expire during a
//! history; expiry is the example suites' (`conformance/queue.rs`).
//!
//! - [`record_queue`] (record.rs): clients calling a queue at random, every call recorded;
//! - model.rs: one message's states and the steps between them;
//! - [`check_queue`] (check.rs): the per-message search for an order the model allows.

mod check;
mod model;
mod record;

pub use check::check_queue;
pub use record::record_queue;

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use gift_core::ports::{MessageId, Queue, Receipt};

#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    pub clients: usize,
    pub ops_per_client: usize,
    /// The queue's receives before dead-lettering.
    pub max_receives: u32,
    /// Whether a release with a superseded receipt may succeed and take effect. moto does
    /// so; the models refuse it, as AWS documents receipts of earlier receives to be invalid
    /// (docs/testing.md).
    pub stale_release_may_apply: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOp {
    Publish,
    Receive { max: u32 },
    Delete { msg: MessageId, receipt: Receipt },
    Release { msg: MessageId, receipt: Receipt },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueAnswer {
    Published(MessageId),
    Received(Vec<(MessageId, u32, Receipt)>),
    Done,
}

/// One call: who made it, when (a logical clock shared by the clients), what it answered.
#[derive(Debug, Clone)]
pub struct QueueRecord {
    pub client: usize,
    pub invoke: u64,
    pub complete: u64,
    pub op: QueueOp,
    pub answer: Result<QueueAnswer, String>,
}

impl fmt::Display for QueueRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:>3}..{:>3}] client {} ", self.invoke, self.complete, self.client)?;
        match &self.op {
            QueueOp::Publish => write!(f, "publish")?,
            QueueOp::Receive { max } => write!(f, "receive max={max}")?,
            QueueOp::Delete { msg, receipt } => write!(f, "delete {} receipt {}", msg.0, short(receipt))?,
            QueueOp::Release { msg, receipt } => write!(f, "release {} receipt {}", msg.0, short(receipt))?,
        }
        match &self.answer {
            Ok(QueueAnswer::Published(id)) => write!(f, " -> {}", id.0),
            Ok(QueueAnswer::Received(got)) => {
                let got: Vec<String> = got.iter().map(|(m, c, r)| format!("{}#{c}@{}", m.0, short(r))).collect();
                write!(f, " -> [{}]", got.join(", "))
            }
            Ok(QueueAnswer::Done) => write!(f, " -> ok"),
            Err(e) => write!(f, " -> error ({e})"),
        }
    }
}

fn short(r: &Receipt) -> String {
    r.0.chars().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect()
}

/// A history that no order explains, for one message.
#[derive(Debug)]
pub struct QueueViolation {
    pub seed: u64,
    pub msg: Option<MessageId>,
    pub reason: String,
    /// The calls about that message, in invocation order.
    pub calls: Vec<QueueRecord>,
}

impl fmt::Display for QueueViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = self.msg.as_ref().map_or("-".to_owned(), |m| m.0.clone());
        writeln!(f, "history of seed {}: message {msg}: {}", self.seed, self.reason)?;
        for call in &self.calls {
            writeln!(f, "    {call}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct QueueSummary {
    pub histories: usize,
    pub calls: usize,
    pub messages: usize,
    /// The highest receive count any history reached (the maximum shows dead-lettering).
    pub highest_count: u32,
}

impl fmt::Display for QueueSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} histories, {} calls on {} messages linearizable; receive counts up to {}",
            self.histories, self.calls, self.messages, self.highest_count
        )
    }
}

/// Records one history per seed on a fresh queue from `fresh`, checks each, and stops at the
/// first violation.
pub async fn run_queue<F, Fut>(
    fresh: F,
    seeds: Range<u64>,
    config: QueueConfig,
) -> Result<QueueSummary, Box<QueueViolation>>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    let mut summary = QueueSummary::default();
    for seed in seeds {
        let history = record_queue(fresh(seed).await, seed, config).await;
        summary.histories += 1;
        summary.calls += history.len();
        summary.messages += history.iter().filter(|r| matches!(r.answer, Ok(QueueAnswer::Published(_)))).count();
        for r in &history {
            if let Ok(QueueAnswer::Received(got)) = &r.answer {
                summary.highest_count = got.iter().map(|(_, c, _)| *c).fold(summary.highest_count, u32::max);
            }
        }
        check_queue(&history, config).map_err(|mut v| {
            v.seed = seed;
            v
        })?;
    }
    Ok(summary)
}
