//! The worker loop: keep up to two batches of deliveries in hand, receive again as soon as a
//! batch's worth of room is free, repeat until told to stop. All decisions live in
//! [`crate::service::handle_delivery`]; this only schedules.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::error::QueueError;
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
    /// Messages per receive (SQS allows 1–10). Up to twice this many are handled at once.
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

type Receiving<'a> = Pin<Box<dyn Future<Output = Result<Vec<Delivery>, QueueError>> + Send + 'a>>;

/// What woke the loop.
enum Wake {
    Stop,
    Received(Result<Vec<Delivery>, QueueError>),
    Handled(Delivery, DeliveryOutcome),
}

/// Runs until `shutdown` resolves. A receive in progress is abandoned at shutdown (its
/// messages, if any, reappear after their visibility timeout); deliveries in hand are
/// finished, so no message is left half-handled by a clean stop.
///
/// Deliveries are handled concurrently, and the next receive starts as soon as a batch's
/// worth of them is done, so one slow delivery does not hold up the nine beside it. At
/// most two batches are in hand: the store's pool, not this loop, bounds the database work.
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
    let batch = config.batch_size.max(1) as usize;
    let handle = |delivery: Delivery| {
        let deps = &deps;
        async move {
            let outcome =
                handle_delivery(&*deps.store, &*deps.queue, &*deps.env, &*deps.dispatcher, config.retry, &delivery)
                    .await;
            (delivery, outcome)
        }
    };
    let mut in_hand = FuturesUnordered::new();
    let mut receiving: Option<Receiving<'_>> = None;
    let mut stopping = false;
    tracing::info!(event = "STARTED", batch_size = config.batch_size, "worker started");
    loop {
        if !stopping && receiving.is_none() && in_hand.len() <= batch {
            observe(WorkerEvent::Turn);
            receiving = Some(Box::pin(deps.queue.receive(config.batch_size, config.wait)));
        }
        if stopping && in_hand.is_empty() {
            break;
        }
        let wake = poll_fn(|cx| {
            if !stopping && shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Stop);
            }
            if let Some(Poll::Ready(result)) = receiving.as_mut().map(|r| r.as_mut().poll(cx)) {
                return Poll::Ready(Wake::Received(result));
            }
            match in_hand.poll_next_unpin(cx) {
                Poll::Ready(Some((delivery, outcome))) => Poll::Ready(Wake::Handled(delivery, outcome)),
                _ => Poll::Pending,
            }
        })
        .await;
        match wake {
            Wake::Stop => {
                stopping = true;
                receiving = None;
            }
            Wake::Received(Ok(deliveries)) => {
                receiving = None;
                in_hand.extend(deliveries.into_iter().map(handle));
            }
            Wake::Received(Err(e)) => {
                tracing::error!(error_code = "RECEIVE_FAILED", error_message = %e, "receive failed");
                // The pause takes the receive's place, so deliveries in hand still finish meanwhile.
                let env = &deps.env;
                receiving = Some(Box::pin(async move {
                    env.sleep(config.error_pause).await;
                    Ok(Vec::new())
                }));
            }
            Wake::Handled(delivery, outcome) => observe(WorkerEvent::Handled(&delivery, &outcome)),
        }
    }
    tracing::info!(event = "STOPPED", "worker stopped");
}
