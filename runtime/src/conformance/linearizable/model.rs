//! The sequential specification: what [`MemoryStore`](crate::memory::MemoryStore) does, one
//! operation at a time, on the history's gifts and reduced to what a client observes.

use std::collections::BTreeSet;
use std::fmt;

use gift_core::domain::Status;

use super::history::{Answer, Decision, Op, Outcome, G, GIFTS, K};

/// The store as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct State {
    /// Per gift; `None`: no such gift.
    statuses: Vec<Option<Status>>,
    /// The accepted send requests.
    accepted: BTreeSet<(G, K)>,
    outbox: BTreeSet<(G, K)>,
    /// Outbox rows a held claim took: no later claim answers them (no claim of a history
    /// lapses within it).
    claimed: BTreeSet<(G, K)>,
    /// Rows recorded published, past every claim of a history. A store may move a row after
    /// `outbox_published` returns (PostgreSQL batches those writes off the request's path,
    /// and skips rows another transaction holds), so until a read misses it, each read may
    /// see the row due or not.
    deferring: BTreeSet<(G, K)>,
    /// Rows whose move a read has seen: no longer due within the history.
    deferred: BTreeSet<(G, K)>,
}

impl State {
    /// What the recorder starts from: `GIFTS` CREATED gifts and the ghost.
    pub fn initial() -> Self {
        let mut statuses = vec![Some(Status::Created); usize::from(GIFTS)];
        // The ghost, `G(GIFTS)`.
        statuses.push(None);
        Self {
            statuses,
            accepted: BTreeSet::new(),
            outbox: BTreeSet::new(),
            claimed: BTreeSet::new(),
            deferring: BTreeSet::new(),
            deferred: BTreeSet::new(),
        }
    }

    fn status(&self, gift: G) -> Option<Status> {
        self.statuses[usize::from(gift.0)]
    }

    /// QUEUED → `to`, the gift's outbox rows gone with the move; whether it moved.
    fn settle_queued(&mut self, gift: G, to: Status) -> bool {
        let queued = self.status(gift) == Some(Status::Queued);
        if queued {
            self.statuses[usize::from(gift.0)] = Some(to);
            for rows in [&mut self.outbox, &mut self.claimed, &mut self.deferring, &mut self.deferred] {
                rows.retain(|(g, _)| *g != gift);
            }
        }
        queued
    }
}

/// The keys of `gift` in `set`, comma-separated.
fn keys_of(set: &BTreeSet<(G, K)>, gift: G) -> String {
    set.iter().filter(|(g, _)| *g == gift).map(|(_, k)| k.to_string()).collect::<Vec<_>>().join(",")
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gifts = self.statuses.iter().enumerate().filter_map(|(at, s)| s.map(|s| (G(at as u8), s)));
        for (n, (gift, status)) in gifts.enumerate() {
            write!(f, "{}{gift} {status}", if n == 0 { "" } else { "; " })?;
            let sets = [
                ("key", &self.accepted),
                ("outbox", &self.outbox),
                ("claimed", &self.claimed),
                ("deferring", &self.deferring),
                ("deferred", &self.deferred),
            ];
            for (what, set) in sets {
                let keys = keys_of(set, gift);
                if !keys.is_empty() {
                    write!(f, " {what} {keys}")?;
                }
            }
        }
        Ok(())
    }
}

/// `op` applied to `state`: the state after it and the answer it gives.
pub fn step(state: &State, op: &Op) -> (State, Answer) {
    let mut next = state.clone();
    let answer = match *op {
        Op::RequestSend { gift, key } => Answer::Send(match state.status(gift) {
            None => Decision::NotFound,
            Some(_) if state.accepted.contains(&(gift, key)) => Decision::Replay,
            Some(Status::Created) => {
                next.accepted.insert((gift, key));
                next.outbox.insert((gift, key));
                next.statuses[usize::from(gift.0)] = Some(Status::Queued);
                Decision::Queued
            }
            Some(other) => Decision::Conflict(other),
        }),
        Op::Get { gift } => Answer::Status(state.status(gift)),
        Op::GetGifts { ref gifts } => Answer::Statuses(gifts.iter().map(|g| state.status(*g)).collect()),
        Op::MarkSent { gift } => Answer::Won(next.settle_queued(gift, Status::Sent)),
        // One after the other: an id listed twice is won at most once.
        Op::MarkSentAll { ref gifts } => {
            Answer::WonEach(gifts.iter().map(|g| next.settle_queued(*g, Status::Sent)).collect())
        }
        Op::MarkFailed { gift } => Answer::Won(next.settle_queued(gift, Status::Failed)),
        Op::OutboxClaim { hold } => {
            let rows: Vec<(G, K)> = state
                .outbox
                .iter()
                .filter(|row| !state.claimed.contains(row) && !state.deferred.contains(row))
                .copied()
                .collect();
            if hold {
                next.claimed.extend(rows.iter().copied());
            }
            Answer::Due(rows)
        }
        // The write may land after a send creates the row, so it is pending either way.
        Op::OutboxPublished { gift, key } => {
            next.deferring.insert((gift, key));
            Answer::Done
        }
    };
    (next, answer)
}

