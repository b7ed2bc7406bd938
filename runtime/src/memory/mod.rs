//! In-memory models of the ports. They are the reference for what the real adapters do
//! (and the conformance suites check that they agree), and they are what the simulation
//! runs on.

mod queue;
mod store;

pub use queue::{MemoryQueue, QueueSettings};
pub use store::MemoryStore;
