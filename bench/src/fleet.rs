//! `gift-bench fleet`: a backlog of accepted sends whose publish never happened (SQS was
//! down), drained by N workers, each with its relay and its own pool, against one
//! PostgreSQL — the drain rate and how many times the relays published each message.
//!
//! The backlog goes in through the store's own send statement with the outbox row due at
//! once, and nothing is published: the relays must find every row, claim it once between
//! them, and the workers mark it SENT. The workers share one in-memory queue, which stands
//! in for SQS; each is otherwise `gift-worker`'s loop and relay with its configuration.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gift_bins::config::{OutboxArgs, WorkerArgs};
use gift_bins::{telemetry, wiring};
use gift_core::domain::IdempotencyKey;
use gift_core::ports::{SendCommand, Store};
use gift_core::service::DeliveryOutcome;
use gift_core::worker::WorkerEvent;
use gift_runtime::memory::{MemoryQueue, QueueSettings};
use tokio::sync::watch;

use crate::pipeline::{new_gift, worker_db};
use crate::{result_line, ServiceArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Worker tasks (each a gift-worker: loop, relay, pool).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Accepted sends waiting in the outbox when the workers start.
    #[arg(long, default_value_t = 20000)]
    backlog: usize,
    /// Each worker's pool (production: 5).
    #[arg(long, default_value_t = 5)]
    worker_pool: u32,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    outbox: OutboxArgs,
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// What the fleet did, counted from the workers' and relays' own reports.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    other: AtomicU64,
    published: AtomicU64,
    passes: AtomicU64,
}

pub async fn run(args: Args) -> Result<(), String> {
    let _log = telemetry::init("worker", &args.service.log.log_level)?;
    let filler = wiring::postgres_store(&args.service.db, "gift-bench-fill").await?;
    fill(&*filler, args.backlog).await?;
    let queue = Arc::new(MemoryQueue::new(QueueSettings::default()));
    let counts = Arc::new(Counts::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let relay_config = args.worker.relay_config(&args.outbox)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.workers.max(1) {
        let store = wiring::postgres_store(&worker_db(&args.service.db, args.worker_pool), "gift-bench-fleet").await?;
        let deps = wiring::deps(store, queue.clone(), args.worker.send_failure_rate);
        let c = counts.clone();
        let on_pass = move |pass: Result<&gift_core::relay::RelayPass, &gift_core::AppError>| {
            c.passes.fetch_add(1, Ordering::Relaxed);
            if let Ok(pass) = pass {
                c.published.fetch_add(u64::from(pass.published), Ordering::Relaxed);
            }
        };
        tasks.push(tokio::spawn(gift_core::relay::run_relay(deps.clone(), relay_config, on_pass, stopped(&stop_rx))));
        let c = counts.clone();
        let on_event = move |event: WorkerEvent<'_>| {
            if let WorkerEvent::Handled(_, outcome) = event {
                let counter = if *outcome == DeliveryOutcome::Sent { &c.sent } else { &c.other };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        };
        let config = args.worker.worker_config();
        tasks.push(tokio::spawn(gift_core::worker::run_worker(deps, config, on_event, stopped(&stop_rx))));
    }
    while counts.sent.load(Ordering::Relaxed) < args.backlog as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    futures::future::join_all(tasks).await;
    let backlog = args.backlog as f64;
    let published = counts.published.load(Ordering::Relaxed);
    result_line(&[
        ("workers", args.workers.to_string()),
        ("backlog", args.backlog.to_string()),
        ("secs", format!("{secs:.3}")),
        ("rate", format!("{:.0}", backlog / secs)),
        ("published", published.to_string()),
        ("publishes_per_message", format!("{:.3}", published as f64 / backlog)),
        ("not_sent_deliveries", counts.other.load(Ordering::Relaxed).to_string()),
        ("relay_passes", counts.passes.load(Ordering::Relaxed).to_string()),
    ]);
    Ok(())
}

fn stopped(rx: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// `count` gifts accepted for sending through the store's send statement, each with its
/// outbox row due now and no message on the queue.
async fn fill(store: &dyn Store, count: usize) -> Result<(), String> {
    let key = IdempotencyKey::parse("bench-fleet").map_err(|e| e.0)?;
    let sends = futures::stream::iter(0..count).map(|_| {
        let key = key.clone();
        async move {
            let gift = new_gift();
            let now = gift.created_at;
            store.insert_gift(&gift).await.map_err(|e| e.to_string())?;
            let cmd = SendCommand { gift_id: gift.id, key, now, outbox_available_at: now, trace: None };
            store.request_send(&cmd).await.map(|_| ()).map_err(|e| e.to_string())
        }
    });
    let results: Vec<Result<(), String>> = sends.buffer_unordered(16).collect().await;
    results.into_iter().collect()
}
