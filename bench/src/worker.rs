//! `gift-bench worker`: the drain rate of the real worker loop over PostgreSQL.
//!
//! `scripts/bench` inserts QUEUED gifts with known ids; this publishes one send message per
//! gift into the in-memory queue (so the queue is never the bottleneck, unlike an SQS
//! emulator), then runs `gift_core::worker::run_worker` — the loop `gift-worker` runs, with its
//! configuration and `PgStore` built by the same `gift_bins` functions — until the queue is
//! empty, and reports messages per second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gift_bins::config::WorkerArgs;
use gift_bins::{telemetry, wiring};
use gift_core::domain::{GiftId, IdempotencyKey, SendMessage};
use gift_core::ports::Queue;
use gift_core::service::DeliveryOutcome;
use gift_core::worker::WorkerEvent;
use gift_runtime::memory::{MemoryQueue, QueueSettings};

use crate::{result_line, ServiceArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The gifts are `bench_id(id_base + client * 1_000_000 + j)` for j < per_client: the
    /// layout the pgbench worker script walks, one range per client.
    #[arg(long, default_value_t = 0)]
    id_base: u64,
    #[arg(long, default_value_t = 10)]
    clients: u64,
    #[arg(long)]
    per_client: u64,
    /// Worker loops in this process (gift-worker runs one).
    #[arg(long, default_value_t = 1)]
    loops: usize,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// The id `scripts/bench` gives to pre-filled gift number `n` (a valid version-4 layout).
pub fn bench_id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

pub async fn run(args: Args) -> Result<(), String> {
    let _log = telemetry::init("worker", &args.service.log.log_level)?;
    let store = wiring::postgres_store(&args.service.db, "gift-bench").await?;
    let queue = Arc::new(MemoryQueue::new(QueueSettings::default()));
    let key = IdempotencyKey::parse("bench-key").map_err(|e| e.0)?;
    for client in 0..args.clients {
        for j in 0..args.per_client {
            let id = GiftId::parse(&bench_id(args.id_base + client * 1_000_000 + j)).map_err(|e| e.0)?;
            let message = SendMessage { gift_id: id, request_id: key.clone() };
            queue.publish(&message, None).await.map_err(|e| e.to_string())?;
        }
    }
    let total = queue.len() as u64;
    let deps = wiring::deps(store, queue.clone(), args.worker.send_failure_rate);
    let config = args.worker.worker_config();
    let sent = AtomicU64::new(0);
    let other = AtomicU64::new(0);
    let observe = |event: WorkerEvent<'_>| {
        if let WorkerEvent::Handled(_, outcome) = event {
            if *outcome == DeliveryOutcome::Sent {
                sent.fetch_add(1, Ordering::Relaxed);
            } else {
                other.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    let started = Instant::now();
    // The drain ends when the last message is deleted; a stopping worker then still awaits
    // the long poll it has in progress (up to WORKER_WAIT_SECONDS), which is not the drain.
    let drained_after = std::sync::OnceLock::new();
    let drained = || {
        let (queue, drained_after) = (queue.clone(), &drained_after);
        async move {
            while !queue.is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            drained_after.get_or_init(|| started.elapsed());
        }
    };
    let loops =
        (0..args.loops.max(1)).map(|_| gift_core::worker::run_worker(deps.clone(), config, &observe, drained()));
    futures::future::join_all(loops).await;
    let secs = drained_after.get().copied().unwrap_or_else(|| started.elapsed()).as_secs_f64();
    result_line(&[
        ("messages", total.to_string()),
        ("secs", format!("{secs:.3}")),
        ("rate", format!("{:.0}", total as f64 / secs)),
        ("sent", sent.load(Ordering::Relaxed).to_string()),
        ("other", other.load(Ordering::Relaxed).to_string()),
        ("loops", args.loops.to_string()),
        ("batch", config.batch_size.to_string()),
        ("pool", args.service.db.db_pool_max.to_string()),
    ]);
    Ok(())
}
