//! The outbox relay: publishes the due outbox rows. A row is due when the API's publish
//! after commit failed or never happened (after the grace period), or when a gift stayed
//! QUEUED past the stale deadline of its last publish, its message presumed lost. Both are
//! safe to repeat because the worker ignores duplicates.

use std::future::Future;
use std::time::Duration;

use futures::future::{select, Either};
use futures::FutureExt;

use crate::defaults;
use crate::domain::{SendMessage, Timestamp};
use crate::error::AppError;
use crate::metrics;
use crate::service::Deps;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Pause between passes.
    pub interval: Duration,
    /// Outbox rows published per pass.
    pub batch: u32,
    /// How long a pass's claim on its rows lasts: long enough to publish `batch` rows. A row
    /// left unpublished (the queue failed mid-pass, the worker died) is due again after it.
    pub claim: Duration,
    /// A QUEUED gift this long after its message's last publish is assumed to have lost the
    /// message, which is published again. Must exceed the worst retry window (5 receives ×
    /// backoff plus visibility timeouts), or healthy retries get duplicate messages.
    pub stale_after: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(defaults::RELAY_INTERVAL_MS),
            batch: 100,
            claim: Duration::from_secs(30),
            stale_after: Duration::from_secs(defaults::STALE_QUEUED_SECONDS),
        }
    }
}

/// What one relay pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayPass {
    /// Rows published, the stale ones among them.
    pub published: u32,
    pub publish_failed: u32,
    /// Rows published again because their gift outlived the stale deadline still QUEUED.
    pub stale: u32,
}

impl RelayPass {
    /// Whether the pass published a whole batch of rows without a publish failing: there
    /// may be more.
    pub fn is_full(&self, config: RelayConfig) -> bool {
        self.publish_failed == 0 && self.published >= config.batch
    }
}

/// The time `after` from `now`, or the end of time when it is too long to add.
pub fn deadline(now: Timestamp, after: Duration) -> Timestamp {
    chrono::Duration::from_std(after)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// One pass: publish the due outbox rows, each then due again at the stale deadline.
pub async fn relay_once(deps: &Deps, config: RelayConfig) -> Result<RelayPass, AppError> {
    let now = deps.env.now();
    let mut pass = RelayPass::default();
    let published = publish_due(deps, config, now, &mut pass).await;
    if pass.stale > 0 {
        tracing::warn!(
            count = pass.stale,
            error_code = "STALE_QUEUED",
            "published again the messages of QUEUED gifts past their stale deadline"
        );
    }
    metrics::relay_pass(pass.published, pass.publish_failed, pass.stale);
    published?;
    Ok(pass)
}

async fn publish_due(deps: &Deps, config: RelayConfig, now: Timestamp, pass: &mut RelayPass) -> Result<(), AppError> {
    let until = deadline(now, config.claim);
    for entry in deps.store.outbox_claim(now, until, config.batch).await? {
        let message = SendMessage { gift_id: entry.gift_id, request_id: entry.request_id.clone() };
        match deps.queue.publish(&message, entry.trace.as_ref()).await {
            Ok(message_id) => {
                pass.published += 1;
                pass.stale += u32::from(entry.stale);
                let trace_id = entry.trace.map(|t| tracing::field::display(crate::trace::Hex32(t.trace_id())));
                tracing::info!(gift_id = %entry.gift_id, request_id = %entry.request_id, message_id = %message_id.0, trace_id, stale = entry.stale, event = "RELAYED", "outbox message published");
                // The stale deadline counts from this publish, whose time is read after it.
                let due_again = deadline(deps.env.now(), config.stale_after);
                deps.store.outbox_published(&entry, due_again).await?;
            }
            Err(e) => {
                pass.publish_failed += 1;
                tracing::warn!(gift_id = %entry.gift_id, request_id = %entry.request_id, error_code = "PUBLISH_FAILED", error_message = %e, "relay publish failed");
                // The queue is likely down: stop this pass rather than fail every row.
                break;
            }
        }
    }
    Ok(())
}

/// Runs relay passes until `shutdown` resolves; `observe` hears of each pass, failed or not
/// (the worker binary's relay heartbeat means "the loop turns", as the worker's does).
pub async fn run_relay(
    deps: Deps,
    config: RelayConfig,
    observe: impl Fn(Result<&RelayPass, &AppError>) + Send + Sync,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut shutdown = Box::pin(shutdown);
    loop {
        let pass = relay_once(&deps, config).await;
        if let Err(e) = &pass {
            tracing::error!(error_code = "RELAY_FAILED", error_message = %e, "relay pass failed");
        }
        observe(pass.as_ref());
        if pass.as_ref().is_ok_and(|p| p.is_full(config)) {
            // A full pass likely left more due (a backlog after a queue outage): the next
            // starts at once, so a backlog drains at the rate of the queue and the database,
            // not of one batch per interval.
            if shutdown.as_mut().now_or_never().is_some() {
                break;
            }
            continue;
        }
        let pause = deps.env.sleep(config.interval);
        if let Either::Right(_) = select(pause, shutdown.as_mut()).await {
            break;
        }
    }
}
