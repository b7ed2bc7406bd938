//! Deterministic simulation of the gift service (FoundationDB style), on madsim.
//!
//! # Layout
//!
//! - [`kinds`]: the vocabularies — fault kinds, node kinds, coverage counters — each one
//!   enum whose list drives the draw, the printouts and the required coverage.
//! - [`world`]: what a seed draws — node counts, clients, the failure rate, each fault's
//!   rate —, the liveness bound it implies, and its fingerprint.
//! - [`workload`]: the amounts, messages and keys clients send, of every legal shape.
//! - `faults` (madsim only): the store and queue models wrapped, per node, with fault
//!   injection and the recording of every call; one file per port.
//! - `cluster` (madsim only): the api, worker and relay nodes running the real router and
//!   loops over the shared models; kills, restarts and heals them by node.
//! - `clients` (madsim only): the clients, sending through random API nodes.
//! - `nemesis` (madsim only): kills and restarts nodes, and stops workers gracefully.
//! - `scenario` (madsim only): one seed as a story — draw its world, start the cluster,
//!   the clients and the nemesis; the safety phase; heal and run to quiescence; check and
//!   count.
//! - [`history`]: the recorded effects — client answers, store calls as asked and
//!   answered, each message's life, each pseudo-send —, the readable trace and its hash.
//! - [`checker`]: invariants over a history, one checker per concern, independent of the
//!   implementation.
//! - `runner` (madsim only): many seeds on all cores, replay, failure reports, and the
//!   pinned regression seeds with the worlds they were pinned with.
//!
//! Build with `RUSTFLAGS="--cfg madsim"` into its own target dir; see docs/simulation.md.
//! Without the cfg only the vocabularies, world, workload, checker and history compile (and
//! their unit tests run).

pub mod checker;
pub mod history;
pub mod kinds;
pub mod workload;
pub mod world;

#[cfg(madsim)]
pub mod clients;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod faults;
#[cfg(madsim)]
pub mod nemesis;
#[cfg(madsim)]
pub mod runner;
#[cfg(madsim)]
pub mod scenario;
