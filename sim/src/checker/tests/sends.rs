//! Pseudo-sends: each from a message, of an unfinished gift, at most once; and the SENT
//! and FAILED writes that follow from them.

use super::*;

#[test]
fn a_pseudo_send_after_sent_is_caught() {
    let gift = g(1);
    let mut h = good(gift);
    // A duplicate message, read as QUEUED by a broken read, sent again.
    h.push(Event::Published { node: "relay-0".into(), msg: 2, gift, key: "K-1~!".into() });
    h.attempt("worker-1", 2, gift, "K-1~!", 1, true);
    let k = h.kinds(&[]);
    assert!(k.contains(&Invariant::SentTwice), "{k:?}");
}

#[test]
fn two_successes_in_one_batch_are_caught_and_a_race_is_only_counted() {
    let gift = g(1);
    let mut h = H::default();
    h.accept(gift, "k", 1).push(Event::Published { node: "api-0".into(), msg: 2, gift, key: "k".into() });
    h.receive(W, 1, gift, "k", 1).receive(W, 2, gift, "k", 1).read(W, gift, Status::Queued);
    let (a, b) = (h.start(W, gift, "k", 1), h.start(W, gift, "k", 1));
    h.outcome(W, a, gift, true).outcome(W, b, gift, true);
    assert_eq!(h.kinds(&[]), vec![Invariant::SentTwice]);

    // Two workers that each read QUEUED before either recorded SENT: legitimate, counted.
    let mut h = H::default();
    h.accept(gift, "k", 1).receive(W, 1, gift, "k", 1).read(W, gift, Status::Queued);
    let a = h.start(W, gift, "k", 1);
    h.receive("worker-1", 1, gift, "k", 2).read("worker-1", gift, Status::Queued);
    let b = h.start("worker-1", gift, "k", 2);
    h.outcome(W, a, gift, true).outcome("worker-1", b, gift, true).sent(W, gift, true).sent("worker-1", gift, false);
    let report = h.check(&[(gift, Status::Sent)]);
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.extra_sends, 1);
}

#[test]
fn sent_after_the_read_is_a_race_but_a_stale_read_is_no_excuse() {
    // worker-1 reads QUEUED; worker-0's SENT lands; worker-1 then starts: the at-least-once
    // race real processes hit (read and pseudo-send are not atomic), counted.
    let gift = g(1);
    let mut h = H::default();
    h.accept(gift, "k", 1).push(Event::Published { node: "relay-0".into(), msg: 2, gift, key: "k".into() });
    h.receive(W, 1, gift, "k", 1).read(W, gift, Status::Queued);
    h.receive("worker-1", 2, gift, "k", 1).read("worker-1", gift, Status::Queued);
    let a = h.start(W, gift, "k", 1);
    h.outcome(W, a, gift, true).sent(W, gift, true);
    let b = h.start("worker-1", gift, "k", 1);
    h.outcome("worker-1", b, gift, true).sent("worker-1", gift, false);
    let report = h.check(&[(gift, Status::Sent)]);
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.extra_sends, 1);

    // The same, but worker-1's only read predates the message it acts on: it never asked
    // the store about this delivery, so the send after SENT is a second send.
    let mut h = H::default();
    h.accept(gift, "k", 1).push(Event::Published { node: "relay-0".into(), msg: 2, gift, key: "k".into() });
    h.read("worker-1", gift, Status::Queued).receive(W, 1, gift, "k", 1).read(W, gift, Status::Queued);
    let a = h.start(W, gift, "k", 1);
    h.outcome(W, a, gift, true).sent(W, gift, true);
    h.receive("worker-1", 2, gift, "k", 1);
    let b = h.start("worker-1", gift, "k", 1);
    h.outcome("worker-1", b, gift, true);
    assert!(h.kinds(&[(gift, Status::Sent)]).contains(&Invariant::SentTwice));
}

#[test]
fn failed_with_a_success_in_the_same_batch_is_caught() {
    // Today's bug F1: two messages of one gift in a batch; the one on its fifth receive
    // fails and writes FAILED while the other's pseudo-send is still running, and succeeds.
    let gift = g(1);
    let mut h = H::default();
    h.accept(gift, "k", 1).push(Event::Published { node: "relay-0".into(), msg: 2, gift, key: "k".into() });
    h.worn(1, gift, "k", 4).receive(W, 1, gift, "k", 5).receive(W, 2, gift, "k", 1).read(W, gift, Status::Queued);
    let (a, b) = (h.start(W, gift, "k", 5), h.start(W, gift, "k", 1));
    h.outcome(W, a, gift, false).failed(W, gift, true).outcome(W, b, gift, true).sent(W, gift, false);
    assert_eq!(h.kinds(&[(gift, Status::Failed)]), vec![Invariant::FailedDespiteSuccess]);
}

