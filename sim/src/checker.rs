//! Invariants over a recorded history. The checker knows the specification, not the
//! implementation: it has its own table of legal transitions and reads nothing but the
//! history and the final statuses.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use gift_core::domain::{GiftId, Status};

use crate::history::{Entry, Event};

/// Which property broke; also the exit code's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    IllegalTransition,
    SentTwice,
    SentWithoutSuccess,
    FailedTooEarly,
    ReplayChangedBody,
    QueuedTwice,
    ServerError,
    /// Liveness: an accepted or QUEUED gift did not finish.
    Stuck,
}

impl Invariant {
    pub fn is_liveness(self) -> bool {
        self == Invariant::Stuck
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub gift: Option<GiftId>,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.gift {
            Some(g) => write!(f, "{:?} on gift {g}: {}", self.invariant, self.detail),
            None => write!(f, "{:?}: {}", self.invariant, self.detail),
        }
    }
}

/// The state machine of the specification, written out independently of `Status::can_become`.
const LEGAL: [(Status, Status); 3] =
    [(Status::Created, Status::Queued), (Status::Queued, Status::Sent), (Status::Queued, Status::Failed)];

/// Safety invariants over the whole history; liveness over `final_statuses` when given
/// (after the healing phase). `max_receives` is the retry budget (5).
pub fn check(
    entries: &[Entry],
    final_statuses: Option<&BTreeMap<GiftId, Status>>,
    max_receives: u32,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut v = |invariant, gift: Option<GiftId>, detail: String| out.push(Violation { invariant, gift, detail });

    let mut sent_transitions: BTreeMap<GiftId, u32> = BTreeMap::new();
    let mut ok_dispatch: BTreeSet<GiftId> = BTreeSet::new();
    let mut final_failed_dispatch: BTreeSet<GiftId> = BTreeSet::new();
    let mut max_count: BTreeMap<GiftId, u32> = BTreeMap::new();
    let mut bodies: BTreeMap<(GiftId, String), String> = BTreeMap::new();
    let mut accepted_keys: BTreeMap<GiftId, BTreeSet<String>> = BTreeMap::new();

    for e in entries {
        match &e.event {
            Event::Transition { gift, from, to } => {
                if !LEGAL.contains(&(*from, *to)) {
                    v(Invariant::IllegalTransition, Some(*gift), format!("{from} -> {to} at {} ms", e.at_ms));
                }
                if *to == Status::Sent {
                    let n = sent_transitions.entry(*gift).or_default();
                    *n += 1;
                    if *n == 2 {
                        v(Invariant::SentTwice, Some(*gift), format!("second SENT at {} ms", e.at_ms));
                    }
                    if !ok_dispatch.contains(gift) {
                        v(Invariant::SentWithoutSuccess, Some(*gift), "SENT before any successful pseudo-send".into());
                    }
                }
                if *to == Status::Failed {
                    let receives = max_count.get(gift).copied().unwrap_or(0);
                    if receives < max_receives || !final_failed_dispatch.contains(gift) {
                        v(
                            Invariant::FailedTooEarly,
                            Some(*gift),
                            format!(
                                "FAILED after {receives} receive(s); a failed attempt on receive {max_receives} seen: {}",
                                final_failed_dispatch.contains(gift)
                            ),
                        );
                    }
                }
            }
            Event::Dispatched { gift, receive_count, ok } => {
                if *ok {
                    ok_dispatch.insert(*gift);
                } else if *receive_count >= max_receives {
                    final_failed_dispatch.insert(*gift);
                }
            }
            Event::Received { gift, receive_count, .. } => {
                let m = max_count.entry(*gift).or_default();
                *m = (*m).max(*receive_count);
            }
            Event::Phase { name: "clients-unfinished" } => {
                v(Invariant::Stuck, None, "a client never got a final answer to its requests".into());
            }
            Event::SendAnswered { gift, key, code, body } => {
                if *code >= 500 && *code != 503 {
                    v(Invariant::ServerError, Some(*gift), format!("send key={key} answered {code}: {body}"));
                }
                if (200..300).contains(code) {
                    accepted_keys.entry(*gift).or_default().insert(key.clone());
                    let first = bodies.entry((*gift, key.clone())).or_insert_with(|| body.clone());
                    if first != body {
                        v(Invariant::ReplayChangedBody, Some(*gift), format!("key={key}: {first} then {body}"));
                    }
                }
            }
            _ => {}
        }
    }
    for (gift, keys) in &accepted_keys {
        if keys.len() > 1 {
            v(Invariant::QueuedTwice, Some(*gift), format!("accepted under {} keys: {keys:?}", keys.len()));
        }
    }
    if let Some(finals) = final_statuses {
        for gift in accepted_keys.keys() {
            match finals.get(gift) {
                Some(s) if s.is_terminal() => {}
                other => v(Invariant::Stuck, Some(*gift), format!("accepted send ended {other:?}")),
            }
        }
        for (gift, status) in finals {
            if *status == Status::Queued && !accepted_keys.contains_key(gift) {
                v(Invariant::Stuck, Some(*gift), "QUEUED at the end".into());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(n: u128) -> GiftId {
        GiftId::from_random(n)
    }

    fn at(ms: u64, event: Event) -> Entry {
        Entry { at_ms: ms, event }
    }

    fn tr(gift: GiftId, from: Status, to: Status) -> Event {
        Event::Transition { gift, from, to }
    }

    fn recv(gift: GiftId, n: u32) -> Event {
        Event::Received { gift, receive_count: n, seen: true }
    }

    fn disp(gift: GiftId, n: u32, ok: bool) -> Event {
        Event::Dispatched { gift, receive_count: n, ok }
    }

    fn answer(gift: GiftId, key: &str, code: u16, body: &str) -> Event {
        Event::SendAnswered { gift, key: key.into(), code, body: body.into() }
    }

    fn kinds(v: &[Violation]) -> Vec<Invariant> {
        v.iter().map(|v| v.invariant).collect()
    }

    /// A clean history: queued, failed four times, sent on the fifth.
    fn good(gift: GiftId) -> Vec<Entry> {
        let mut h = vec![at(0, answer(gift, "k", 202, "{}")), at(1, tr(gift, Status::Created, Status::Queued))];
        for n in 1..=4 {
            h.push(at(10 * u64::from(n), recv(gift, n)));
            h.push(at(10 * u64::from(n) + 1, disp(gift, n, false)));
        }
        h.push(at(50, recv(gift, 5)));
        h.push(at(51, disp(gift, 5, true)));
        h.push(at(52, tr(gift, Status::Queued, Status::Sent)));
        h.push(at(60, answer(gift, "k", 200, "{}")));
        h
    }

    #[test]
    fn a_clean_history_passes() {
        let gift = g(1);
        let finals = BTreeMap::from([(gift, Status::Sent)]);
        assert_eq!(check(&good(gift), Some(&finals), 5), vec![]);
    }

    #[test]
    fn sent_twice_is_caught() {
        let gift = g(1);
        let mut h = good(gift);
        h.push(at(70, tr(gift, Status::Queued, Status::Sent)));
        assert_eq!(kinds(&check(&h, None, 5)), vec![Invariant::SentTwice]);
    }

    #[test]
    fn illegal_edges_are_caught() {
        let gift = g(1);
        let mut h = good(gift);
        h.push(at(70, tr(gift, Status::Sent, Status::Sent)));
        h.push(at(71, tr(gift, Status::Sent, Status::Failed)));
        h.push(at(72, tr(gift, Status::Created, Status::Sent)));
        let k = kinds(&check(&h, None, 5));
        assert_eq!(k.iter().filter(|i| **i == Invariant::IllegalTransition).count(), 3, "{k:?}");
        assert!(k.contains(&Invariant::SentTwice));
    }

    #[test]
    fn failed_on_the_fourth_receive_is_caught() {
        let gift = g(2);
        let mut h = vec![at(0, tr(gift, Status::Created, Status::Queued))];
        for n in 1..=4 {
            h.push(at(u64::from(n), recv(gift, n)));
            h.push(at(u64::from(n), disp(gift, n, false)));
        }
        h.push(at(9, tr(gift, Status::Queued, Status::Failed)));
        assert_eq!(kinds(&check(&h, None, 5)), vec![Invariant::FailedTooEarly]);
    }

    #[test]
    fn failed_needs_a_failed_fifth_attempt_not_just_five_receives() {
        let gift = g(3);
        let mut h = vec![at(0, tr(gift, Status::Created, Status::Queued))];
        for n in 1..=5 {
            h.push(at(u64::from(n), recv(gift, n)));
        }
        h.push(at(9, tr(gift, Status::Queued, Status::Failed)));
        assert_eq!(kinds(&check(&h, None, 5)), vec![Invariant::FailedTooEarly]);
        // Unseen receives count toward the queue's total, as SQS counts them.
        let mut h = vec![at(0, tr(gift, Status::Created, Status::Queued))];
        h.push(at(1, Event::Received { gift, receive_count: 4, seen: false }));
        h.push(at(2, recv(gift, 5)));
        h.push(at(3, disp(gift, 5, false)));
        h.push(at(4, tr(gift, Status::Queued, Status::Failed)));
        assert_eq!(check(&h, None, 5), vec![]);
    }

    #[test]
    fn sent_without_a_successful_dispatch_is_caught() {
        let gift = g(4);
        let h = vec![at(0, tr(gift, Status::Created, Status::Queued)), at(1, tr(gift, Status::Queued, Status::Sent))];
        assert_eq!(kinds(&check(&h, None, 5)), vec![Invariant::SentWithoutSuccess]);
    }

    #[test]
    fn a_replay_with_another_body_is_caught() {
        let gift = g(5);
        let h = vec![at(0, answer(gift, "k", 202, "{\"a\":1}")), at(1, answer(gift, "k", 200, "{\"a\":2}"))];
        assert_eq!(kinds(&check(&h, None, 5)), vec![Invariant::ReplayChangedBody]);
    }

    #[test]
    fn two_keys_accepted_for_one_gift_is_caught() {
        let gift = g(6);
        let h = vec![at(0, answer(gift, "a", 202, "{}")), at(1, answer(gift, "b", 202, "{}"))];
        assert_eq!(kinds(&check(&h, None, 5)), vec![Invariant::QueuedTwice]);
        // A conflict for the second key is how it should go.
        let h = vec![at(0, answer(gift, "a", 202, "{}")), at(1, answer(gift, "b", 409, "{}"))];
        assert_eq!(check(&h, None, 5), vec![]);
    }

    #[test]
    fn server_errors_other_than_503_are_caught() {
        let gift = g(7);
        let h = vec![at(0, answer(gift, "a", 503, "{}")), at(1, answer(gift, "a", 500, "{}"))];
        assert_eq!(kinds(&check(&h, None, 5)), vec![Invariant::ServerError]);
    }

    #[test]
    fn stuck_gifts_are_caught_only_in_the_liveness_check() {
        let gift = g(8);
        let orphan = g(9);
        let h = vec![at(0, answer(gift, "a", 202, "{}")), at(1, tr(gift, Status::Created, Status::Queued))];
        assert_eq!(check(&h, None, 5), vec![]);
        let finals = BTreeMap::from([(gift, Status::Queued), (orphan, Status::Queued)]);
        assert_eq!(kinds(&check(&h, Some(&finals), 5)), vec![Invariant::Stuck, Invariant::Stuck]);
        let finals = BTreeMap::from([(gift, Status::Failed), (orphan, Status::Created)]);
        assert_eq!(check(&h, Some(&finals), 5), vec![]);
    }
}
