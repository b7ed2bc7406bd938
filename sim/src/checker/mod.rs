//! Invariants over a recorded history. The checker knows the specification, not the
//! implementation: it reads what the service did — client answers, the store calls it
//! asked for and what they answered, each message's life, each pseudo-send — and never the
//! model's own guarded writes alone.
//!
//! One checker per concern, each fed every entry in order (`observe`) and then the end of
//! the run (`finish`):
//! - [`answers`]: what clients heard (status codes, echoed keys, replays, one key per
//!   gift, a gift read back as it was created);
//! - [`statuses`]: every status anyone observed follows the state machine;
//! - [`sends`]: each pseudo-send came from a message, of an unfinished gift, at most once,
//!   and the SENT/FAILED writes the workers asked for follow from their own attempts;
//! - [`messages`]: a message is published only for an accepted send and never deleted
//!   while its gift is unfinished and no other message of it is left;
//! - [`deliveries`]: what a worker reports for a delivery matches what it did with it;
//! - [`stops`]: a worker stopped gracefully returns in time, its deliveries all handled;
//! - [`liveness`]: everything accepted finishes, within a bound the world implies.

mod answers;
mod deliveries;
mod facts;
mod liveness;
mod messages;
mod sends;
mod statuses;
mod stops;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use gift_core::domain::{GiftId, Status};

use crate::history::Entry;
use facts::Facts;

/// Which property broke; also the exit code's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    /// A status observed (read, written, answered) that the state machine cannot reach
    /// from the one observed before it.
    IllegalTransition,
    /// A successful pseudo-send of a gift already SENT when it started, or two in one batch.
    SentTwice,
    /// A SENT write asked for by a worker with no successful pseudo-send of its own to
    /// record, or a gift SENT at the end with no successful pseudo-send at all.
    SentWithoutSuccess,
    /// A FAILED write asked for without a failed attempt on a message's own final receive.
    FailedTooEarly,
    /// A gift FAILED although a pseudo-send of it succeeded (before or after) — unless the
    /// success was lost with its killed worker before it could be recorded, or ran on a
    /// duplicate message at the same time (both counted).
    FailedDespiteSuccess,
    /// A pseudo-send that no message received by that worker asked for.
    PseudoSendWithoutMessage,
    /// A pseudo-send by a worker that had read the gift as anything but QUEUED.
    PseudoSendOfFinishedGift,
    /// A message published for a (gift, key) the store had not answered Queued.
    PublishedWithoutAcceptance,
    /// A message deleted while its gift was unfinished and no other message of it was left.
    MessageLost,
    /// The message whose final failure recorded FAILED deleted instead of left for the
    /// dead-letter queue (spec §4).
    FailedMessageDeleted,
    /// A relay published an accepted send before its publish grace had passed.
    RelayedEarly,
    /// A worker reported a delivery done with (Sent, LostRace, Duplicate) without deleting it.
    OutcomeMisreported,
    /// A pseudo-send outcome the failure rate rules out (an ok at rate 1, a failure at 0).
    RateIgnored,
    /// Two 2xx answers for one (gift, key) with different bodies.
    ReplayChangedBody,
    /// One gift accepted (2xx) under two different keys.
    QueuedTwice,
    /// A 2xx answer for a (gift, key) the store never answered Queued or Replay.
    AcceptedWithoutCommit,
    /// A 409 for a gift the store had not queued under any other key: a CREATED gift must
    /// be accepted.
    RefusedWithoutCause,
    /// A message received again after its delete was acknowledged.
    ReceivedAfterDelete,
    /// An answer whose `request_id` is not the key sent, byte for byte (or a 2xx whose
    /// `gift_id` is not the gift asked).
    KeyNotEchoed,
    /// A gift read back with another amount or message than it was created with.
    GiftAltered,
    /// A 5xx other than 503.
    ServerError,
    /// A graceful stop that did not finish in time, or returned with received deliveries
    /// unhandled.
    StopIncomplete,
    /// Liveness: an accepted or QUEUED gift did not finish, or a client never got an answer.
    Stuck,
    /// Liveness: the run quiesced, but later after healing than its world allows.
    SlowToHeal,
}

