//! Is a history linearizable? Wing & Gong's search with Lowe's memoisation: linearize the
//! calls one at a time, each time trying every call that may go next, and never explore
//! the same (calls linearized, model state) twice.
//!
//! A call may go next when no other call still to be placed returned before it was made.
//! An indeterminate call never returned: it may take effect at any point after it was made,
//! or not at all, so it never holds others back and need not be placed.

use std::cmp::Reverse;
use std::collections::HashSet;
use std::fmt;

use super::history::{Op, Outcome, Record};
use super::model::{self, State};

/// Search states after which [`check`] gives up: far more than any history of a few dozen
/// calls needs, few enough to answer within seconds and a few hundred MB.
pub const BUDGET: usize = 500_000;

#[derive(Debug)]
pub enum Failure {
    NotLinearizable(Box<Counterexample>),
    /// The search met its budget before it could decide.
    Undecided {
        states: usize,
    },
}

/// Where the search got stuck furthest: with the most answered calls placed, and of those
/// with the fewest indeterminate ones.
#[derive(Debug, Clone)]
pub struct Counterexample {
    /// The longest order of calls the model agrees with, as `#record op → answer`.
    pub linearized: Vec<String>,
    /// The model's state after them.
    pub state: State,
    /// The calls that could have gone next there, none of which the model could answer so.
    pub next: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Undecided { states } => write!(f, "undecided: the search gave up after {states} states"),
            Failure::NotLinearizable(c) => {
                writeln!(f, "not linearizable. The longest order the model agrees with:")?;
                for line in &c.linearized {
                    writeln!(f, "    {line}")?;
                }
                writeln!(f, "  leaves the store as: {}", c.state)?;
                write!(f, "  where the model answers none of: {}", c.next.join("; "))
            }
        }
    }
}

/// One atomic part of a recorded call (see [`model::atoms`]).
struct Atom {
    record: usize,
    invoke: u64,
    complete: u64,
    op: Op,
    answer: Outcome,
}

impl Atom {
    fn describe(&self) -> String {
        match &self.answer {
            Ok(answer) => format!("#{} {} → {answer}", self.record, self.op),
            Err(why) => format!("#{} {} → ? ({why})", self.record, self.op),
        }
    }
}

/// Ok if some order of the calls, each placed between its invocation and its completion,
/// gets from the model every answer recorded. Record numbers in the counterexample are
/// positions in `history`.
pub fn check(history: &[Record]) -> Result<(), Failure> {
    let mut atoms: Vec<Atom> = history
        .iter()
        .enumerate()
        .flat_map(|(record, r)| {
            model::atoms(&r.op, &r.answer).into_iter().map(move |(op, answer)| Atom {
                record,
                invoke: r.invoke,
                complete: r.complete,
                op,
                answer,
            })
        })
        // Reads that did not answer constrain nothing.
        .filter(|a| a.answer.is_ok() || !a.op.is_read())
        .collect();
    atoms.sort_by_key(|a| a.invoke);
    let answered = atoms.iter().filter(|a| a.answer.is_ok()).count();
    let mut search = Search {
        atoms: &atoms,
        seen: HashSet::new(),
        path: Vec::new(),
        furthest: None,
        deepest: Counterexample { linearized: Vec::new(), state: State::initial(), next: Vec::new() },
    };
    let mut placed = Bits::new(atoms.len());
    if search.place(&mut placed, &State::initial(), answered)? {
        Ok(())
    } else {
        Err(Failure::NotLinearizable(Box::new(search.deepest)))
    }
}

struct Search<'a> {
    atoms: &'a [Atom],
    seen: HashSet<(Bits, State)>,
    path: Vec<usize>,
    /// How far `deepest` got: answered calls placed, indeterminate ones placed.
    furthest: Option<(usize, Reverse<usize>)>,
    deepest: Counterexample,
}

