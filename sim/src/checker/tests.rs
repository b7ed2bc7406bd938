//! Each invariant on a hand-made history that breaks it (a check that cannot fail proves
//! nothing), and a clean history that passes them all.

use std::collections::BTreeMap;

use gift_core::domain::{GiftId, Status};

use super::*;
use crate::history::{Decision, Entry, Event, Phase, StoreCall};

const W: &str = "worker-0";
const EXPECT: Expect = Expect { max_receives: 5, heal_bound_ms: 1_000, send_failure_rate: 0.5, publish_grace_ms: 0 };

fn g(n: u128) -> GiftId {
    GiftId::from_random(n)
}

/// A history under construction: each event one millisecond after the last.
#[derive(Default)]
struct H {
    entries: Vec<Entry>,
    attempt: u64,
}

impl H {
    fn push(&mut self, event: Event) -> &mut Self {
        let at_ms = self.entries.len() as u64;
        self.entries.push(Entry { at_ms, event });
        self
    }

    fn store(&mut self, node: &str, call: StoreCall) -> &mut Self {
        self.push(Event::Store { node: node.into(), call, heard: true })
    }

    fn answer(&mut self, gift: GiftId, key: &str, code: u16) -> &mut Self {
        let body = answer_body(gift, key, code);
        self.push(Event::SendAnswered { gift, key: key.into(), code, body })
    }

    /// The API's accepted send: the store's Queued, the publish of `msg`, the 202.
    fn accept(&mut self, gift: GiftId, key: &str, msg: u64) -> &mut Self {
        let asked_ms = self.entries.len() as u64;
        self.store("api-0", StoreCall::RequestSend { gift, key: key.into(), decision: Decision::Queued, asked_ms })
            .push(Event::Published { node: "api-0".into(), msg, gift, key: key.into() })
            .answer(gift, key, 202)
    }

    fn receive(&mut self, node: &str, msg: u64, gift: GiftId, key: &str, n: u32) -> &mut Self {
        let (node, key) = (node.into(), key.into());
        self.push(Event::Received { node, msg, gift, key, receive_count: n, seen: true })
    }

    /// `times` receives of `msg` no worker saw (as a message's earlier receives).
    fn worn(&mut self, msg: u64, gift: GiftId, key: &str, times: u32) -> &mut Self {
        for n in 1..=times {
            let (node, key) = ("queue".into(), key.into());
            self.push(Event::Received { node, msg, gift, key, receive_count: n, seen: false });
        }
        self
    }

    fn read(&mut self, node: &str, gift: GiftId, status: Status) -> &mut Self {
        self.store(node, StoreCall::Read { gifts: vec![(gift, Some(status))], asked_ms: None })
    }

    fn start(&mut self, node: &str, gift: GiftId, key: &str, n: u32) -> u64 {
        self.attempt += 1;
        let attempt = self.attempt;
        let (node, key) = (node.into(), key.into());
        self.push(Event::DispatchStarted { node, attempt, gift, key, receive_count: n, status: Status::Queued });
        attempt
    }

    fn outcome(&mut self, node: &str, attempt: u64, gift: GiftId, ok: bool) -> &mut Self {
        self.push(Event::Dispatched { node: node.into(), attempt, gift, ok })
    }

    /// One worker turn on `msg`: receive, read QUEUED, pseudo-send with outcome `ok`.
    fn attempt(&mut self, node: &str, msg: u64, gift: GiftId, key: &str, n: u32, ok: bool) -> &mut Self {
        self.receive(node, msg, gift, key, n).read(node, gift, Status::Queued);
        let a = self.start(node, gift, key, n);
        self.outcome(node, a, gift, ok)
    }

    fn sent(&mut self, node: &str, gift: GiftId, won: bool) -> &mut Self {
        self.store(node, StoreCall::MarkSent { gifts: vec![(gift, won)] })
    }

    fn failed(&mut self, node: &str, gift: GiftId, applied: bool) -> &mut Self {
        self.store(node, StoreCall::MarkFailed { gift, applied })
    }

    fn delete(&mut self, node: &str, msg: u64) -> &mut Self {
        self.push(Event::Deleted { node: node.into(), msg })
    }

    fn check(&self, finals: &[(GiftId, Status)]) -> Report {
        let finals: BTreeMap<GiftId, Status> = finals.iter().copied().collect();
        check(&self.entries, &End { finals: (!finals.is_empty()).then_some(&finals), expect: EXPECT })
    }

