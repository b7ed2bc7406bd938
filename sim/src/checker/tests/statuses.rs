//! Statuses: every status observed follows the state machine.

use super::*;

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
