//! The recorded history of one simulated run: what the service *did*, as seen from outside
//! its deciding code — every client answer, every store call as asked and as answered,
//! every message's life on the queue, every pseudo-send from its start to its outcome.
//! The checker reads only this.

use std::fmt;
use std::sync::{Arc, Mutex};

use gift_core::domain::{GiftId, Status};

use crate::kinds::{Counter, Counts, FaultKind};

/// One thing that happened, stamped with simulated milliseconds since the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at_ms: u64,
    pub event: Event,
}

/// A queue message, by the queue's own id.
pub type MsgId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A client got 201 for a new gift it asked for with `amount` and `message`.
    Created {
        gift: GiftId,
        amount: i64,
        message: Option<String>,
    },
    /// A client read its gift back (`GET /gifts/{id}`).
    Fetched {
        gift: GiftId,
        code: u16,
        body: String,
    },
    /// A client got an HTTP answer to a send request.
    SendAnswered {
        gift: GiftId,
        key: String,
        code: u16,
        body: String,
    },
    /// A send request whose answer never arrived (its API node died).
    SendLost {
        gift: GiftId,
        key: String,
    },
    /// A store call that reached the store: what `node` asked, what the store answered,
    /// and whether the caller heard that answer (`false`: the answer was lost in transit).
    Store {
        node: String,
        call: StoreCall,
        heard: bool,
    },
    /// A message reached the queue.
    Published {
        node: String,
        msg: MsgId,
        gift: GiftId,
        key: String,
    },
    /// The queue handed out a message; `seen` is false for a receive that SQS counted but
    /// no worker got.
    Received {
        node: String,
        msg: MsgId,
        gift: GiftId,
        key: String,
        receive_count: u32,
        seen: bool,
    },
    /// A worker called for a message's visibility to change (recorded when it called,
    /// before the call's latency; its answer, if it arrives, is the next event).
    VisibilityAsked {
        node: String,
        msg: MsgId,
        delay_ms: u64,
    },
    /// A worker asked for a message's visibility to change; `applied` is the queue's answer
    /// (false: refused, or the call failed).
    Visibility {
        node: String,
        msg: MsgId,
        delay_ms: u64,
        applied: bool,
    },
    /// A worker deleted a message.
    Deleted {
        node: String,
        msg: MsgId,
    },
    /// A worker's delete of a message failed (the message stays).
    DeleteFailed {
        node: String,
        msg: MsgId,
    },
    /// The queue moved a message to the dead-letter queue.
    DeadLettered {
        msg: MsgId,
        gift: GiftId,
    },
    /// A worker began a pseudo-send of `gift` (whose status it had read as `status`) for
    /// the message with `key`, on what it says is that message's `receive_count`-th receive.
    DispatchStarted {
        node: String,
        attempt: u64,
        gift: GiftId,
        key: String,
        receive_count: u32,
        status: Status,
    },
    /// The pseudo-send `attempt` finished.
    Dispatched {
        node: String,
        attempt: u64,
        gift: GiftId,
        ok: bool,
    },
    /// The worker finished handling a delivery.
    Handled {
        node: String,
        msg: Option<MsgId>,
        receive_count: u32,
        gift: Option<GiftId>,
        outcome: Outcome,
    },
    /// A fault of the simulated world fired.
    Fault {
        kind: FaultKind,
    },
    /// A fault the real stack's nemesis injected into its processes and services
    /// (`db_cut`, `worker_paused`, …: the stack names its own).
    StackFault {
        kind: &'static str,
    },
    Killed {
        node: String,
    },
    Restarted {
        node: String,
    },
    /// A worker was told to stop gracefully (its SIGTERM).
    Stopping {
        node: String,
    },
    /// A worker's loop returned after a graceful stop.
    Stopped {
        node: String,
    },
    Phase {
        phase: Phase,
    },
}