#[test]
fn failed_before_a_final_receive_is_caught() {
    let gift = g(2);
    let mut h = H::default();
    h.accept(gift, "k", 1);
    for n in 1..=4 {
        h.attempt(W, 1, gift, "k", n, false);
    }
    h.failed(W, gift, true);
    assert_eq!(h.kinds(&[]), vec![Invariant::FailedTooEarly]);

    // Five receives counted over two messages (a re-arm's new message on its first receive)
    // do not make a final receive.
    let mut h = H::default();
    h.accept(gift, "k", 1);
    for n in 1..=4 {
        h.attempt(W, 1, gift, "k", n, false);
    }
    h.push(Event::Published { node: "relay-0".into(), msg: 2, gift, key: "k".into() });
    h.attempt(W, 2, gift, "k", 1, false).failed(W, gift, true);
    assert_eq!(h.kinds(&[]), vec![Invariant::FailedTooEarly]);

    // Another worker's final failure does not entitle this one.
    let mut h = exhausted(gift);
    h.entries.pop();
    h.failed("worker-1", gift, true);
    assert_eq!(h.kinds(&[]), vec![Invariant::FailedTooEarly]);

    // A queue that reports a fifth receive of a message it handed out once.
    let mut h = H::default();
    h.accept(gift, "k", 1).attempt(W, 1, gift, "k", 5, false).failed(W, gift, true);
    assert_eq!(h.kinds(&[]), vec![Invariant::FailedTooEarly]);
}

#[test]
fn a_pseudo_send_must_come_from_a_received_message_with_its_own_count() {
    let gift = g(3);
    let mut h = H::default();
    h.accept(gift, "k", 1).receive(W, 1, gift, "k", 1).read(W, gift, Status::Queued);
    // The worker claims receive 5 of a message received once.
    let a = h.start(W, gift, "k", 5);
    h.outcome(W, a, gift, false);
    assert_eq!(h.kinds(&[]), vec![Invariant::PseudoSendWithoutMessage]);
    // An unseen receive is no receive for the worker.
    let mut h = H::default();
    h.accept(gift, "k", 1);
    h.push(Event::Received { node: W.into(), msg: 1, gift, key: "k".into(), receive_count: 1, seen: false });
    h.read(W, gift, Status::Queued);
    h.start(W, gift, "k", 1);
    assert_eq!(h.kinds(&[]), vec![Invariant::PseudoSendWithoutMessage]);
}

#[test]
fn a_pseudo_send_of_a_gift_read_as_finished_is_caught() {
    let gift = g(4);
    let mut h = good(gift);
    h.push(Event::Published { node: "relay-0".into(), msg: 2, gift, key: "K-1~!".into() });
    h.receive(W, 2, gift, "K-1~!", 1).read(W, gift, Status::Sent);
    let a = h.start(W, gift, "K-1~!", 1);
    h.outcome(W, a, gift, false);
    assert_eq!(h.kinds(&[]), vec![Invariant::PseudoSendOfFinishedGift]);
}

#[test]
fn sent_without_a_successful_attempt_is_caught() {
    let gift = g(4);
    let mut h = H::default();
    h.accept(gift, "k", 1).attempt(W, 1, gift, "k", 1, false).sent(W, gift, true);
    assert_eq!(h.kinds(&[]), vec![Invariant::SentWithoutSuccess]);
    let mut h = H::default();
    h.accept(gift, "k", 1);
    assert!(h.kinds(&[(gift, Status::Sent)]).contains(&Invariant::SentWithoutSuccess));
}

#[test]
fn failed_after_a_success_lost_with_its_killed_worker_is_counted_not_a_violation() {
    let gift = g(11);
    let mut h = H::default();
    h.accept(gift, "k", 1).attempt(W, 1, gift, "k", 1, true).push(Event::Killed { node: W.into() });
    for n in 2..=5 {
        h.attempt("worker-1", 1, gift, "k", n, false);
    }
    h.failed("worker-1", gift, true);
    let report = h.check(&[(gift, Status::Failed)]);
    assert_eq!((report.violations, report.failed_after_lost_success), (vec![], 1));
    // The same history without the kill: the success was known, FAILED breaks the rule.
    h.entries.retain(|e| !matches!(e.event, Event::Killed { .. }));
    assert_eq!(h.kinds(&[(gift, Status::Failed)]), vec![Invariant::FailedDespiteSuccess]);
}

