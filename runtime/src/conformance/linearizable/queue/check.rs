//! The checker: each message's calls searched for an order the model allows (Wing–Gong), and each receive's answer checked as a whole.

use std::collections::{BTreeMap, HashSet};

use gift_core::ports::MessageId;

use super::model::{next, State, Step};
use super::{QueueAnswer, QueueConfig, QueueOp, QueueRecord, QueueViolation};

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
    use gift_core::ports::Receipt;

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