impl Search<'_> {
    /// Whether the atoms not yet `placed` can follow, from `state`, until none of the
    /// `answered` ones is left.
    fn place(&mut self, placed: &mut Bits, state: &State, answered: usize) -> Result<bool, Failure> {
        if answered == 0 {
            return Ok(true);
        }
        if !self.seen.insert((placed.clone(), state.clone())) {
            return Ok(false);
        }
        if self.seen.len() > BUDGET {
            return Err(Failure::Undecided { states: self.seen.len() });
        }
        let horizon = (0..self.atoms.len())
            .filter(|&i| !placed.get(i) && self.atoms[i].answer.is_ok())
            .map(|i| self.atoms[i].complete)
            .min()
            .unwrap_or(u64::MAX);
        let candidates =
            (0..self.atoms.len()).take_while(|&i| self.atoms[i].invoke < horizon).filter(|&i| !placed.get(i));
        for i in candidates.collect::<Vec<_>>() {
            let atom = &self.atoms[i];
            let Some(next) = model::apply(state, &atom.op, atom.answer.as_ref().ok()) else { continue };
            if atom.answer.is_err() && next == *state {
                // Leaving it out is the same and keeps more options open.
                continue;
            }
            placed.flip(i);
            self.path.push(i);
            if self.place(placed, &next, answered - usize::from(atom.answer.is_ok()))? {
                return Ok(true);
            }
            self.path.pop();
            placed.flip(i);
        }
        let told = self.path.iter().filter(|&&i| self.atoms[i].answer.is_ok()).count();
        let reached = Some((told, Reverse(self.path.len() - told)));
        if reached > self.furthest {
            self.furthest = reached;
            self.deepest = Counterexample {
                linearized: self.path.iter().map(|&i| self.atoms[i].describe()).collect(),
                state: state.clone(),
                next: (0..self.atoms.len())
                    .take_while(|&i| self.atoms[i].invoke < horizon)
                    .filter(|&i| !placed.get(i) && self.atoms[i].answer.is_ok())
                    .map(|i| self.atoms[i].describe())
                    .collect(),
            };
        }
        Ok(false)
    }
}

