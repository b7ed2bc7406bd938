//! The correct service passes a few hundred seeds and the pinned regression seeds, and any
//! seed replays exactly. This is also the test cargo-mutants runs for each mutant of the
//! deciding code (docs/simulation.md); that each invariant can fail is shown by the
//! checker's unit tests.
#![cfg(madsim)]

use gift_sim::runner::{pinned_seeds, run_many, run_seed};

#[test]
fn the_correct_service_passes_and_every_seed_replays_identically() {
    let pinned = pinned_seeds(include_str!("../regressions.txt")).expect("sim/regressions.txt parses");
    let seeds: Vec<u64> = (1..=300).chain(pinned).collect();
    let summary = run_many(&seeds, 2, 1);
    assert!(summary.failures.is_empty(), "seed {} failed: {:?}", summary.failures[0].seed, summary.failures[0].verdict);
    for seed in [1, 7, 42, 299] {
        let (a, b) = (run_seed(seed), run_seed(seed));
        assert_eq!((a.hash, &a.trace), (b.hash, &b.trace), "seed {seed} diverged");
        assert!(a.trace.lines().count() > 10, "seed {seed} recorded almost nothing");
    }
}
