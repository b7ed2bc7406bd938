//! The decision redrive makes for one dead-lettered message, from its gift's status.

use std::fmt;

use gift_core::domain::{IdempotencyKey, Status};
use gift_runtime::postgres::admin::Requeued;
use serde::Serialize;

/// What redrive does with one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Redrive {
    /// QUEUED: the gift still waits for this message. An outbox row gives it a new one with
    /// a fresh receive budget; the dead one is deleted.
    Rearm { request_id: IdempotencyKey },
    /// SENT or FAILED: the state machine has no edge left for a message to drive, so the
    /// message is a leftover and is deleted.
    Drop { status: Status },
    /// Nothing redrive can decide; the message stays in the DLQ for the operator.
    Leave {
        #[serde(flatten)]
        reason: Left,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Left {
    /// Not a send message: nothing can send it.
    Unparseable {
        error: String,
    },
    UnknownGift,
    /// A status no message should exist for (CREATED).
    NotQueued {
        status: Status,
    },
    /// A QUEUED gift without a send request has nothing to publish.
    NoSendRequest,
}

impl Left {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Left::Unparseable { .. } => "UNPARSEABLE",
            Left::UnknownGift => "UNKNOWN_GIFT",
            Left::NotQueued { .. } => "NOT_QUEUED",
            Left::NoSendRequest => "NO_SEND_REQUEST",
        }
    }
}

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Left::Unparseable { error } => write!(f, "not a send message: {error}"),
            Left::UnknownGift => f.write_str("no such gift"),
            Left::NotQueued { status } => write!(f, "the gift is {status}"),
            Left::NoSendRequest => f.write_str("the gift has no send request"),
        }
    }
}

/// The decision, from what the conditional re-arm found.
pub fn decide(found: Requeued) -> Redrive {
    match found {
        Requeued::Requeued { request_id } => Redrive::Rearm { request_id },
        Requeued::Refused(status) if status.is_terminal() => Redrive::Drop { status },
        Requeued::Refused(status) => Redrive::Leave { reason: Left::NotQueued { status } },
        Requeued::NoSendRequest => Redrive::Leave { reason: Left::NoSendRequest },
        Requeued::NotFound => Redrive::Leave { reason: Left::UnknownGift },
    }
}

impl Redrive {
    /// The log line's `decision`, as the JSON report's.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Redrive::Rearm { .. } => "REARM",
            Redrive::Drop { .. } => "DROP",
            Redrive::Leave { .. } => "LEAVE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gift_status_decides() {
        let key = IdempotencyKey::parse("k-1").unwrap();
        assert_eq!(decide(Requeued::Requeued { request_id: key.clone() }), Redrive::Rearm { request_id: key });
        assert_eq!(decide(Requeued::Refused(Status::Sent)), Redrive::Drop { status: Status::Sent });
        assert_eq!(decide(Requeued::Refused(Status::Failed)), Redrive::Drop { status: Status::Failed });
        assert_eq!(
            decide(Requeued::Refused(Status::Created)),
            Redrive::Leave { reason: Left::NotQueued { status: Status::Created } }
        );
        assert_eq!(decide(Requeued::NotFound), Redrive::Leave { reason: Left::UnknownGift });
    }
}
