//! The use cases, each an async function over the ports.

mod create;
mod delivery;
mod dispatch;
mod send;

pub use create::create_gift;
pub use delivery::{handle_deliveries, BatchTerms, DeliveryOutcome, InFlight, RetryPolicy};
pub use dispatch::PseudoDispatcher;
pub use send::{request_send, OutboxTiming, SendOutcome};

use std::sync::Arc;

use crate::ports::{Dispatcher, Env, Queue, Store};

/// The ports a process is wired with; cheap to clone.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub env: Arc<dyn Env>,
    pub dispatcher: Arc<dyn Dispatcher>,
}
