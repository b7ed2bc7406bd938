//! What an effect log holds: one [`Line`] a port call, naming the [`Effect`] it had.

use gift_core::domain::{GiftId, Status};
use gift_core::service::DeliveryOutcome;
use serde::{Deserialize, Serialize};

/// One line of an effect log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Microseconds since the Unix epoch.
    pub at_us: i64,
    pub node: String,
    #[serde(flatten)]
    pub effect: Effect,
}

/// What the send transaction answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decided {
    Queued,
    Replay,
    Conflict(Status),
    NotFound,
}

/// What the worker reported for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handled {
    Sent,
    LostRace,
    Duplicate,
    RetryLater,
    Failed,
    Poison,
    Error,
}

impl From<&DeliveryOutcome> for Handled {
    fn from(o: &DeliveryOutcome) -> Self {
        match o {
            DeliveryOutcome::Sent => Handled::Sent,
            DeliveryOutcome::LostRace => Handled::LostRace,
            DeliveryOutcome::Duplicate => Handled::Duplicate,
            DeliveryOutcome::RetryLater => Handled::RetryLater,
            DeliveryOutcome::Failed => Handled::Failed,
            DeliveryOutcome::Poison(_) => Handled::Poison,
            DeliveryOutcome::Error(_) => Handled::Error,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// `get_gift`/`get_gifts`, stamped when answered, with when it was asked.
    Read {
        gifts: Vec<(GiftId, Option<Status>)>,
        asked_us: i64,
    },
    RequestSend {
        gift: GiftId,
        key: String,
        decided: Decided,
        asked_us: i64,
    },
    MarkSent {
        gifts: Vec<(GiftId, bool)>,
    },
    MarkFailed {
        gift: GiftId,
        applied: bool,
    },
    Published {
        msg: String,
        gift: GiftId,
        key: String,
    },
    /// Stamped when answered, with when the (long-polling) receive was asked.
    Received {
        msg: String,
        gift: GiftId,
        key: String,
        receive_count: u32,
        asked_us: i64,
    },
    Deleted {
        msg: String,
    },
    DeleteFailed {
        msg: String,
    },
    /// Stamped when answered, with when it was asked: a renewal asked in time and answered
    /// after the visibility ran out is what the checker's late-renewal excuse looks for.
    Visibility {
        msg: String,
        delay_ms: u64,
        applied: bool,
        asked_us: i64,
    },
    DispatchStarted {
        attempt: u64,
        gift: GiftId,
        key: String,
        receive_count: u32,
        status: Status,
    },
    Dispatched {
        attempt: u64,
        gift: GiftId,
        ok: bool,
    },
    Handled {
        msg: String,
        receive_count: u32,
        gift: Option<GiftId>,
        outcome: Handled,
    },
    /// The worker loop returned after a graceful stop.
    Stopped,
}
