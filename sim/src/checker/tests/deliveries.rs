//! A worker's deliveries: outcomes as reported, and graceful stops.

use super::*;

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
