//! The worker loop: keep up to `batches_in_hand` received batches in hand, receive again as
//! soon as one is done, repeat until told to stop. All decisions live in
//! [`crate::service::handle_deliveries`]; this only schedules: [`run_worker`] acts on
//! what woke it, `next_wake` waits for the first of shutdown, receive and batch done, and
//! `receive_batch` gathers one batch from up to `receives_per_batch` receives.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::defaults;
use crate::domain::Timestamp;
use crate::error::QueueError;
use crate::metrics;
use crate::ports::{Delivery, Env};
use crate::service::{handle_deliveries, BatchTerms, DeliveryOutcome, Deps, InFlight, RetryPolicy};

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
    /// Messages per receive (SQS allows 1–10).
    pub batch_size: u32,
    /// Receives gathered into one batch (at least 1): while a receive comes back full, the
    /// next one asks again at once, without a long poll, so under a backlog a batch's two
    /// store statements carry `receives_per_batch × batch_size` messages instead of SQS's
    /// ten. A receive that comes back short ends the batch, so a quiet queue adds no wait.
    pub receives_per_batch: u32,
    /// Received batches handled at once (at least 1). The next receive starts while fewer
    /// are in hand; a batch holds a database connection only while it loads and records,
    /// so this many batches keep as many of the pool's connections busy.
    pub batches_in_hand: u32,
    /// Long-poll wait per receive.
    pub wait: Duration,
    /// Pause after a failed receive so an outage is not hammered.
    pub error_pause: Duration,
    pub retry: RetryPolicy,
    /// The queue's visibility timeout: how long a received message stays hidden from other
    /// workers. A batch in hand renews it (a heartbeat) so no other worker takes its
    /// messages while their pseudo-sends run.
    pub visibility_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch_size: defaults::WORKER_BATCH_SIZE,
            receives_per_batch: defaults::WORKER_RECEIVES_PER_BATCH,
            batches_in_hand: defaults::WORKER_BATCHES_IN_HAND,
            wait: Duration::from_secs(defaults::WORKER_WAIT_SECONDS),
            error_pause: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            visibility_timeout: Duration::from_secs(defaults::VISIBILITY_TIMEOUT_SECONDS),
        }
    }
}

/// The deliveries of one batch's receives, and when the first of them returned: the
/// batch's lease runs from there, which is no later than any of its messages was hidden.
struct Received {
    at: Timestamp,
    deliveries: Vec<Delivery>,
}

type Receiving<'a> = Pin<Box<dyn Future<Output = Result<Received, QueueError>> + Send + 'a>>;

/// What woke the loop.
enum Wake {
    Stop,
    Received(Result<Received, QueueError>),
    Handled(Vec<(Delivery, DeliveryOutcome)>),
}