/// The state after `op` answered `observed`, or `None` if the model cannot answer that.
/// An indeterminate call (`observed` is `None`) has its effect here; that it may also have
/// had none is the checker's to try.
pub fn apply(state: &State, op: &Op, observed: Option<&Answer>) -> Option<State> {
    let (mut next, expected) = step(state, op);
    let Some(observed) = observed else { return Some(next) };
    match (expected, observed) {
        // A read may miss rows recorded published: those writes have landed.
        (Answer::Due(rows), Answer::Due(seen)) => {
            let ascending = seen.windows(2).all(|w| w[0] < w[1]);
            if !ascending || !seen.iter().all(|row| rows.contains(row)) {
                return None;
            }
            for row in rows.iter().filter(|row| !seen.contains(row)) {
                if !next.deferring.remove(row) {
                    return None;
                }
                next.deferred.insert(*row);
            }
            Some(next)
        }
        (expected, observed) => (expected == *observed).then_some(next),
    }
}

/// The atomic parts of a call: one per place for the batch calls, all in the batch's
/// interval. The port promises atomicity per gift only for those, and its default answers
/// one id after the other: a gift listed twice may lose at its first place and, queued
/// meanwhile, win at its second (SQLite does that under these clients), so each place is a
/// call of its own; that a gift is won at most once follows from the model.
pub fn atoms(op: &Op, outcome: &Outcome) -> Vec<(Op, Outcome)> {
    let (gifts, single): (&[G], fn(G) -> Op) = match op {
        Op::GetGifts { gifts } => (gifts, |gift| Op::Get { gift }),
        Op::MarkSentAll { gifts } => (gifts, |gift| Op::MarkSent { gift }),
        _ => return vec![(op.clone(), outcome.clone())],
    };
    let answers: Vec<Outcome> = match outcome {
        Err(why) => vec![Err(why.clone()); gifts.len()],
        Ok(Answer::Statuses(read)) => read.iter().map(|s| Ok(Answer::Status(*s))).collect(),
        Ok(Answer::WonEach(won)) => won.iter().map(|w| Ok(Answer::Won(*w))).collect(),
        Ok(other) => return vec![(op.clone(), Ok(Answer::Unexpected(other.to_string())))],
    };
    if answers.len() != gifts.len() {
        return vec![(op.clone(), Ok(Answer::Unexpected(format!("{} answers", answers.len()))))];
    }
    gifts.iter().map(|g| single(*g)).zip(answers).collect()
}

#[cfg(test)]
mod tests {
    use super::super::history::GHOST;
    use super::*;

    const A: K = K(0);
    const B: K = K(1);

    fn run(ops: &[Op]) -> (State, Vec<Answer>) {
        run_on(State::initial(), ops)
    }

    fn run_on(mut state: State, ops: &[Op]) -> (State, Vec<Answer>) {
        let mut answers = Vec::new();
        for op in ops {
            let (next, answer) = step(&state, op);
            state = next;
            answers.push(answer);
        }
        (state, answers)
    }

    #[test]
    fn sends_queue_once_replay_and_conflict() {
        let send = |gift, key| Op::RequestSend { gift, key };
        let (_, answers) =
            run(&[send(G(0), A), send(G(0), A), send(G(0), B), send(GHOST, A), Op::OutboxClaim { hold: false }]);
        assert_eq!(
            answers,
            [
                Answer::Send(Decision::Queued),
                Answer::Send(Decision::Replay),
                Answer::Send(Decision::Conflict(Status::Queued)),
                Answer::Send(Decision::NotFound),
                Answer::Due(vec![(G(0), A)]),
            ]
        );
    }

    #[test]
    fn only_queued_gifts_finish_and_a_batch_wins_a_gift_once() {
        let (_, answers) = run(&[
            Op::MarkSent { gift: G(0) },
            Op::RequestSend { gift: G(0), key: A },
            Op::MarkSentAll { gifts: vec![G(0), GHOST, G(0)] },
            Op::MarkFailed { gift: G(0) },
            Op::GetGifts { gifts: vec![G(0), G(1), GHOST] },
        ]);
        assert_eq!(answers[0], Answer::Won(false));
        assert_eq!(answers[2], Answer::WonEach(vec![true, false, false]));
        assert_eq!(answers[3], Answer::Won(false));
        assert_eq!(answers[4], Answer::Statuses(vec![Some(Status::Sent), Some(Status::Created), None]));
    }

