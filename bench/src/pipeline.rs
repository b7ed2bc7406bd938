//! Accept → SENT: the API, the worker and the relay in one process over PostgreSQL and an
//! in-memory queue (`serve-pipeline`), and the same pipeline's parts timed one by one at
//! zero load (`pipeline-parts`), its ceiling.
//!
//! `scripts/bench` drives `serve-pipeline` with `gift-bench load --scenario pair` at a fixed
//! rate and reads each gift's QUEUED time (`send_requests.created_at`) and SENT time
//! (`gifts.updated_at`) back from the database: both come from the service's clock, so the
//! latency needs no clock shared with the load generator. The queue stands in for SQS (an
//! emulator is ~150 messages/s and would be all the figure measured); the API and the worker
//! keep pools of their own, as the two ECS services do.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gift_bins::config::{DbArgs, HttpArgs, OutboxArgs, WorkerArgs};
use gift_bins::{serve, shutdown_signal, telemetry, wiring};
use gift_core::domain::{Amount, Gift, GiftCode, GiftId, IdempotencyKey, SendMessage};
use gift_core::ports::{Env, Queue, SendCommand, Store};
use gift_runtime::memory::{MemoryQueue, QueueSettings};
use gift_runtime::rt::{self, SystemEnv};

use crate::{quantile, result_line, ServiceArgs};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// The worker's pool (production: WORKER_DB_POOL_MAX of the worker service, 5).
    #[arg(long, default_value_t = 5)]
    worker_pool: u32,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    outbox: OutboxArgs,
}

pub async fn serve_pipeline(args: ServeArgs) -> Result<(), String> {
    let _log = telemetry::init("pipeline", &args.service.log.log_level)?;
    let api_store = wiring::postgres_store(&args.service.db, "gift-bench-api").await?;
    let worker_store =
        wiring::postgres_store(&worker_db(&args.service.db, args.worker_pool), "gift-bench-worker").await?;
    let queue = Arc::new(MemoryQueue::new(QueueSettings::default()));
    let api = wiring::deps(api_store, queue.clone(), 0.0);
    let worker = wiring::deps(worker_store, queue, args.worker.send_failure_rate);
    let relay =
        gift_core::relay::run_relay(worker.clone(), args.worker.relay_config(&args.outbox)?, |_| {}, shutdown_signal());
    tokio::spawn(relay);
    tokio::spawn(gift_core::worker::run_worker(worker, args.worker.worker_config(), |_| {}, shutdown_signal()));
    let router = serve::with_transport(gift_core::http::router(api, args.http.api_config(&args.outbox)), &args.http);
    let addr = SocketAddr::new(args.host, args.http.port);
    serve::serve(router, addr, shutdown_signal()).await.map_err(|e| format!("cannot serve on {addr}: {e}"))
}

/// The same database through a pool of `pool` connections, migrated already.
pub fn worker_db(db: &DbArgs, pool: u32) -> DbArgs {
    let mut db = db.clone();
    db.db_pool_max = pool;
    db.run_migrations = false;
    db
}

#[derive(Debug, clap::Args)]
pub struct PartsArgs {
    /// Gifts taken through the pipeline one at a time.
    #[arg(long, default_value_t = 500)]
    gifts: usize,
    #[command(flatten)]
    db: DbArgs,
}

pub fn parts_main(args: PartsArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(parts(args))
}

/// Each step between a send's QUEUED time and its SENT time, alone: the send statement
/// (which commits QUEUED), the publish, the worker's receive, its read of the batch's gifts
/// and its conditional update to SENT. The delete comes after SENT is committed and is
/// timed too, but is not part of the latency.
async fn parts(args: PartsArgs) -> Result<(), String> {
    let store = wiring::postgres_store(&args.db, "gift-bench-parts").await?;
    let queue = MemoryQueue::new(QueueSettings::default());
    let key = IdempotencyKey::parse("bench-parts").map_err(|e| e.0)?;
    let mut steps: [Vec<u64>; 6] = Default::default();
    for _ in 0..args.gifts {
        let gift = new_gift();
        let now = gift.created_at;
        store.insert_gift(&gift).await.map_err(|e| e.to_string())?;
        let cmd = SendCommand { gift_id: gift.id, key: key.clone(), now, outbox_available_at: now, trace: None };
        let timer = Instant::now();
        store.request_send(&cmd).await.map_err(|e| e.to_string())?;
        let t_send = lap(&timer);
        let message = SendMessage { gift_id: gift.id, request_id: key.clone() };
        queue.publish(&message, None).await.map_err(|e| e.to_string())?;
        let t_publish = lap(&timer);
        let delivery = queue.receive(10, Duration::ZERO).await.map_err(|e| e.to_string())?.pop().ok_or("no message")?;
        let t_receive = lap(&timer);
        store.get_gifts(&[gift.id]).await.map_err(|e| e.to_string())?;
        let t_read = lap(&timer);
        store.mark_sent_all(&[gift.id], rt::now_utc()).await.map_err(|e| e.to_string())?;
        let t_update = lap(&timer);
        queue.delete(&delivery.receipt).await.map_err(|e| e.to_string())?;
        let t_delete = lap(&timer);
        let marks = [t_send, t_publish, t_receive, t_read, t_update, t_delete];
        let mut previous = 0;
        for (step, mark) in steps.iter_mut().zip(marks) {
            step.push(mark - previous);
            previous = mark;
        }
    }
    let p50: Vec<u64> = steps
        .iter_mut()
        .map(|s| {
            s.sort_unstable();
            quantile(s, 0.5)
        })
        .collect();
    let names = ["send_us", "publish_us", "receive_us", "read_us", "update_us", "delete_us"];
    let mut fields: Vec<(&str, String)> = names.iter().zip(&p50).map(|(n, v)| (*n, v.to_string())).collect();
    let to_sent: u64 = p50[..5].iter().sum();
    fields.push(("accept_to_sent_ms", format!("{:.3}", to_sent as f64 / 1000.0)));
    fields.push(("gifts", args.gifts.to_string()));
    result_line(&fields);
    Ok(())
}

fn lap(timer: &Instant) -> u64 {
    timer.elapsed().as_micros() as u64
}

/// A gift created now, with an id and a code from the runtime's randomness.
pub fn new_gift() -> Gift {
    let env = SystemEnv;
    let id = GiftId::from_random(env.random_u128());
    Gift::new(
        id,
        GiftCode::from_random(env.random_u64()),
        Amount::try_from(1000).expect("a valid amount"),
        None,
        env.now(),
    )
}
