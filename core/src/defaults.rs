//! The default of every setting, each named after the environment variable that overrides
//! it. clap's defaults (`gift-bins`' config), the `Default` impls of the config types, the
//! simulation and Terraform's `variables.tf` (compared by `scripts/check-env-contract.py`)
//! all take their values from here.

/// The receive on which a failed send is final; the SQS redrive's `maxReceiveCount`.
pub const MAX_RECEIVES: u32 = 5;
/// How long a failed message stays hidden before its next attempt.
pub const RETRY_BACKOFF_SECONDS: u64 = 5;
/// The queue's visibility timeout.
pub const VISIBILITY_TIMEOUT_SECONDS: u64 = 30;
/// A gift still QUEUED this long after its message's last publish has the message published
/// again: it is assumed lost.
pub const STALE_QUEUED_SECONDS: u64 = 900;
/// Messages per receive (SQS allows at most 10).
pub const WORKER_BATCH_SIZE: u32 = 10;
/// Receives gathered into one batch while each comes back full: the batch's store
/// statements then carry up to this many receives' messages.
pub const WORKER_RECEIVES_PER_BATCH: u32 = 2;
/// Received batches a worker handles at once; below the worker's `DB_POOL_MAX`, whose
/// last connection is the relay's.
pub const WORKER_BATCHES_IN_HAND: u32 = 4;
/// A receive's long-poll wait (SQS allows at most 20 s).
pub const WORKER_WAIT_SECONDS: u64 = 20;
/// Pause between outbox relay passes.
pub const RELAY_INTERVAL_MS: u64 = 1_000;
/// Probability that a pseudo-send fails.
pub const SEND_FAILURE_RATE: f64 = 0.2;
/// How long an accepted send's outbox row waits for the API's own publish.
pub const PUBLISH_GRACE_MS: u64 = 5_000;
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A request taking longer answers 503.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Requests handled at once before the API sheds load.
pub const MAX_CONCURRENT_REQUESTS: usize = 512;
/// Connections per process pool. Few on purpose: creates and sends that find every
/// connection busy share the next statement (group commit), so a small pool runs their
/// calls in fewer, fuller statements; a worker's four batches in hand and its relay take
/// five (docs/architecture.md, "Talking to PostgreSQL").
pub const DB_POOL_MAX: u32 = 5;
/// How long a caller waits for a pooled connection before 503.
pub const DB_ACQUIRE_TIMEOUT_MS: u64 = 2_000;
