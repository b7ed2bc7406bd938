//! Liveness: everything accepted finishes, within the healing bound.

use super::*;

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