#[test]
fn failed_beside_a_duplicate_in_another_worker_is_counted_but_not_in_the_same_worker() {
    let gift = g(12);
    let two_messages = |success_node: &str| {
        let mut h = H::default();
        h.accept(gift, "k", 1).push(Event::Published { node: "relay-0".into(), msg: 2, gift, key: "k".into() });
        h.receive(success_node, 2, gift, "k", 1).read(success_node, gift, Status::Queued);
        let ok = h.start(success_node, gift, "k", 1);
        h.worn(1, gift, "k", 4).receive(W, 1, gift, "k", 5).read(W, gift, Status::Queued);
        let failing = h.start(W, gift, "k", 5);
        h.outcome(W, failing, gift, false).failed(W, gift, true).outcome(success_node, ok, gift, true);
        h.sent(success_node, gift, false);
        h
    };
    let report = two_messages("worker-1").check(&[(gift, Status::Failed)]);
    assert_eq!((report.violations, report.failed_beside_duplicate), (vec![], 1));
    assert_eq!(two_messages(W).kinds(&[(gift, Status::Failed)]), vec![Invariant::FailedDespiteSuccess]);
}

#[test]
fn a_pseudo_send_outcome_the_failure_rate_rules_out_is_caught() {
    let gift = g(15);
    let mut h = H::default();
    h.accept(gift, "k", 1).attempt(W, 1, gift, "k", 1, true);
    let at = |rate: f64| {
        let expect = Expect { send_failure_rate: rate, ..EXPECT };
        check(&h.entries, &End { finals: None, expect }).violations.iter().map(|v| v.invariant).collect::<Vec<_>>()
    };
    assert_eq!(at(1.0), vec![Invariant::RateIgnored]);
    assert_eq!(at(0.5), vec![]);
}

/// How the succeeding worker's renewal of the message went before the queue handed the
/// message to the worker that then failed it finally.
#[derive(Clone, Copy, PartialEq)]
enum Renewal {
    /// Asked with a third of the visibility to run, unanswered at the handover.
    InFlight,
    /// Never asked (a heartbeat that does not beat).
    None,
    /// Asked in time, and answered (failed) before the handover: the lease knew.
    Failed,
    /// Asked with less than a third of the visibility left.
    Late,
    /// The success ran on an earlier receive of the same worker, which never renewed; a
    /// later receive's renewal (another batch) was in flight at the handover.
    OtherReceive,
}

#[test]
fn failed_after_a_renewal_the_queue_outran_is_counted_but_a_missing_or_late_renewal_is_caught() {
    let gift = g(16);
    // Visibility 9 ms, each event 1 ms after the last: an ask is timely up to 6 ms after the
    // receive, and the queue hands the message on 9 ms after it.
    let expect = Expect { visibility_timeout_ms: 9, ..EXPECT };
    let history = |renewal: Renewal| {
        let mut h = H::default();
        if renewal == Renewal::OtherReceive {
            h.accept(gift, "k", 1).worn(1, gift, "k", 2);
            h.attempt("worker-1", 1, gift, "k", 3, true);
            h.pad_to(15).receive("worker-1", 1, gift, "k", 4);
        } else {
            h.accept(gift, "k", 1).worn(1, gift, "k", 3);
            h.attempt("worker-1", 1, gift, "k", 4, true);
        }
        let received = h.entries.len() - if renewal == Renewal::OtherReceive { 1 } else { 4 };
        let ask = Event::VisibilityAsked { node: "worker-1".into(), msg: 1, delay_ms: 9 };
        match renewal {
            Renewal::InFlight | Renewal::OtherReceive => {
                h.push(ask);
            }
            Renewal::None => {}
            Renewal::Failed => {
                h.push(ask).push(Event::Visibility { node: "worker-1".into(), msg: 1, delay_ms: 9, applied: false });
            }
            Renewal::Late => {
                h.pad_to(received + 7).push(ask);
            }
        }
        h.pad_to(received + 9).attempt(W, 1, gift, "k", 5, false).failed(W, gift, true).sent("worker-1", gift, false);
        let finals: BTreeMap<GiftId, Status> = [(gift, Status::Failed)].into_iter().collect();
        check(&h.entries, &End { finals: Some(&finals), expect })
    };
    let report = history(Renewal::InFlight);
    assert_eq!((report.violations, report.failed_after_late_renewal), (vec![], 1));
    for renewal in [Renewal::None, Renewal::Failed, Renewal::Late, Renewal::OtherReceive] {
        let report = history(renewal);
        let kinds: Vec<Invariant> = report.violations.iter().map(|v| v.invariant).collect();
        assert_eq!((kinds, report.failed_after_late_renewal), (vec![Invariant::FailedDespiteSuccess], 0));
    }
}
