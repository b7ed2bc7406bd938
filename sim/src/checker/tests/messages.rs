//! Messages: published for accepted sends only, by relays after the grace, never lost
//! while their gift is unfinished.

use super::*;

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
fn deleting_the_message_that_recorded_failed_is_caught() {
    let gift = g(16);
    let mut h = exhausted(gift);
    assert_eq!(h.kinds(&[(gift, Status::Failed)]), vec![]);
    h.delete(W, 1);
    assert_eq!(h.kinds(&[(gift, Status::Failed)]), vec![Invariant::FailedMessageDeleted]);
}

#[test]
fn a_receive_after_a_delete_is_caught() {
    let gift = g(18);
    let mut h = good(gift);
    h.receive("worker-1", 1, gift, "K-1~!", 6);
    assert_eq!(h.kinds(&[]), vec![Invariant::ReceivedAfterDelete]);
}
