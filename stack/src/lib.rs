//! The real stack under a nemesis, Jepsen style, judged by the simulation's checker.
//!
//! # Layout
//!
//! - [`run`]: one run, a function per stage — proxies, 2 × gift-api and 2 × gift-worker,
//!   clients, nemesis and heal, quiescence, stop, then the history judged by the checker.
//! - [`scratch`]: the run's own database and queue pair, and the end state read from them.
//! - [`procs`]: the service processes by name; kill -9, pause, SIGTERM, restart.
//! - [`proxy`]: the switchable TCP forwarder in front of PostgreSQL and SQS (also used by
//!   the binaries' fault tests).
//! - [`client`]: the simulation's client workload over HTTP.
//! - [`nemesis`]: the seeded fault schedule and its healing.
//! - [`history`]: effect logs, client answers and the end state as the simulation's
//!   history entries.
//!
//! `gift-stack --seed N` runs one seed (see docs/testing.md); scripts/test runs it in CI.

pub mod client;
pub mod history;
pub mod nemesis;
pub mod procs;
pub mod proxy;
pub mod run;
pub mod scratch;