/// Which atoms are placed.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }

    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    fn flip(&mut self, i: usize) {
        self.0[i / 64] ^= 1 << (i % 64);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use gift_core::domain::Status;

    use super::super::history::{Answer, Decision, G, K};
    use super::*;

    pub(crate) const A: K = K(0);
    pub(crate) const B: K = K(1);

    pub(crate) fn rec(client: usize, invoke: u64, complete: u64, op: Op, answer: Outcome) -> Record {
        Record { client, invoke, complete, op, answer }
    }

    pub(crate) fn send(gift: G, key: K) -> Op {
        Op::RequestSend { gift, key }
    }

    pub(crate) fn decided(d: Decision) -> Outcome {
        Ok(Answer::Send(d))
    }

    fn read(status: Status) -> Outcome {
        Ok(Answer::Status(Some(status)))
    }

    fn lost() -> Outcome {
        Err("given up".into())
    }

    fn not_linearizable(history: &[Record]) -> Counterexample {
        match check(history) {
            Err(Failure::NotLinearizable(c)) => *c,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_history_is_linearizable() {
        assert!(check(&[]).is_ok());
    }

    #[test]
    fn overlapping_calls_may_take_effect_in_either_order() {
        let g = G(0);
        let history = [
            rec(0, 0, 5, send(g, A), decided(Decision::Queued)),
            rec(1, 1, 6, send(g, B), decided(Decision::Conflict(Status::Queued))),
            // Overlaps the send, so it may read before it.
            rec(2, 2, 7, Op::Get { gift: g }, read(Status::Created)),
            rec(3, 3, 8, Op::OutboxClaim { hold: false }, Ok(Answer::Due(vec![(g, A)]))),
            rec(0, 9, 10, Op::MarkSentAll { gifts: vec![g, g] }, Ok(Answer::WonEach(vec![true, false]))),
            rec(1, 11, 12, send(g, A), decided(Decision::Replay)),
            rec(
                2,
                11,
                13,
                Op::GetGifts { gifts: vec![g, G(1)] },
                Ok(Answer::Statuses(vec![Some(Status::Sent), Some(Status::Created)])),
            ),
        ];
        assert!(check(&history).is_ok(), "{:?}", check(&history));
    }

    #[test]
    fn two_keys_cannot_both_queue_a_gift() {
        let history = [
            rec(0, 0, 2, send(G(1), A), decided(Decision::Queued)),
            rec(1, 1, 3, send(G(1), B), decided(Decision::Queued)),
        ];
        let c = not_linearizable(&history);
        assert_eq!(c.linearized.len(), 1, "{c:?}");
    }

    #[test]
    fn a_read_after_a_finished_mark_sent_sees_it() {
        let g = G(2);
        let history = [
            rec(0, 0, 1, send(g, A), decided(Decision::Queued)),
            rec(0, 2, 3, Op::MarkSent { gift: g }, Ok(Answer::Won(true))),
            rec(1, 4, 5, Op::Get { gift: g }, read(Status::Queued)),
        ];
        not_linearizable(&history);
    }

    #[test]
    fn an_indeterminate_call_may_have_happened_after_it_was_made() {
        let g = G(0);
        let seen_queued = rec(1, 2, 3, Op::Get { gift: g }, read(Status::Queued));
        // Nothing queued the gift: impossible.
        not_linearizable(std::slice::from_ref(&seen_queued));
        // A send that got no answer explains it, even one that ended before the read.
        assert!(check(&[rec(0, 0, 1, send(g, A), lost()), seen_queued.clone()]).is_ok());
        // But not one made after the read returned.
        not_linearizable(&[seen_queued.clone(), rec(0, 4, 5, send(g, A), lost())]);
        // Nor does it have to happen: a later read may still see the gift CREATED.
        let history = [rec(0, 0, 1, send(g, A), lost()), rec(1, 2, 3, Op::Get { gift: g }, read(Status::Created))];
        assert!(check(&history).is_ok());
    }

    #[test]
    fn a_recorded_publish_may_land_after_it_returns_but_only_once() {
        let g = G(0);
        let row = || Ok(Answer::Due(vec![(g, A)]));
        let mut history = vec![
            rec(0, 0, 1, send(g, A), decided(Decision::Queued)),
            rec(0, 2, 3, Op::OutboxPublished { gift: g, key: A }, Ok(Answer::Done)),
            rec(1, 4, 5, Op::OutboxClaim { hold: false }, row()),
            rec(1, 6, 7, Op::OutboxClaim { hold: false }, Ok(Answer::Due(vec![]))),
        ];
        assert!(check(&history).is_ok());
        history.push(rec(2, 8, 9, Op::OutboxClaim { hold: false }, row()));
        not_linearizable(&history);
    }

    #[test]
    fn a_gift_is_won_at_most_once_but_maybe_at_a_later_place() {
        let g = G(0);
        let batch = |won: Vec<bool>| rec(0, 2, 5, Op::MarkSentAll { gifts: vec![g, g] }, Ok(Answer::WonEach(won)));
        let queued = rec(1, 0, 3, send(g, A), decided(Decision::Queued));
        not_linearizable(&[queued.clone(), batch(vec![true, true])]);
        // The first place looked before the send, the second after it.
        assert!(check(&[queued.clone(), batch(vec![false, true])]).is_ok());
        assert!(check(&[queued, batch(vec![true, false])]).is_ok());
    }

    #[test]
    fn a_batch_is_atomic_per_gift_only() {
        // Two sends in a row, and a batch read overlapping both that saw the second but not
        // the first: fine for reads one gift at a time, as the port allows.
        let history = [
            rec(
                0,
                0,
                9,
                Op::GetGifts { gifts: vec![G(0), G(1)] },
                Ok(Answer::Statuses(vec![Some(Status::Created), Some(Status::Queued)])),
            ),
            rec(1, 1, 2, send(G(0), A), decided(Decision::Queued)),
            rec(1, 3, 4, send(G(1), A), decided(Decision::Queued)),
        ];
        assert!(check(&history).is_ok());
    }
}
