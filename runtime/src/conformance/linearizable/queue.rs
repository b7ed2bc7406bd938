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

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gift_core::ports::{MessageId, Queue, Receipt};

use super::history::Rng;
use crate::rt;

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

/// The receipts clients have seen, to delete and release with (the latest or an older one).
type Seen = Arc<Mutex<Vec<(MessageId, Receipt)>>>;

fn pick(rng: &mut Rng, seen: &Seen) -> Option<(MessageId, Receipt)> {
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    if seen.is_empty() {
        return None;
    }
    // Mostly the latest receipt of a message, sometimes any older one.
    let (msg, receipt) = seen[rng.below(seen.len() as u64) as usize].clone();
    if rng.below(10) < 7 {
        let latest = seen.iter().rev().find(|(m, _)| *m == msg).cloned();
        return latest.or(Some((msg, receipt)));
    }
    Some((msg, receipt))
}

fn random_op(rng: &mut Rng, seen: &Seen) -> QueueOp {
    // Few publishes and deletes, many receives and releases: messages live long enough to
    // reach the maximum receive count within a history.
    match rng.below(20) {
        0 => QueueOp::Publish,
        1..=8 => QueueOp::Receive { max: 1 + rng.below(3) as u32 },
        9..=17 => match pick(rng, seen) {
            Some((msg, receipt)) => QueueOp::Release { msg, receipt },
            None => QueueOp::Publish,
        },
        _ => match pick(rng, seen) {
            Some((msg, receipt)) => QueueOp::Delete { msg, receipt },
            None => QueueOp::Receive { max: 1 },
        },
    }
}

/// Publishes two messages, then runs the clients at once, each making random calls.
pub async fn record_queue(queue: Arc<dyn Queue>, seed: u64, config: QueueConfig) -> Vec<QueueRecord> {
    let clock = Arc::new(AtomicU64::new(0));
    let seen: Seen = Arc::default();
    let mut history = Vec::new();
    for n in 0..2 {
        let invoke = clock.fetch_add(1, Ordering::SeqCst);
        let answer = queue.publish(&format!("{{\"seed\":{seed},\"n\":{n}}}"), None).await;
        let complete = clock.fetch_add(1, Ordering::SeqCst);
        let answer = answer.map(QueueAnswer::Published).map_err(|e| e.to_string());
        history.push(QueueRecord { client: 0, invoke, complete, op: QueueOp::Publish, answer });
    }
    let mut seeds = Rng::new(seed);
    let clients: Vec<_> = (0..config.clients)
        .map(|client| {
            let (queue, clock, seen) = (queue.clone(), clock.clone(), seen.clone());
            let mut rng = Rng::new(seeds.next_u64());
            rt::spawn(async move {
                let mut records = Vec::with_capacity(config.ops_per_client);
                for n in 0..config.ops_per_client {
                    let op = random_op(&mut rng, &seen);
                    let invoke = clock.fetch_add(1, Ordering::SeqCst);
                    let answer = perform(&*queue, &op, seed, client * 1_000 + n).await;
                    let complete = clock.fetch_add(1, Ordering::SeqCst);
                    if let Ok(QueueAnswer::Received(got)) = &answer {
                        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                        seen.extend(got.iter().map(|(m, _, r)| (m.clone(), r.clone())));
                    }
                    records.push(QueueRecord { client: client + 1, invoke, complete, op, answer });
                }
                records
            })
        })
        .collect();
    for client in clients {
        history.extend(client.await.expect("a client of the history panicked"));
    }
    history.sort_by_key(|r| r.invoke);
    history
}

async fn perform(queue: &dyn Queue, op: &QueueOp, seed: u64, n: usize) -> Result<QueueAnswer, String> {
    let answer = match op {
        QueueOp::Publish => {
            queue.publish(&format!("{{\"seed\":{seed},\"c\":{n}}}"), None).await.map(QueueAnswer::Published)
        }
        QueueOp::Receive { max } => queue.receive(*max, Duration::ZERO).await.map(|got| {
            QueueAnswer::Received(got.into_iter().map(|d| (d.message_id, d.receive_count, d.receipt)).collect())
        }),
        QueueOp::Delete { receipt, .. } => queue.delete(receipt).await.map(|()| QueueAnswer::Done),
        QueueOp::Release { receipt, .. } => {
            queue.set_visibility(receipt, Duration::ZERO).await.map(|()| QueueAnswer::Done)
        }
    };
    answer.map_err(|e| e.to_string())
}

/// One message's state in the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum State {
    Unpublished,
    /// Visible with this count, and the receipt of its latest receive if it had one.
    Visible(u32, Option<Receipt>),
    InFlight(u32, Receipt),
    Gone,
    Dead,
}

/// What one call did to one message.
#[derive(Debug, Clone)]
enum Step {
    Publish,
    Receive(u32, Receipt),
    Delete(Receipt),
    Release(Receipt),
}