    #[test]
    fn a_published_row_may_stay_due_until_a_read_misses_it() {
        let (state, _) = run(&[Op::RequestSend { gift: G(0), key: A }, Op::OutboxPublished { gift: G(0), key: A }]);
        let due = |rows: Vec<(G, K)>| Answer::Due(rows);
        let still = apply(&state, &PEEK, Some(&due(vec![(G(0), A)]))).expect("not moved yet");
        let moved = apply(&still, &PEEK, Some(&due(vec![]))).expect("moved now");
        assert_eq!(apply(&moved, &PEEK, Some(&due(vec![(G(0), A)]))), None, "a moved row came due again");
        let (fresh, _) = run(&[Op::RequestSend { gift: G(0), key: A }]);
        assert_eq!(apply(&fresh, &PEEK, Some(&due(vec![]))), None, "a row vanished unasked");
        // Recorded before the send made the row, the write may still land after it.
        let (early, _) = run(&[Op::OutboxPublished { gift: G(0), key: A }, Op::RequestSend { gift: G(0), key: A }]);
        assert!(apply(&early, &PEEK, Some(&due(vec![]))).is_some(), "a write that landed late");
    }

    #[test]
    fn a_gift_settles_with_its_outbox_row() {
        let due = |rows: Vec<(G, K)>| Answer::Due(rows);
        for settle in
            [Op::MarkSent { gift: G(0) }, Op::MarkFailed { gift: G(0) }, Op::MarkSentAll { gifts: vec![G(0)] }]
        {
            let (state, _) = run(&[Op::RequestSend { gift: G(0), key: A }, HOLD, settle.clone()]);
            assert_eq!(apply(&state, &PEEK, Some(&due(vec![(G(0), A)]))), None, "{settle}: the row outlived the gift");
        }
        let (lost, _) = run(&[Op::RequestSend { gift: G(0), key: A }, Op::MarkSent { gift: G(1) }]);
        assert!(apply(&lost, &PEEK, Some(&due(vec![(G(0), A)]))).is_some(), "a lost race took another gift's row");
    }

    const PEEK: Op = Op::OutboxClaim { hold: false };
    const HOLD: Op = Op::OutboxClaim { hold: true };

    /// A held claim takes its rows from every later claim, held or not, without removing
    /// them: a peek that misses a held row is no removal, and one that sees it is wrong.
    #[test]
    fn a_held_claim_hides_its_rows_from_later_claims() {
        let (state, _) = run(&[Op::RequestSend { gift: G(0), key: A }, Op::RequestSend { gift: G(1), key: A }]);
        let due = |rows: Vec<(G, K)>| Answer::Due(rows);
        let held = apply(&state, &HOLD, Some(&due(vec![(G(0), A), (G(1), A)]))).expect("both unclaimed");
        assert_eq!(apply(&held, &HOLD, Some(&due(vec![(G(0), A)]))), None, "a held row claimed again");
        let peeked = apply(&held, &PEEK, Some(&due(vec![]))).expect("held rows are not due");
        assert_eq!(run_on(peeked, &[Op::RequestSend { gift: G(2), key: A }, PEEK]).1[1], due(vec![(G(2), A)]));
        let (fresh, _) = run(&[Op::RequestSend { gift: G(0), key: A }]);
        let peeked = apply(&fresh, &PEEK, Some(&due(vec![(G(0), A)]))).expect("a peek holds nothing");
        assert!(apply(&peeked, &HOLD, Some(&due(vec![(G(0), A)]))).is_some(), "so a later claim takes it");
    }

    #[test]
    fn batches_split_into_their_places() {
        let batch = Op::MarkSentAll { gifts: vec![G(1), G(0)] };
        let parts = atoms(&batch, &Ok(Answer::WonEach(vec![true, false])));
        assert_eq!(
            parts,
            [
                (Op::MarkSent { gift: G(1) }, Ok(Answer::Won(true))),
                (Op::MarkSent { gift: G(0) }, Ok(Answer::Won(false)))
            ]
        );
        let short = atoms(&batch, &Ok(Answer::WonEach(vec![true])));
        assert!(matches!(short[..], [(_, Ok(Answer::Unexpected(_)))]), "{short:?}");
        let lost = atoms(&Op::GetGifts { gifts: vec![G(0), G(0)] }, &Err("timed out".into()));
        assert_eq!(
            lost,
            [(Op::Get { gift: G(0) }, Err("timed out".into())), (Op::Get { gift: G(0) }, Err("timed out".into()))]
        );
    }
}
