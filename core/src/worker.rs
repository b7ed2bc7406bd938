//! The worker loop: receive a batch, handle its deliveries concurrently, repeat until told
//! to stop. All decisions live in [`crate::service::handle_delivery`]; this only schedules.

use std::future::Future;
use std::time::Duration;

use futures::future::{join_all, select, Either};

use crate::ports::Delivery;
use crate::service::{handle_delivery, DeliveryOutcome, Deps, RetryPolicy};

/// What [`run_worker`] reports to its observer.
#[derive(Debug)]
pub enum WorkerEvent<'a> {
    /// The loop is about to receive again.
    Turn,
    /// One delivery was handled.
    Handled(&'a Delivery, &'a DeliveryOutcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Messages per receive (SQS allows 1–10); handled concurrently.
    pub batch_size: u32,
    /// Long-poll wait per receive.
    pub wait: Duration,
    /// Pause after a failed receive so an outage is not hammered.
    pub error_pause: Duration,
    pub retry: RetryPolicy,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            wait: Duration::from_secs(20),
            error_pause: Duration::from_secs(1),
            retry: RetryPolicy::default(),
        }
    }
}

/// Runs until `shutdown` resolves. A receive in progress is abandoned at shutdown (its
/// messages, if any, reappear after their visibility timeout); a batch in progress is
/// finished, so no message is left half-handled by a clean stop.
///
/// `observe` hears of every loop turn (a health check's heartbeat) and every handled
/// delivery (the simulation's history).
pub async fn run_worker(
    deps: Deps,
    config: WorkerConfig,
    observe: impl Fn(WorkerEvent<'_>) + Send + Sync,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut shutdown = Box::pin(shutdown);
    tracing::info!(event = "STARTED", batch_size = config.batch_size, "worker started");
    loop {
        observe(WorkerEvent::Turn);
        let receive = deps.queue.receive(config.batch_size, config.wait);
        let deliveries = match select(Box::pin(receive), shutdown.as_mut()).await {
            Either::Right(((), _)) => break,
            Either::Left((Ok(batch), _)) => batch,
            Either::Left((Err(e), _)) => {
                tracing::error!(error_code = "RECEIVE_FAILED", error_message = %e, "receive failed");
                deps.env.sleep(config.error_pause).await;
                continue;
            }
        };
        let outcomes = run_batch(&deps, config.retry, &deliveries).await;
        for (delivery, outcome) in deliveries.iter().zip(&outcomes) {
            observe(WorkerEvent::Handled(delivery, outcome));
        }
    }
    tracing::info!(event = "STOPPED", "worker stopped");
}

/// Handles one received batch concurrently and returns each outcome in order.
pub async fn run_batch(deps: &Deps, retry: RetryPolicy, deliveries: &[Delivery]) -> Vec<DeliveryOutcome> {
    join_all(
        deliveries.iter().map(|d| handle_delivery(&*deps.store, &*deps.queue, &*deps.env, &*deps.dispatcher, retry, d)),
    )
    .await
}
