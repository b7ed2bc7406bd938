//! Linearizability of a [`Store`]: concurrent clients call it at random, every call is
//! recorded with when it was made, when it returned and what it answered, and a checker
//! asks whether some order of the calls, each taking effect at one instant within its
//! interval, would have got every answer from the sequential model (the in-memory store).
//! If none does, the adapter is not the model under concurrency, and the failing history
//! is cut down to the few calls that contradict each other.
//!
//! - [`history`]: the operations and the recorder (clients, cancellations, the clock);
//! - call.rs: each operation made on the store under test, its answer read back;
//! - [`model`]: the sequential specification;
//! - [`checker`]: the search for an order;
//! - [`shrink`]: the cut-down history and its timeline;
//! - [`queue`]: the same question for a [`gift_core::ports::Queue`], message by message.

mod call;
pub mod checker;
pub mod history;
pub mod model;
pub mod queue;
pub mod shrink;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use gift_core::ports::Store;

use checker::{check, Failure};
use history::{record, Config, Record};

/// What a run without a violation saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub histories: usize,
    pub calls: usize,
    /// Calls without an answer: given up by their client, or failed by the store.
    pub indeterminate: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} histories linearizable ({} calls, {} of them indeterminate)",
            self.histories, self.calls, self.indeterminate
        )
    }
}

/// A history the checker rejected (or could not decide).
#[derive(Debug)]
pub struct Violation {
    /// Regenerates the history's calls (not their interleaving).
    pub seed: u64,
    pub history: Vec<Record>,
    /// Positions in `history` of the calls that fail with every other call forgotten; all
    /// of them if undecided.
    pub shrunk: Vec<usize>,
    /// The checker's verdict on `history` with every call not in `shrunk` forgotten.
    pub failure: Failure,
}

impl Violation {
    /// The calls of `shrunk`.
    pub fn shrunk_calls(&self) -> impl Iterator<Item = &Record> {
        self.shrunk.iter().map(|&at| &self.history[at])
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (seed, calls, shrunk) = (self.seed, self.history.len(), self.shrunk.len());
        if let Failure::Undecided { .. } = self.failure {
            writeln!(f, "seed {seed}: a history of {calls} calls could not be decided:")?;
        } else {
            writeln!(
                f,
                "seed {seed}: a history of {calls} calls is not linearizable. These {shrunk} fail whatever \
                 the other {} did (each may have taken effect at any point after it was made, or not at all):",
                calls - shrunk
            )?;
        }
        write!(f, "{}{}", shrink::timeline(&self.history, &self.shrunk), self.failure)
    }
}

/// Records and checks one history per seed on `store`, stopping at the first violation.
/// Panics if the gifts of a history cannot be created.
pub async fn run(store: Arc<dyn Store>, seeds: Range<u64>, config: Config) -> Result<Summary, Box<Violation>> {
    let mut summary = Summary::default();
    for seed in seeds {
        let history = record(store.clone(), seed, config).await.expect("the history's gifts are created");
        summary.histories += 1;
        summary.calls += history.len();
        summary.indeterminate += history.iter().filter(|r| r.answer.is_err()).count();
        match check(&history) {
            Ok(()) => {}
            Err(Failure::NotLinearizable(_)) => {
                let shrunk = shrink::shrink(&history);
                let Err(failure) = check(&shrink::forgetting(&history, &shrunk)) else {
                    unreachable!("a shrunk history still fails")
                };
                return Err(Box::new(Violation { seed, history, shrunk, failure }));
            }
            Err(undecided) => {
                return Err(Box::new(Violation {
                    seed,
                    shrunk: (0..history.len()).collect(),
                    history,
                    failure: undecided,
                }))
            }
        }
    }
    Ok(summary)
}