/// A store call and the store's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreCall {
    /// `insert_gift`; `applied` false when the store refused it.
    Insert {
        gift: GiftId,
        applied: bool,
    },
    /// `get_gift` or `get_gifts`: each gift asked with the status read (`None`: unknown).
    Read {
        gifts: Vec<(GiftId, Option<Status>)>,
        /// When the read was asked, if not at the entry's own time: a real read's answer
        /// held somewhere between the two (the simulation's reads are instants: `None`).
        asked_ms: Option<u64>,
    },
    /// The send transaction.
    RequestSend {
        gift: GiftId,
        key: String,
        decision: Decision,
        /// When the send was asked (simulated, like `Entry::at_ms`).
        asked_ms: u64,
    },
    /// `mark_sent` or `mark_sent_all`: each gift asked with whether it moved to SENT.
    MarkSent {
        gifts: Vec<(GiftId, bool)>,
    },
    MarkFailed {
        gift: GiftId,
        applied: bool,
    },
    OutboxClaim {
        entries: usize,
    },
    OutboxPublished {
        gift: GiftId,
        key: String,
    },
}

/// The send transaction's decision, as the store answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Queued,
    Replay,
    Conflict(Status),
    NotFound,
    /// The store answered an error.
    Error,
}

/// What the worker reported for one delivery: the effect tap's own type, so the real
/// stack's effect logs and the simulation speak of outcomes alike.
pub use gift_runtime::tap::Handled as Outcome;

/// The phases of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Faults on, nemesis on.
    Safety,
    /// Every fault healed and every node restarted: from here the run must quiesce.
    Healed,
    /// The clients did not finish within the liveness deadline.
    ClientsUnfinished,
    /// No gift is QUEUED any more (or the deadline passed).
    End,
}

/// A key as printed in the trace: long keys are cut so a line stays readable.
fn key_text(key: &str) -> String {
    if key.len() > 24 {
        format!("{}…({})", &key[..16], key.len())
    } else {
        key.to_owned()
    }
}

