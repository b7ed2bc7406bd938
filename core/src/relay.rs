//! The outbox relay: publishes sends whose publish after commit failed or never happened,
//! and re-arms QUEUED gifts whose message was lost after it left the outbox. Both are safe
//! to repeat because the worker ignores duplicates.

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
    /// A QUEUED gift untouched this long, with no outbox row, is assumed to have lost its
    /// message and is re-armed. Must exceed the worst retry window (5 receives × backoff
    /// plus visibility timeouts), or healthy retries get duplicate messages.
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
    pub published: u32,
    pub publish_failed: u32,
    pub rearmed: u32,
}

impl RelayPass {
    /// Whether the pass took a whole batch of rows to publish or to re-arm without a publish
    /// failing: there may be more.
    pub fn is_full(&self, config: RelayConfig) -> bool {
        self.publish_failed == 0 && (self.published >= config.batch || self.rearmed >= config.batch)
    }
}

/// One pass: publish due outbox rows (removing each once published), then re-arm stale
/// QUEUED gifts so the next pass publishes them. The re-arm runs even when the outbox
/// part failed: a store that cannot list the outbox may still re-arm, and a pass that
/// skipped it would leave lost messages lost for as long as the outbox keeps failing.
pub async fn relay_once(deps: &Deps, config: RelayConfig) -> Result<RelayPass, AppError> {
    let now = deps.env.now();
    let mut pass = RelayPass::default();
    let published = publish_due(deps, config, now, &mut pass).await;
    // A stale_after too long to subtract means nothing is ever stale.
    let stale_before = chrono::Duration::from_std(config.stale_after).ok().and_then(|d| now.checked_sub_signed(d));
    let rearmed = match stale_before {
        Some(before) => deps.store.rearm_stale(before, now, config.batch).await,
        None => Ok(0),
    };
    if let Ok(n) = rearmed {
        pass.rearmed = n;
        if n > 0 {
            tracing::warn!(count = n, error_code = "STALE_QUEUED", "re-armed QUEUED gifts whose message was lost");
        }
    }
    metrics::relay_pass(pass.published, pass.publish_failed, pass.rearmed);
    published?;
    rearmed?;
    Ok(pass)
}

async fn publish_due(deps: &Deps, config: RelayConfig, now: Timestamp, pass: &mut RelayPass) -> Result<(), AppError> {
    // A claim too long to add lasts as long as time does.
    let until = chrono::Duration::from_std(config.claim)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    for entry in deps.store.outbox_claim(now, until, config.batch).await? {
        let message = SendMessage { gift_id: entry.gift_id, request_id: entry.request_id.clone() };
        match deps.queue.publish(&message, entry.trace.as_ref()).await {
            Ok(message_id) => {
                pass.published += 1;
                let trace_id = entry.trace.map(|t| tracing::field::display(crate::trace::Hex32(t.trace_id())));
                tracing::info!(gift_id = %entry.gift_id, request_id = %entry.request_id, message_id = %message_id.0, trace_id, event = "RELAYED", "outbox message published");
                deps.store.outbox_remove(&entry).await?;
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