/// The states `step` may lead to from `state` (none: the model cannot answer so).
fn next(state: &State, step: &Step, config: QueueConfig) -> Vec<State> {
    let max = config.max_receives;
    match (state, step) {
        (State::Unpublished, Step::Publish) => vec![State::Visible(0, None)],
        (State::Visible(c, _), Step::Receive(n, r)) if *c < max && *n == c + 1 => {
            vec![State::InFlight(*n, r.clone())]
        }
        (State::InFlight(c, current), Step::Release(r)) if r == current => {
            vec![State::Visible(*c, Some(current.clone()))]
        }
        // AWS answers MessageNotInflight; moto and the models accept it, and at delay 0 it
        // changes nothing (docs/testing.md).
        (State::Visible(_, Some(latest)), Step::Release(r)) if r == latest => vec![state.clone()],
        (State::InFlight(c, current), Step::Release(_)) if config.stale_release_may_apply => {
            vec![State::Visible(*c, Some(current.clone()))]
        }
        (State::Visible(..), Step::Release(_)) if config.stale_release_may_apply => vec![state.clone()],
        (State::InFlight(_, current), Step::Delete(r)) if r == current => vec![State::Gone],
        (State::InFlight(..) | State::Visible(..), Step::Delete(_)) => vec![State::Gone, state.clone()],
        (State::Gone | State::Dead, Step::Delete(_)) => vec![state.clone()],
        _ => Vec::new(),
    }
}

/// Checks every message's calls on their own, and each receive's answer as a whole.
pub fn check_queue(history: &[QueueRecord], config: QueueConfig) -> Result<(), Box<QueueViolation>> {
    let fail = |msg: Option<MessageId>, reason: String, calls: Vec<QueueRecord>| {
        Err(Box::new(QueueViolation { seed: 0, msg, reason, calls }))
    };
    // Per message: (record index, step, whether the call answered).
    let mut per_msg: BTreeMap<MessageId, Vec<(usize, Step, bool)>> = BTreeMap::new();
    let publish_failed = history.iter().any(|r| r.op == QueueOp::Publish && r.answer.is_err());
    for (i, r) in history.iter().enumerate() {
        let answered = r.answer.is_ok();
        match (&r.op, &r.answer) {
            (QueueOp::Publish, Ok(QueueAnswer::Published(id))) => {
                per_msg.entry(id.clone()).or_default().push((i, Step::Publish, true))
            }
            (QueueOp::Receive { max: asked }, Ok(QueueAnswer::Received(got))) => {
                let ids: HashSet<&MessageId> = got.iter().map(|(m, _, _)| m).collect();
                if got.len() > *asked as usize || ids.len() != got.len() {
                    return fail(None, format!("a receive of at most {asked} returned {got:?}"), vec![r.clone()]);
                }
                for (m, count, receipt) in got {
                    per_msg.entry(m.clone()).or_default().push((i, Step::Receive(*count, receipt.clone()), true));
                }
            }
            (QueueOp::Delete { msg, receipt }, _) => {
                per_msg.entry(msg.clone()).or_default().push((i, Step::Delete(receipt.clone()), answered))
            }
            (QueueOp::Release { msg, receipt }, _) => {
                per_msg.entry(msg.clone()).or_default().push((i, Step::Release(receipt.clone()), answered))
            }
            _ => {}
        }
    }
    for (msg, calls) in &per_msg {
        let published = calls.iter().filter(|(_, s, _)| matches!(s, Step::Publish)).count();
        let mut calls = calls.clone();
        if published == 0 && publish_failed {
            // A publish that failed may have put it there; let it go first.
            calls.insert(0, (usize::MAX, Step::Publish, false));
        }
        if published > 1 || !linearizable(history, &calls, config) {
            let shown =
                calls.iter().filter(|(i, _, _)| *i != usize::MAX).map(|(i, _, _)| history[*i].clone()).collect();
            let reason = if published > 1 {
                "two publishes answered the same message id".to_owned()
            } else {
                "no order of its calls is one the model allows".to_owned()
            };
            return fail(Some(msg.clone()), reason, shown);
        }
    }
    Ok(())
}

