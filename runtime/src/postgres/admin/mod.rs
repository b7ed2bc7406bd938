//! What the operator tool (`gift-admin`) asks of the database: a gift with everything around
//! it, the lists an on-call operator looks at, the admin re-queue, the migrations still to
//! apply, and the application's data-only role. None of it is on the `Store` port: the
//! service never runs these statements, only an operator does.

mod inspect;
mod requeue;
mod role;
mod scram;

pub use inspect::{GiftRecord, OutboxRow, SendRequestRow};
pub use requeue::{Requeue, Requeued};
pub use role::{AppRole, RoleChange, RoleError};

use super::pool::Pool;
use super::PgStore;

/// Whether an operator command writes, or only reads and reports what it would write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Apply,
    DryRun,
}

/// The operator's statements, over the store's pool.
pub struct PgAdmin<'a> {
    pool: &'a Pool,
}

impl PgStore {
    pub fn admin(&self) -> PgAdmin<'_> {
        PgAdmin { pool: &self.pool }
    }
}
