//! What the gift service decides, and nothing about how it touches the world.
//!
//! # Layout
//!
//! - [`domain`]: newtypes that parse client input once (`Amount`, `Message`,
//!   `IdempotencyKey`, `GiftId`, `GiftCode`), the [`domain::Status`] state machine and the
//!   `Gift` record.
//! - [`ports`]: the traits every effect goes through — [`ports::Store`], [`ports::Queue`],
//!   [`ports::Env`] (clock, randomness, sleep) and [`ports::Dispatcher`] (the pseudo-send).
//!   Production, embedded and simulated adapters implement them elsewhere.
//! - [`service`]: the use cases — create a gift, request its sending, handle one received
//!   batch (`service::delivery`: the batch as a value moving phase to phase in `batch`,
//!   one gift's state per phase in `plan`, its visibility lease in `lease`) — each a plain
//!   async function over the ports.
//! - [`worker`] and [`relay`]: the long-running loops — the worker's around the batch
//!   step, the relay's publishing the due outbox rows (new sends, and lost messages at their
//!   stale deadline).
//! - [`http`]: the axum `Router` for every endpoint and the single place that maps errors
//!   to status codes and the error shape.
//! - [`trace`]: the span that carries a send's trace ids onto every log line
//!   ([`traced_span!`]); the ids themselves are [`domain::TraceParent`].
//! - [`defaults`]: the default of every setting, named after its environment variable.
//! - [`metrics`]: every metric's name and tags, recorded through the `metrics` facade (a
//!   no-op until a binary installs an exporter).
//!
//! Nothing in this crate reads the wall clock, OS randomness or `Uuid::new_v4()`: the
//! [`ports::Env`] port supplies time and random draws, so a simulation seed replays exactly.

pub mod defaults;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod ports;
pub mod relay;
pub mod service;
pub mod trace;
pub mod worker;

pub use error::{AppError, QueueError, StoreError};
