//! What clients heard: codes, echoed keys, replays, refusals, gifts read back.

use super::*;

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
fn a_conflict_without_another_queued_key_is_caught() {
    let gift = g(18);
    let mut h = H::default();
    h.accept(gift, "a", 1).answer(gift, "b", 409);
    assert_eq!(h.kinds(&[]), vec![]);
    let mut h = H::default();
    h.answer(gift, "b", 409);
    assert_eq!(h.kinds(&[]), vec![Invariant::RefusedWithoutCause]);
}