/// Runs until `shutdown` resolves. At shutdown no new receive starts, but the one in
/// progress is awaited (at most its long-poll `wait`) and its messages handled: the queue
/// has already counted that receive, so dropping it would spend one of each message's
/// five receives and hide it for a visibility timeout. Deliveries in hand are finished, so
/// no message is left half-handled by a clean stop.
///
/// A received batch is handled as one (its deliveries' sends run concurrently, its store
/// work is shared), and the next receive starts while it is in hand, so the queue's
/// long poll and the database work overlap. Up to `batches_in_hand` batches are in hand: a
/// slow send holds up its own batch's update, not the next batch.
///
/// `observe` hears of every receive (a health check's heartbeat) and every handled
/// delivery (the simulation's history).
pub async fn run_worker(
    deps: Deps,
    config: WorkerConfig,
    observe: impl Fn(WorkerEvent<'_>) + Send + Sync,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut shutdown = Box::pin(shutdown);
    let in_flight = InFlight::default();
    let handle = |received: Received| {
        let terms = BatchTerms { retry: config.retry, visibility: config.visibility_timeout, received_at: received.at };
        handle_deliveries(&deps, terms, &in_flight, received.deliveries)
    };
    // Read by the receive in progress: once stopping, it makes no further receive.
    let stop_asked = AtomicBool::new(false);
    let mut in_hand = FuturesUnordered::new();
    let mut receiving: Option<Receiving<'_>> = None;
    let mut stopping = false;
    tracing::info!(
        event = "STARTED",
        batch_size = config.batch_size,
        receives_per_batch = config.receives_per_batch,
        batches_in_hand = config.batches_in_hand,
        "worker started"
    );
    loop {
        if !stopping && receiving.is_none() && in_hand.len() < config.batches_in_hand.max(1) as usize {
            observe(WorkerEvent::Turn);
            receiving = Some(Box::pin(receive_batch(&deps, &config, &stop_asked)));
        }
        if stopping && in_hand.is_empty() && receiving.is_none() {
            break;
        }
        match next_wake(shutdown.as_mut(), stopping, &mut receiving, &mut in_hand).await {
            Wake::Stop => {
                stopping = true;
                stop_asked.store(true, Ordering::Relaxed);
            }
            Wake::Received(Ok(received)) => {
                receiving = None;
                if !received.deliveries.is_empty() {
                    metrics::received(received.deliveries.len());
                    in_hand.push(handle(received));
                }
            }
            Wake::Received(Err(e)) if stopping => {
                tracing::error!(error_code = "RECEIVE_FAILED", error_message = %e, "receive failed while stopping");
                receiving = None;
            }
            Wake::Received(Err(e)) => {
                tracing::error!(error_code = "RECEIVE_FAILED", error_message = %e, "receive failed");
                // The pause takes the receive's place, so deliveries in hand still finish meanwhile.
                receiving = Some(pause(&*deps.env, config.error_pause));
            }
            Wake::Handled(handled) => {
                for (delivery, outcome) in &handled {
                    metrics::delivery(outcome);
                    observe(WorkerEvent::Handled(delivery, outcome));
                }
            }
        }
    }
    tracing::info!(event = "STOPPED", "worker stopped");
}

/// What wakes the loop first: the shutdown (unless it is already stopping), the receive in
/// progress, or a batch in hand being done.
async fn next_wake<S, F>(
    mut shutdown: Pin<&mut S>,
    stopping: bool,
    receiving: &mut Option<Receiving<'_>>,
    in_hand: &mut FuturesUnordered<F>,
) -> Wake
where
    S: Future<Output = ()> + ?Sized,
    F: Future<Output = Vec<(Delivery, DeliveryOutcome)>>,
{
    poll_fn(|cx| {
        if !stopping && shutdown.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Wake::Stop);
        }
        if let Some(Poll::Ready(result)) = receiving.as_mut().map(|r| r.as_mut().poll(cx)) {
            return Poll::Ready(Wake::Received(result));
        }
        match in_hand.poll_next_unpin(cx) {
            Poll::Ready(Some(handled)) => Poll::Ready(Wake::Handled(handled)),
            _ => Poll::Pending,
        }
    })
    .await
}

/// One batch's receives: the first long-polls; each later one asks without waiting, and
/// only while the one before came back full and no stop was asked. A later receive that
/// fails ends the batch with what it has: the queue has counted those deliveries, so they
/// are handled.
async fn receive_batch(deps: &Deps, config: &WorkerConfig, stop_asked: &AtomicBool) -> Result<Received, QueueError> {
    let mut deliveries = deps.queue.receive(config.batch_size, config.wait).await?;
    let at = deps.env.now();
    let mut last = deliveries.len();
    for _ in 1..config.receives_per_batch {
        if last < config.batch_size as usize || stop_asked.load(Ordering::Relaxed) {
            break;
        }
        match deps.queue.receive(config.batch_size, Duration::ZERO).await {
            Ok(more) => {
                last = more.len();
                deliveries.extend(more);
            }
            Err(e) => {
                tracing::error!(error_code = "RECEIVE_FAILED", error_message = %e, "a batch's further receive failed; the batch goes on with what it has");
                break;
            }
        }
    }
    Ok(Received { at, deliveries })
}

/// A receive that waits `pause` and brings nothing.
fn pause(env: &dyn Env, pause: Duration) -> Receiving<'_> {
    Box::pin(async move {
        env.sleep(pause).await;
        Ok(Received { at: env.now(), deliveries: Vec::new() })
    })
}
