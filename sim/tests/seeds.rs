//! The correct service passes a few hundred seeds and the pinned regression seeds, and any
//! seed replays exactly. This is also the test cargo-mutants runs for each mutant of the
//! deciding code (docs/simulation.md); that each invariant can fail is shown by the
//! checker's unit tests.
#![cfg(madsim)]

use gift_sim::history::History;
use gift_sim::runner::{pinned_seeds, run_many, run_seed, Pinned};
use gift_sim::scenario::{self, world_of};

#[test]
fn the_correct_service_passes_and_every_seed_replays_identically() {
    let pinned = pinned_seeds(include_str!("../regressions.txt")).expect("sim/regressions.txt parses");
    let seeds: Vec<u64> = (1..=300).chain(pinned.iter().map(|p| p.seed)).collect();
    let summary = run_many(&seeds, 2, 1);
    assert!(summary.failures.is_empty(), "seed {} failed: {:?}", summary.failures[0].seed, summary.failures[0].verdict);
    for seed in [1, 7, 42, 299] {
        let (a, b) = (run_seed(seed), run_seed(seed));
        assert_eq!((a.hash, &a.trace), (b.hash, &b.trace), "seed {seed} diverged");
        assert!(a.trace.lines().count() > 10, "seed {seed} recorded almost nothing");
    }
}

#[test]
fn every_pinned_seed_draws_the_world_it_was_pinned_with_and_a_moved_world_is_caught() {
    let pinned = pinned_seeds(include_str!("../regressions.txt")).expect("sim/regressions.txt parses");
    for p in &pinned {
        assert!(p.drifted().is_none(), "seed {} draws another world than pinned: {}", p.seed, Pinned::line(p.seed));
        // The world pinned is the one the run plays, to every digit.
        let played = scenario::run(p.seed, History::default()).world;
        assert_eq!(played.fingerprint(), world_of(p.seed).fingerprint(), "seed {}", p.seed);
    }
    let moved = Pinned { world: pinned[0].world ^ 1, ..pinned[0] };
    assert_eq!(moved.drifted(), Some(world_of(moved.seed)), "a pin whose world differs must be reported");
    // The fingerprint sees the value drawn last, and a rate's digits past what the world prints.
    let mut world = world_of(26);
    let before = world.fingerprint();
    world.batches_in_hand += 1;
    assert_ne!(world.fingerprint(), before);
    world.batches_in_hand -= 1;
    world.shared_key_chance += 1e-9;
    assert_ne!(world.fingerprint(), before);
}

#[test]
fn a_pin_without_its_world_is_refused() {
    assert_eq!(pinned_seeds("26 world=00ff  # c\n\n# only a comment").unwrap(), vec![Pinned { seed: 26, world: 0xff }]);
    for bad in ["26", "26  # no world", "26 world=xyz", "26 wrld=00ff", "26 world=00ff 27", "x world=00ff"] {
        assert!(pinned_seeds(bad).is_err(), "{bad:?}");
    }
}