/// Wing–Gong over one message's calls, memoised on (calls placed, state).
fn linearizable(history: &[QueueRecord], calls: &[(usize, Step, bool)], config: QueueConfig) -> bool {
    let max = config.max_receives;
    let interval = |i: usize| if i == usize::MAX { (0, u64::MAX) } else { (history[i].invoke, history[i].complete) };
    let n = calls.len();
    assert!(n <= 64, "one message's calls fit a u64 mask");
    let must: u64 = calls.iter().enumerate().filter(|(_, (_, _, a))| *a).fold(0, |m, (k, _)| m | 1 << k);
    let mut seen = HashSet::new();
    let mut stack = vec![(0u64, State::Unpublished)];
    while let Some((placed, state)) = stack.pop() {
        if placed & must == must {
            return true;
        }
        if !seen.insert((placed, state.clone())) {
            continue;
        }
        if matches!(state, State::Visible(c, _) if c == max) {
            stack.push((placed, State::Dead));
        }
        for (k, (i, step, _)) in calls.iter().enumerate() {
            if placed & (1 << k) != 0 {
                continue;
            }
            let (invoke, _) = interval(*i);
            // Not before an answered call that returned before this one was made.
            let held = calls
                .iter()
                .enumerate()
                .any(|(j, (o, _, answered))| *answered && placed & (1 << j) == 0 && j != k && interval(*o).1 < invoke);
            if held {
                continue;
            }
            for s in next(&state, step, config) {
                stack.push((placed | 1 << k, s));
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_most(max_receives: u32) -> QueueConfig {
        QueueConfig { clients: 1, ops_per_client: 1, max_receives, stale_release_may_apply: false }
    }

    fn id(s: &str) -> MessageId {
        MessageId(s.into())
    }

    fn r(s: &str) -> Receipt {
        Receipt(s.into())
    }

    /// A history of sequential calls, each one tick after the last unless given overlapping.
    fn h(calls: Vec<(u64, u64, QueueOp, Result<QueueAnswer, String>)>) -> Vec<QueueRecord> {
        calls
            .into_iter()
            .map(|(invoke, complete, op, answer)| QueueRecord { client: 1, invoke, complete, op, answer })
            .collect()
    }

    fn publish(t: u64, m: &str) -> (u64, u64, QueueOp, Result<QueueAnswer, String>) {
        (t, t + 1, QueueOp::Publish, Ok(QueueAnswer::Published(id(m))))
    }

    fn receive(t: u64, end: u64, got: &[(&str, u32, &str)]) -> (u64, u64, QueueOp, Result<QueueAnswer, String>) {
        let got = got.iter().map(|(m, c, rc)| (id(m), *c, r(rc))).collect();
        (t, end, QueueOp::Receive { max: 3 }, Ok(QueueAnswer::Received(got)))
    }

    fn release(t: u64, m: &str, rc: &str) -> (u64, u64, QueueOp, Result<QueueAnswer, String>) {
        (t, t + 1, QueueOp::Release { msg: id(m), receipt: r(rc) }, Ok(QueueAnswer::Done))
    }

    fn delete(t: u64, m: &str, rc: &str) -> (u64, u64, QueueOp, Result<QueueAnswer, String>) {
        (t, t + 1, QueueOp::Delete { msg: id(m), receipt: r(rc) }, Ok(QueueAnswer::Done))
    }

    #[test]
    fn a_lawful_history_passes() {
        let history = h(vec![
            publish(0, "m"),
            receive(2, 3, &[("m", 1, "a")]),
            release(4, "m", "a"),
            receive(6, 9, &[("m", 2, "b")]),
            // A delete with the older receipt, overlapping: it may or may not delete.
            (7, 8, QueueOp::Delete { msg: id("m"), receipt: r("a") }, Ok(QueueAnswer::Done)),
            delete(10, "m", "b"),
            receive(12, 13, &[]),
        ]);
        assert!(check_queue(&history, at_most(5)).is_ok());
    }

    #[test]
    fn a_receive_after_an_acknowledged_delete_is_caught() {
        let history = h(vec![
            publish(0, "m"),
            receive(2, 3, &[("m", 1, "a")]),
            delete(4, "m", "a"),
            receive(6, 7, &[("m", 2, "b")]),
        ]);
        let v = check_queue(&history, at_most(5)).unwrap_err();
        assert_eq!(v.msg, Some(id("m")), "{v}");
    }

    #[test]
    fn a_message_handed_to_two_receivers_at_once_is_caught() {
        // Two overlapping receives both hold it, with no release between.
        let history = h(vec![publish(0, "m"), receive(2, 5, &[("m", 1, "a")]), receive(3, 6, &[("m", 2, "b")])]);
        assert!(check_queue(&history, at_most(5)).is_err());
    }

    #[test]
    fn a_skipped_count_and_a_receive_past_the_maximum_are_caught() {
        let skipped = h(vec![
            publish(0, "m"),
            receive(2, 3, &[("m", 1, "a")]),
            release(4, "m", "a"),
            receive(6, 7, &[("m", 3, "b")]),
        ]);
        assert!(check_queue(&skipped, at_most(5)).is_err());
        let mut calls = vec![publish(0, "m")];
        for n in 1..=4u32 {
            let t = u64::from(n) * 10;
            let receipt = format!("r{n}");
            calls.push(receive(t, t + 1, &[("m", n, receipt.as_str())]));
            calls.push(release(t + 2, "m", &receipt));
        }
        let past = h(calls);
        assert!(check_queue(&past, at_most(3)).is_err(), "at the maximum it is dead-lettered, never returned");
        assert!(check_queue(&past, at_most(4)).is_ok());
    }

    #[test]
    fn a_release_with_a_stale_receipt_that_succeeds_is_caught() {
        let history = h(vec![
            publish(0, "m"),
            receive(2, 3, &[("m", 1, "a")]),
            release(4, "m", "a"),
            receive(6, 7, &[("m", 2, "b")]),
            release(8, "m", "a"),
        ]);
        assert!(check_queue(&history, at_most(5)).is_err());
        let moto = QueueConfig { stale_release_may_apply: true, ..at_most(5) };
        assert!(check_queue(&history, moto).is_ok(), "moto's leniency, allowed where asked for");
    }
}
