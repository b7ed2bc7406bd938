//! A failing history, cut down to the calls that make it fail, and drawn as a timeline.
//!
//! Deleting a call from a history can make it fail for a reason the store never gave (drop
//! the send, and a read of QUEUED becomes impossible). So a call is not deleted but
//! forgotten: its answer is dropped, which leaves it free to have taken effect at any point
//! after it was made, or not at all. A history that still fails with some calls forgotten
//! fails whatever they did, and so does its remainder without them, which is what is shown.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::checker::{check, Failure};
use super::history::Record;

/// The fewest calls of a non-linearizable `history` found (greedily) that still fail with
/// every other call forgotten: their positions in `history`, in order.
pub fn shrink(history: &[Record]) -> Vec<usize> {
    let mut kept: Vec<usize> = (0..history.len()).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for at in (0..kept.len()).rev() {
            let mut fewer = kept.clone();
            fewer.remove(at);
            if matches!(check(&forgetting(history, &fewer)), Err(Failure::NotLinearizable(_))) {
                kept = fewer;
                changed = true;
            }
        }
    }
    kept
}

/// `history` with the answers of all but the `kept` calls dropped.
pub fn forgetting(history: &[Record], kept: &[usize]) -> Vec<Record> {
    let forget = |r: &Record| Record { answer: Err("forgotten".into()), ..r.clone() };
    history.iter().enumerate().map(|(at, r)| if kept.contains(&at) { r.clone() } else { forget(r) }).collect()
}

/// One line per call of `shown`, in order: its position in `history`, client, interval
/// and call, and its answer (`?` and why for an indeterminate one). Times are renumbered
/// 0, 1, … over the calls shown, keeping their order.
pub fn timeline(history: &[Record], shown: &[usize]) -> String {
    let ticks: BTreeSet<u64> = shown.iter().flat_map(|&at| [history[at].invoke, history[at].complete]).collect();
    let tick = |t: u64| ticks.range(..t).count();
    let width = shown.iter().map(|&at| history[at].op.to_string().len()).max().unwrap_or(0);
    let mut out = String::new();
    for &at in shown {
        let r = &history[at];
        let answer = match &r.answer {
            Ok(answer) => answer.to_string(),
            Err(why) => format!("? ({why})"),
        };
        let (from, to, op) = (tick(r.invoke), tick(r.complete), r.op.to_string());
        writeln!(out, "#{at:<2} client {} [{from:>2} ..{to:>3}]  {op:<width$}  → {answer}", r.client)
            .expect("a String");
    }
    out
}

#[cfg(test)]
mod tests {
    use gift_core::domain::Status;

    use super::super::checker::tests::{decided, rec, send, A, B};
    use super::super::history::{Answer, Decision, Op, G};
    use super::*;

    #[test]
    fn shrinks_to_the_calls_that_contradict_each_other() {
        let history = [
            rec(0, 0, 1, send(G(0), A), decided(Decision::Queued)),
            rec(1, 2, 3, Op::Get { gift: G(0) }, Ok(Answer::Status(Some(Status::Queued)))),
            rec(2, 4, 7, send(G(1), A), decided(Decision::Queued)),
            rec(3, 5, 8, send(G(1), B), decided(Decision::Queued)),
            rec(0, 6, 9, Op::MarkSent { gift: G(0) }, Ok(Answer::Won(true))),
        ];
        let shrunk = shrink(&history);
        assert_eq!(shrunk, [2, 3], "{}", timeline(&history, &shrunk));
    }

    #[test]
    fn keeps_the_write_a_failing_read_depends_on() {
        // The read of CREATED fails only because the send returned before it: forgetting
        // the send would let it happen later, so the send stays.
        let history = [
            rec(0, 0, 1, send(G(0), A), decided(Decision::Queued)),
            rec(1, 2, 3, Op::Get { gift: G(1) }, Ok(Answer::Status(Some(Status::Created)))),
            rec(1, 4, 5, Op::Get { gift: G(0) }, Ok(Answer::Status(Some(Status::Created)))),
        ];
        assert_eq!(shrink(&history), [0, 2]);
    }

    #[test]
    fn a_timeline_has_a_line_per_call() {
        let history = [
            rec(0, 10, 30, send(G(0), A), decided(Decision::Queued)),
            rec(1, 20, 40, Op::OutboxClaim { hold: false }, Err("given up after 1ms".into())),
        ];
        let lines = timeline(&history, &[0, 1]);
        assert_eq!(
            lines,
            "#0  client 0 [ 0 ..  2]  request_send(g0, a)  → Queued\n\
             #1  client 1 [ 1 ..  3]  outbox_claim(peek)   → ? (given up after 1ms)\n"
        );
    }
}