impl Invariant {
    pub fn is_liveness(self) -> bool {
        matches!(self, Invariant::Stuck | Invariant::SlowToHeal)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub gift: Option<GiftId>,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.gift {
            Some(g) => write!(f, "{:?} on gift {g}: {}", self.invariant, self.detail),
            None => write!(f, "{:?}: {}", self.invariant, self.detail),
        }
    }
}

/// What the checker is told besides the history.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// The retry budget: a message's final receive (5).
    pub max_receives: u32,
    /// The longest a healed world may take from healing to quiescence.
    pub heal_bound_ms: u64,
    /// The pseudo-send's failure rate: at 0 no send may fail, at 1 none may succeed.
    pub send_failure_rate: f64,
    /// How long an accepted send's outbox row is left to the API's own publish.
    pub publish_grace_ms: u64,
    /// The queue's visibility timeout: how long a receive hides a message.
    pub visibility_timeout_ms: u64,
}

/// The end of a run: each gift's final status, when the run got that far.
pub struct End<'a> {
    pub finals: Option<&'a BTreeMap<GiftId, Status>>,
    pub expect: Expect,
}

/// What the checker found: violations, plus figures that are not violations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub violations: Vec<Violation>,
    /// Successful pseudo-sends beyond the first for a gift that raced legitimately: each
    /// started before any SENT was recorded (two workers held one message, or duplicates).
    pub extra_sends: u64,
    /// Gifts FAILED after successful pseudo-sends that were all lost with their worker
    /// (killed between the send and its SENT write), which no worker could know of.
    pub failed_after_lost_success: u64,
    /// Gifts FAILED by one message's final failure while a duplicate message of the gift
    /// was being pseudo-sent successfully elsewhere (no per-gift claim prevents it yet).
    pub failed_beside_duplicate: u64,
    /// Gifts FAILED by another worker's final receive of a message whose holder had a
    /// successful pseudo-send and had asked in time to renew the message's visibility,
    /// the renewal still unanswered when the queue handed the message on (a queue slower
    /// than the lease allows for).
    pub failed_after_late_renewal: u64,
    /// Simulated time from healing to quiescence.
    pub heal_ms: Option<u64>,
}

/// Collects violations for the checkers.
#[derive(Default)]
pub struct Out {
    violations: Vec<Violation>,
}

impl Out {
    fn add(&mut self, invariant: Invariant, gift: Option<GiftId>, detail: String) {
        self.violations.push(Violation { invariant, gift, detail });
    }
}

/// One concern's invariants. `facts` holds what the entries before this one established.
trait Checker {
    fn observe(&mut self, index: usize, entry: &Entry, facts: &Facts, out: &mut Out);
    fn finish(&mut self, end: &End<'_>, facts: &Facts, out: &mut Out, report: &mut Report);
}

/// Every invariant over `entries`; liveness too when `end.finals` is given (after healing).
pub fn check(entries: &[Entry], end: &End<'_>) -> Report {
    let mut facts = Facts::new(end.expect);
    let mut checkers: Vec<Box<dyn Checker>> = vec![
        Box::<answers::Answers>::default(),
        Box::<statuses::Statuses>::default(),
        Box::<sends::Sends>::default(),
        Box::<messages::Messages>::default(),
        Box::<deliveries::Deliveries>::default(),
        Box::<stops::Stops>::default(),
        Box::<liveness::Liveness>::default(),
    ];
    let mut out = Out::default();
    for (i, entry) in entries.iter().enumerate() {
        for c in &mut checkers {
            c.observe(i, entry, &facts, &mut out);
        }
        facts.learn(i, entry);
    }
    let mut report = Report::default();
    for c in &mut checkers {
        c.finish(end, &facts, &mut out, &mut report);
    }
    report.violations = out.violations;
    report
}