    fn kinds(&self, finals: &[(GiftId, Status)]) -> Vec<Invariant> {
        let mut k: Vec<Invariant> = self.check(finals).violations.iter().map(|v| v.invariant).collect();
        k.sort();
        k.dedup();
        k
    }
}

fn answer_body(gift: GiftId, key: &str, code: u16) -> String {
    let key = serde_json::Value::String(key.into());
    if (200..300).contains(&code) {
        format!(r#"{{"gift_id":"{gift}","status":"QUEUED","request_id":{key}}}"#)
    } else {
        format!(r#"{{"error":{{"code":"X","message":"x"}},"request_id":{key}}}"#)
    }
}

/// Queued, failed four times, sent on the fifth receive, replayed.
fn good(gift: GiftId) -> H {
    let mut h = H::default();
    h.push(Event::Phase { phase: Phase::Safety }).accept(gift, "K-1~!", 1);
    for n in 1..=4 {
        h.attempt(W, 1, gift, "K-1~!", n, false);
    }
    h.attempt(W, 1, gift, "K-1~!", 5, true).sent(W, gift, true).delete(W, 1);
    h.store("api-1", StoreCall::RequestSend { gift, key: "K-1~!".into(), decision: Decision::Replay, asked_ms: 0 });
    h.answer(gift, "K-1~!", 200);
    h
}

/// Queued, failed on all five receives, FAILED.
fn exhausted(gift: GiftId) -> H {
    let mut h = H::default();
    h.accept(gift, "k", 1);
    for n in 1..=5 {
        h.attempt(W, 1, gift, "k", n, false);
    }
    h.failed(W, gift, true);
    h
}

#[test]
fn clean_histories_pass() {
    let gift = g(1);
    assert_eq!(good(gift).check(&[(gift, Status::Sent)]).violations, vec![]);
    assert_eq!(exhausted(gift).check(&[(gift, Status::Failed)]).violations, vec![]);
}

#[test]
fn a_status_going_back_is_caught() {
    let gift = g(1);
    let mut h = good(gift);
    h.read(W, gift, Status::Queued);
    assert_eq!(h.kinds(&[]), vec![Invariant::IllegalTransition]);
    let mut h = good(gift);
    assert_eq!(h.kinds(&[(gift, Status::Failed)]), vec![Invariant::IllegalTransition, Invariant::FailedDespiteSuccess]);
    h.failed("worker-1", gift, true);
    assert!(h.kinds(&[]).contains(&Invariant::IllegalTransition));
}

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
fn a_publish_without_an_accepted_send_is_caught() {
    let gift = g(5);
    let mut h = H::default();
    h.store(
        "api-0",
        StoreCall::RequestSend { gift, key: "a".into(), decision: Decision::Conflict(Status::Queued), asked_ms: 0 },
    );
    h.push(Event::Published { node: "api-0".into(), msg: 1, gift, key: "a".into() });
    assert_eq!(h.kinds(&[]), vec![Invariant::PublishedWithoutAcceptance]);
}

#[test]
fn deleting_the_last_message_of_an_unfinished_gift_is_caught() {
    let gift = g(6);
    let mut h = H::default();
    h.accept(gift, "k", 1).attempt(W, 1, gift, "k", 1, false).delete(W, 1);
    assert_eq!(h.kinds(&[]), vec![Invariant::MessageLost]);
    // With a duplicate left on the queue, nothing is lost.
    let mut h = H::default();
    h.accept(gift, "k", 1).push(Event::Published { node: "api-0".into(), msg: 2, gift, key: "k".into() });
    h.attempt(W, 1, gift, "k", 1, false).delete(W, 1);
    assert_eq!(h.kinds(&[]), vec![]);
    // A worker that read it SENT deletes its message before the SENT write's own answer.
    let mut h = H::default();
    h.accept(gift, "k", 1).attempt("worker-1", 1, gift, "k", 1, true);
    h.receive(W, 1, gift, "k", 2).read(W, gift, Status::Sent).delete(W, 1).sent("worker-1", gift, true);
    assert_eq!(h.kinds(&[(gift, Status::Sent)]), vec![]);
    // A worker whose SENT write found the gift finished (its own first try applied, its
    // answer lost) deletes the message: nothing is lost.
    let mut h = H::default();
    h.accept(gift, "k", 1).attempt(W, 1, gift, "k", 1, true).sent(W, gift, false).delete(W, 1);
    assert_eq!(h.kinds(&[(gift, Status::Sent)]), vec![]);
}

#[test]
fn client_answer_invariants_are_caught() {
    let gift = g(7);
    let mut h = H::default();
    h.accept(gift, "a", 1);
    h.push(Event::SendAnswered { gift, key: "a".into(), code: 200, body: answer_body(gift, "A", 200) });
    assert_eq!(h.kinds(&[]), vec![Invariant::ReplayChangedBody, Invariant::KeyNotEchoed]);

    let mut h = H::default();
    h.accept(gift, "a", 1).accept(gift, "b", 2);
    assert_eq!(h.kinds(&[]), vec![Invariant::QueuedTwice]);

    let mut h = H::default();
    h.answer(gift, "a", 202);
    assert_eq!(h.kinds(&[]), vec![Invariant::AcceptedWithoutCommit]);

    let mut h = H::default();
    h.answer(gift, "a", 503).answer(gift, "a", 500);
    assert_eq!(h.kinds(&[]), vec![Invariant::ServerError]);

    let mut h = H::default();
    h.accept(gift, "b", 1);
    h.push(Event::SendAnswered { gift, key: "a".into(), code: 409, body: r#"{"request_id":null}"#.into() });
    assert_eq!(h.kinds(&[]), vec![Invariant::KeyNotEchoed]);
}

#[test]
fn stuck_and_slow_healing_are_caught_only_in_the_liveness_check() {
    let (gift, orphan) = (g(8), g(9));
    let mut h = H::default();
    h.accept(gift, "a", 1);
    assert_eq!(h.kinds(&[]), vec![]);
    assert_eq!(h.kinds(&[(gift, Status::Queued), (orphan, Status::Queued)]), vec![Invariant::Stuck]);
    assert_eq!(h.check(&[(gift, Status::Queued), (orphan, Status::Queued)]).violations.len(), 2);
    assert_eq!(h.kinds(&[(gift, Status::Failed), (orphan, Status::Created)]), vec![]);

    let mut h = exhausted(gift);
    h.entries.insert(0, Entry { at_ms: 0, event: Event::Phase { phase: Phase::Healed } });
    assert_eq!(h.check(&[(gift, Status::Failed)]).heal_ms, Some(h.entries.last().unwrap().at_ms));
    h.entries.last_mut().unwrap().at_ms = 5_000;
    assert_eq!(h.kinds(&[(gift, Status::Failed)]), vec![Invariant::SlowToHeal]);
}

#[test]
fn a_gift_read_back_changed_is_caught() {
    let gift = g(10);
    let created = |message: Option<&str>| Event::Created { gift, amount: i64::MAX, message: message.map(Into::into) };
    let fetched = |body: String| Event::Fetched { gift, code: 200, body };
    let body = |amount: i64, message: &str| format!(r#"{{"gift_id":"{gift}","amount":{amount},"message":{message}}}"#);
    let mut h = H::default();
    h.push(created(Some("ギフト 🎁"))).push(fetched(body(i64::MAX, r#""ギフト 🎁""#)));
    h.push(created(None)).push(fetched(body(i64::MAX, "null")));
    assert_eq!(h.kinds(&[]), vec![]);
    let mut h = H::default();
    h.push(created(Some("ギフト 🎁"))).push(fetched(body(i64::MAX, r#""ギフト ?""#)));
    assert_eq!(h.kinds(&[]), vec![Invariant::GiftAltered]);
    let mut h = H::default();
    h.push(created(None)).push(fetched(body(i64::MAX - 1, "null")));
    assert_eq!(h.kinds(&[]), vec![Invariant::GiftAltered]);
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
fn a_graceful_stop_must_finish_with_every_delivery_handled() {
    let gift = g(13);
    let stop = |h: &mut H| {
        h.push(Event::Stopping { node: W.into() });
    };
    let mut h = H::default();
    h.accept(gift, "k", 1);
    stop(&mut h);
    h.attempt(W, 1, gift, "k", 1, true).sent(W, gift, true).delete(W, 1);
    h.push(Event::Handled {
        node: W.into(),
        msg: Some(1),
        receive_count: 1,
        gift: Some(gift),
        outcome: crate::history::Outcome::Sent,
    });
    h.push(Event::Stopped { node: W.into() });
    assert_eq!(h.kinds(&[]), vec![]);

    // Returned with the receive that was in progress at the stop unhandled.
    let mut h = H::default();
    h.accept(gift, "k", 1);
    stop(&mut h);
    h.receive(W, 1, gift, "k", 1).push(Event::Stopped { node: W.into() });
    assert_eq!(h.kinds(&[]), vec![Invariant::StopIncomplete]);

    // Never returned: killed at the end of the bound.
    let mut h = H::default();
    stop(&mut h);
    h.push(Event::Killed { node: W.into() });
    assert_eq!(h.kinds(&[]), vec![Invariant::StopIncomplete]);
}

fn handled(node: &str, msg: u64, gift: GiftId, outcome: crate::history::Outcome) -> Event {
    Event::Handled { node: node.into(), msg: Some(msg), receive_count: 1, gift: Some(gift), outcome }
}

#[test]
fn a_relay_publishing_before_the_grace_is_caught() {
    let gift = g(14);
    let mut h = H::default();
    h.accept(gift, "k", 1).push(Event::Published { node: "relay-0".into(), msg: 2, gift, key: "k".into() });
    let expect = Expect { publish_grace_ms: 100, ..EXPECT };
    let kinds: Vec<Invariant> =
        check(&h.entries, &End { finals: None, expect }).violations.iter().map(|v| v.invariant).collect();
    assert_eq!(kinds, vec![Invariant::RelayedEarly]);
    // The API's own publish right after the commit is how it should go.
    let mut h = H::default();
    h.accept(gift, "k", 1);
    assert!(check(&h.entries, &End { finals: None, expect }).violations.is_empty());
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

#[test]
fn deleting_the_message_that_recorded_failed_is_caught() {
    let gift = g(16);
    let mut h = exhausted(gift);
    assert_eq!(h.kinds(&[(gift, Status::Failed)]), vec![]);
    h.delete(W, 1);
    assert_eq!(h.kinds(&[(gift, Status::Failed)]), vec![Invariant::FailedMessageDeleted]);
}

#[test]
fn an_outcome_reported_done_without_a_delete_is_caught() {
    use crate::history::Outcome;
    let gift = g(17);
    let duplicate = |deleted: bool| {
        let mut h = good(gift);
        h.push(Event::Published { node: "relay-0".into(), msg: 2, gift, key: "K-1~!".into() });
        h.receive(W, 2, gift, "K-1~!", 1).read(W, gift, Status::Sent);
        if deleted {
            h.delete(W, 2);
        }
        h.push(handled(W, 2, gift, Outcome::Duplicate));
        h.kinds(&[])
    };
    assert_eq!(duplicate(true), vec![]);
    assert_eq!(duplicate(false), vec![Invariant::OutcomeMisreported]);
}

#[test]
fn a_conflict_without_another_queued_key_and_a_receive_after_a_delete_are_caught() {
    let gift = g(18);
    let mut h = H::default();
    h.accept(gift, "a", 1).answer(gift, "b", 409);
    assert_eq!(h.kinds(&[]), vec![]);
    let mut h = H::default();
    h.answer(gift, "b", 409);
    assert_eq!(h.kinds(&[]), vec![Invariant::RefusedWithoutCause]);

    let mut h = good(gift);
    h.receive("worker-1", 1, gift, "K-1~!", 6);
    assert_eq!(h.kinds(&[]), vec![Invariant::ReceivedAfterDelete]);
}

#[test]
fn a_real_read_asked_before_sent_may_still_see_queued() {
    let gift = g(9);
    let mut h = H::default();
    h.accept(gift, "k", 1).receive(W, 1, gift, "k", 1).read(W, gift, Status::Queued);
    let a = h.start(W, gift, "k", 1);
    h.outcome(W, a, gift, true).sent(W, gift, true);
    let sent_ms = h.entries.last().unwrap().at_ms;
    // Asked before the SENT write answered, answered after it: either order is possible.
    h.store("api-1", StoreCall::Read { gifts: vec![(gift, Some(Status::Queued))], asked_ms: Some(sent_ms - 1) });
    assert_eq!(h.kinds(&[(gift, Status::Sent)]), vec![]);
    // A send refused as SENT, asked before the write answered: it waited on the row.
    let conflict = Decision::Conflict(Status::Sent);
    h.store("api-1", StoreCall::RequestSend { gift, key: "j".into(), decision: conflict, asked_ms: sent_ms - 2 });
    assert_eq!(h.kinds(&[(gift, Status::Sent)]), vec![]);
    // Asked after the SENT write answered: a stale read.
    h.store("api-1", StoreCall::Read { gifts: vec![(gift, Some(Status::Queued))], asked_ms: Some(sent_ms + 1) });
    assert_eq!(h.kinds(&[(gift, Status::Sent)]), vec![Invariant::IllegalTransition]);
}