impl fmt::Display for StoreCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: Vec<String>| items.join(",");
        match self {
            StoreCall::Insert { gift, applied } => write!(f, "insert {} -> {applied}", gift.short()),
            StoreCall::Read { gifts, asked_ms } => {
                let read = gifts.iter().map(|(g, s)| format!("{}={}", g.short(), s.map_or("none", Status::as_str)));
                write!(f, "read {}", list(read.collect()))?;
                match asked_ms {
                    Some(asked) => write!(f, " (asked at {asked})"),
                    None => Ok(()),
                }
            }
            StoreCall::RequestSend { gift, key, decision, .. } => {
                write!(f, "request_send {} key={} -> {decision:?}", gift.short(), key_text(key))
            }
            StoreCall::MarkSent { gifts } => {
                write!(f, "mark_sent {}", list(gifts.iter().map(|(g, won)| format!("{}={won}", g.short())).collect()))
            }
            StoreCall::MarkFailed { gift, applied } => write!(f, "mark_failed {} -> {applied}", gift.short()),
            StoreCall::OutboxClaim { entries } => write!(f, "outbox_claim -> {entries}"),
            StoreCall::OutboxPublished { gift, key } => {
                write!(f, "outbox_published {} key={}", gift.short(), key_text(key))
            }
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>9} ", self.at_ms)?;
        match &self.event {
            Event::Created { gift, amount, message } => write!(
                f,
                "client   created {} amount={amount} message={}",
                gift.short(),
                message.as_ref().map_or("none".to_owned(), |m| format!("{} chars", m.chars().count()))
            ),
            Event::Fetched { gift, code, .. } => write!(f, "client   get {} -> {code}", gift.short()),
            Event::SendAnswered { gift, key, code, body } => {
                write!(f, "client   send {} key={} -> {code} {body}", gift.short(), key_text(key))
            }
            Event::SendLost { gift, key } => {
                write!(f, "client   send {} key={} -> (no answer)", gift.short(), key_text(key))
            }
            Event::Store { node, call, heard } => {
                write!(f, "{node:<8} store {call}{}", if *heard { "" } else { " (answer lost)" })
            }
            Event::Published { node, msg, gift, key } => {
                write!(f, "{node:<8} publish m{msg} {} key={}", gift.short(), key_text(key))
            }
            Event::Received { node, msg, gift, receive_count, seen, .. } => write!(
                f,
                "{node:<8} receive m{msg} {} count={receive_count}{}",
                gift.short(),
                if *seen { "" } else { " (unseen)" }
            ),
            Event::VisibilityAsked { node, msg, delay_ms } => {
                write!(f, "{node:<8} visibility m{msg} +{delay_ms}ms asked")
            }
            Event::Visibility { node, msg, delay_ms, applied } => {
                write!(f, "{node:<8} visibility m{msg} +{delay_ms}ms{}", if *applied { "" } else { " (refused)" })
            }
            Event::Deleted { node, msg } => write!(f, "{node:<8} delete m{msg}"),
            Event::DeleteFailed { node, msg } => write!(f, "{node:<8} delete m{msg} (failed)"),
            Event::DeadLettered { msg, gift } => write!(f, "queue    dead-letter m{msg} {}", gift.short()),
            Event::DispatchStarted { node, attempt, gift, receive_count, status, .. } => {
                write!(f, "{node:<8} pseudo-send #{attempt} {} count={receive_count} (read {status})", gift.short())
            }
            Event::Dispatched { node, attempt, gift, ok } => {
                write!(f, "{node:<8} pseudo-send #{attempt} {} {}", gift.short(), if *ok { "ok" } else { "FAILED" })
            }
            Event::Handled { node, gift, outcome, .. } => {
                write!(
                    f,
                    "{node:<8} handled {} {outcome:?}",
                    gift.as_ref().map(GiftId::short).unwrap_or_else(|| "?".into())
                )
            }
            Event::Fault { kind } => write!(f, "fault    {kind}"),
            Event::StackFault { kind } => write!(f, "fault    {kind}"),
            Event::Killed { node } => write!(f, "nemesis  kill {node}"),
            Event::Restarted { node } => write!(f, "nemesis  restart {node}"),
            Event::Stopping { node } => write!(f, "nemesis  stop {node} (graceful)"),
            Event::Stopped { node } => write!(f, "{node:<8} stopped"),
            Event::Phase { phase } => write!(f, "phase    {phase:?}"),
        }
    }
}

/// A shared, append-only history plus the coverage counters of the run.
#[derive(Clone, Default)]
pub struct History {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    world: String,
    entries: Vec<Entry>,
    counts: Counts,
    next_attempt: u64,
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the printed world, so a report has it even when the run panicked.
    pub fn set_world(&self, world: String) {
        self.lock().world = world;
    }

    pub fn world(&self) -> String {
        self.lock().world.clone()
    }

    pub fn record(&self, at_ms: u64, event: Event) {
        let mut inner = self.lock();
        if let Event::Fault { kind } = event {
            *inner.counts.entry(kind.into()).or_default() += 1;
        }
        inner.entries.push(Entry { at_ms, event });
    }

    /// A fresh number for a pseudo-send, linking its start to its outcome.
    pub fn next_attempt(&self) -> u64 {
        let mut inner = self.lock();
        inner.next_attempt += 1;
        inner.next_attempt
    }

    /// Counts an interesting event without recording it in the trace.
    pub fn count(&self, what: Counter) {
        self.count_n(what, 1);
    }

    pub fn count_n(&self, what: Counter, n: u64) {
        *self.lock().counts.entry(what.into()).or_default() += n;
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.clone()
    }

    pub fn counts(&self) -> Counts {
        self.lock().counts.clone()
    }
}

/// The trace as text, one line per entry.
pub fn render(entries: &[Entry]) -> String {
    entries.iter().map(|e| format!("{e}\n")).collect()
}

/// FNV-1a over the rendered trace: stable across runs, platforms and Rust versions.
pub fn trace_hash(entries: &[Entry]) -> u64 {
    fnv1a(&render(entries))
}

/// FNV-1a, 64 bits: the same value for the same text on every platform and Rust version,
/// which `std`'s hashers do not promise.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
