//! Domain types. Each newtype can only hold a valid value: construct it by parsing.

mod amount;
mod gift;
mod gift_code;
mod gift_id;
mod idempotency_key;
mod message;
mod status;
mod trace;

pub use amount::Amount;
pub use gift::{Gift, SendAccepted, SendMessage};
pub use gift_code::GiftCode;
pub use gift_id::GiftId;
pub use idempotency_key::IdempotencyKey;
pub use message::Message;
pub use status::Status;
pub use trace::TraceParent;

/// Timestamps are UTC; the clock that produces them is [`crate::ports::Env::now`].
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Why a piece of client input was rejected; the text goes to the client verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
