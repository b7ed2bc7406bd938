//! `retry`: the admin transition FAILED → QUEUED, one gift at a time, each logged.

use std::fmt;

use gift_core::domain::{GiftId, IdempotencyKey, Status, Timestamp};
use gift_runtime::postgres::admin::{Requeue, Requeued, Write};
use gift_runtime::postgres::PgStore;
use serde::Serialize;

use super::report::{Finished, Report};
use super::AdminError;

/// What became of one gift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "SCREAMING_SNAKE_CASE")]
enum Retry {
    /// QUEUED again with an outbox row for `request_id`: the relay publishes a new message.
    Retried {
        request_id: IdempotencyKey,
    },
    /// Only a FAILED gift is retried.
    Refused {
        status: Status,
    },
    NoSendRequest,
    NotFound,
}

impl Retry {
    /// The log line's `decision`, as the JSON report's.
    fn name(&self) -> &'static str {
        match self {
            Retry::Retried { .. } => "RETRIED",
            Retry::Refused { .. } => "REFUSED",
            Retry::NoSendRequest => "NO_SEND_REQUEST",
            Retry::NotFound => "NOT_FOUND",
        }
    }
}

impl From<Requeued> for Retry {
    fn from(found: Requeued) -> Self {
        match found {
            Requeued::Requeued { request_id } => Retry::Retried { request_id },
            Requeued::Refused(status) => Retry::Refused { status },
            Requeued::NoSendRequest => Retry::NoSendRequest,
            Requeued::NotFound => Retry::NotFound,
        }
    }
}

#[derive(Serialize)]
struct Retried {
    dry_run: bool,
    gifts: Vec<Line>,
}

#[derive(Serialize)]
struct Line {
    gift_id: GiftId,
    #[serde(flatten)]
    retry: Retry,
}

impl fmt::Display for Retried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let would = if self.dry_run { "would be " } else { "" };
        for Line { gift_id, retry } in &self.gifts {
            match retry {
                Retry::Retried { request_id } => {
                    writeln!(f, "{gift_id}: {would}QUEUED again, a new message for {}", request_id.as_str())
                }
                Retry::Refused { status } => {
                    writeln!(f, "{gift_id}: refused, it is {status} (only a FAILED gift can be retried)")
                }
                Retry::NoSendRequest => writeln!(f, "{gift_id}: refused, it has no send request to publish"),
                Retry::NotFound => writeln!(f, "{gift_id}: refused, no such gift"),
            }?;
        }
        let done = self.gifts.iter().filter(|l| matches!(l.retry, Retry::Retried { .. })).count();
        let verb = if self.dry_run { "would be retried (dry run: nothing written)" } else { "retried" };
        writeln!(f, "{done} of {} {verb}", self.gifts.len())
    }
}

impl Report for Retried {
    fn complete(&self) -> bool {
        self.gifts.iter().all(|l| matches!(l.retry, Retry::Retried { .. }))
    }
}

/// Retries each gift in its own transaction: one refusal does not hold back the others.
pub async fn retry(store: &PgStore, ids: &[GiftId], now: Timestamp, write: Write) -> Result<Finished, AdminError> {
    let dry_run = write == Write::DryRun;
    let mut gifts = Vec::with_capacity(ids.len());
    for &gift_id in ids {
        let retry = Retry::from(store.admin().requeue(gift_id, Requeue::Retry, now, write).await?);
        match &retry {
            Retry::Retried { request_id } => tracing::info!(
                event = "ADMIN_RETRY", %gift_id, request_id = request_id.as_str(), decision = retry.name(), dry_run,
                "FAILED gift set back to QUEUED with a new outbox row"
            ),
            Retry::Refused { status } => tracing::warn!(
                event = "ADMIN_RETRY", %gift_id, decision = retry.name(), gift_status = %status, dry_run,
                "gift not retried: only a FAILED gift can be"
            ),
            Retry::NoSendRequest | Retry::NotFound => tracing::warn!(
                event = "ADMIN_RETRY", %gift_id, decision = retry.name(), dry_run, "gift not retried"
            ),
        }
        gifts.push(Line { gift_id, retry });
    }
    Ok(Finished::of(&Retried { dry_run, gifts }))
}
