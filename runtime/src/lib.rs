//! How the gift service touches the world.
//!
//! # Layout
//!
//! - [`rt`]: the runtime facade — clock, sleep, spawn and randomness. It is tokio in a
//!   normal build and madsim under `--cfg madsim`, so the same service code runs for real
//!   and in the simulation. [`rt::SystemEnv`] implements the core `Env` port on top of it.
//! - [`memory`]: in-memory models of the store and the queue with SQS's semantics. The
//!   simulation runs on them; the conformance suites hold them to the real adapters.
//! - `sqlite` (feature `sqlite`): the embedded store and queue of the local all-in-one
//!   service, one database file, data survives restarts.
//! - `postgres` (feature `postgres`): the production store on PostgreSQL.
//! - `sqs` (feature `sqs`): the production queue on Amazon SQS (or a local emulator).
//! - [`gauges`]: what a real store reports for the metrics
//!   sampler — outbox depth and age, the connection pool.
//! - [`tap`]: the effect tap — every port call of a process as one JSON line, for the
//!   real-stack run's history (off unless `EFFECT_LOG` is set).
//! - `conformance` (feature `conformance`): one suite per port, plain async functions that
//!   every implementation must pass.
//!
//! The simulation builds this crate without default features: sqlx and the AWS SDK need a
//! real tokio runtime and never run under madsim.

pub mod gauges;
pub mod memory;
pub mod rt;
pub mod tap;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqs")]
pub mod sqs;

#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sql;
