//! The simulation must catch each deliberately broken variant of the service within a
//! bounded number of seeds, and must replay any seed exactly.
#![cfg(madsim)]

use gift_sim::runner::{run_many, run_seed, Verdict};
use gift_sim::world::Mutant;

/// Seeds each mutant gets; all are caught well within this (see the printed figures).
const BUDGET: u64 = 200;

fn first_catch(mutant: Mutant) -> Option<(u64, Verdict)> {
    (1..=BUDGET).map(|seed| (seed, run_seed(seed, Some(mutant)).verdict)).find(|(_, v)| *v != Verdict::Pass)
}

#[test]
fn unconditional_sent_is_caught_as_a_safety_violation() {
    let (seed, verdict) = first_catch(Mutant::UnconditionalSent).expect("not caught");
    println!("unconditional-sent caught at seed {seed}: {verdict:?}");
    assert!(matches!(verdict, Verdict::Safety(ref m) if m.contains("SENT")), "{verdict:?}");
}

#[test]
fn off_by_one_receive_count_is_caught() {
    let (seed, verdict) = first_catch(Mutant::OffByOneReceives).expect("not caught");
    println!("off-by-one-receives caught at seed {seed}: {verdict:?}");
    assert!(matches!(verdict, Verdict::Safety(ref m) if m.contains("FailedTooEarly")), "{verdict:?}");
}

#[test]
fn send_without_the_row_lock_is_caught() {
    let (seed, verdict) = first_catch(Mutant::UnlockedSend).expect("not caught");
    println!("unlocked-send caught at seed {seed}: {verdict:?}");
    assert!(matches!(verdict, Verdict::Safety(ref m) if m.contains("QueuedTwice")), "{verdict:?}");
}

#[test]
fn a_missing_relay_is_caught_as_a_liveness_violation() {
    let (seed, verdict) = first_catch(Mutant::NoRelay).expect("not caught");
    println!("no-relay caught at seed {seed}: {verdict:?}");
    assert!(matches!(verdict, Verdict::Liveness(ref m) if m.contains("Stuck")), "{verdict:?}");
}

#[test]
fn the_correct_service_passes_and_every_seed_replays_identically() {
    let seeds: Vec<u64> = (1..=300).collect();
    let summary = run_many(&seeds, 2, None, 1);
    assert!(summary.failures.is_empty(), "seed {} failed: {:?}", summary.failures[0].seed, summary.failures[0].verdict);
    for seed in [1, 7, 42, 299] {
        let (a, b) = (run_seed(seed, None), run_seed(seed, None));
        assert_eq!((a.hash, &a.trace), (b.hash, &b.trace), "seed {seed} diverged");
        assert!(a.trace.lines().count() > 10, "seed {seed} recorded almost nothing");
    }
}
