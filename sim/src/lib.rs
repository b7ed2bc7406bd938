//! Deterministic simulation of the gift service (FoundationDB style), on madsim.
//!
//! # Layout
//!
//! - [`world`]: what a seed draws — node counts, clients, the failure rate, each fault's
//!   rate — and the test-only [`world::Mutant`]s that prove the checker bites.
//! - `faults` (madsim only): the store and queue models wrapped with fault injection and
//!   history recording.
//! - `scenario` (madsim only): one seed — api, worker and relay nodes running the real
//!   router and loops; clients; the nemesis that kills and restarts nodes; the safety
//!   phase, then the liveness phase that heals and runs to quiescence.
//! - [`history`]: the recorded events, the readable trace and its hash.
//! - [`checker`]: invariants over a history, independent of the implementation.
//! - `runner` (madsim only): many seeds on all cores, coverage, replay, failure reports.
//!
//! Build with `RUSTFLAGS="--cfg madsim"` into its own target dir; see docs/simulation.md.
//! Without the cfg only the checker and history compile (and their unit tests run).

pub mod checker;
pub mod history;
pub mod world;

#[cfg(madsim)]
pub mod faults;
#[cfg(madsim)]
pub mod runner;
#[cfg(madsim)]
pub mod scenario;
