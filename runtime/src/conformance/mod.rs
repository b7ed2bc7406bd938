//! Port conformance suites: the same async test functions run against every
//! implementation of a port — the in-memory models, SQLite, PostgreSQL and SQS (moto).
//! When a model and the real thing disagree, the model is wrong.
//!
//! Each function panics with a message on the first disagreement. Test targets call
//! `run_all` once per implementation (see `runtime/tests/`).

pub mod linearizable;
pub mod queue;
pub mod store;

#[cfg(feature = "sqs")]
pub mod sqs_emulator;
