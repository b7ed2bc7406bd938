//! `gift-bench serve-memq`: `gift-api` with the SQS queue swapped for the in-memory one.
//!
//! Everything else is the production wiring, called rather than copied: the same
//! configuration (`HttpArgs`, `DbArgs`, `LogArgs` and their environment variables and
//! defaults), `wiring::postgres_store` (pool size, acquire and statement timeouts,
//! migrations), `wiring::deps`, `gift_core::http::router`, `serve::with_transport` (load
//! shedding, timeout, one JSON log line per request) and `serve::serve`. The queue only
//! appends to a map, so what is left is the cost of the service and its SQL.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use gift_bins::config::{DbArgs, HttpArgs, OutboxArgs};
use gift_bins::{serve, shutdown_signal, telemetry, wiring};
use gift_runtime::memory::{MemoryQueue, QueueSettings};

use crate::ServiceArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    outbox: OutboxArgs,
    #[command(flatten)]
    pub service: ServiceArgs,
}

pub async fn run(args: Args) -> Result<(), String> {
    let _log = telemetry::init("api", &args.service.log.log_level)?;
    let store = wiring::postgres_store(&args.service.db, "gift-bench").await?;
    let queue = Arc::new(MemoryQueue::new(QueueSettings::default()));
    let deps = wiring::deps(store, queue, 0.0);
    let router = serve::with_transport(gift_core::http::router(deps, args.http.api_config(&args.outbox)), &args.http);
    let addr = SocketAddr::new(args.host, args.http.port);
    serve::serve(router, addr, shutdown_signal()).await.map_err(|e| format!("cannot serve on {addr}: {e}"))
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    db: DbArgs,
}

/// Applies the migrations through `wiring::postgres_store`, exactly as gift-api does at start.
pub fn migrate(mut args: MigrateArgs) -> Result<(), String> {
    args.db.run_migrations = true;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async { wiring::postgres_store(&args.db, "gift-bench").await.map(|_| ()) })
}
