//! The ECS worker service: the worker loop and the outbox relay over PostgreSQL and SQS.
//! `gift-worker healthcheck` is the container health check.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gift_bins::config::{WorkerCommand, WorkerServiceConfig};
use gift_bins::{shutdown_signal, wiring};
use tokio::sync::watch;

fn main() -> ExitCode {
    let config = WorkerServiceConfig::parse();
    if let Some(WorkerCommand::Healthcheck { max_age_seconds }) = config.command {
        let fresh = wiring::worker_is_live(&config.heartbeat_file, Duration::from_secs(max_age_seconds));
        return if fresh { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let (log, runtime) = (config.log.clone(), config.runtime.clone());
    gift_bins::run_service("worker", &log, &runtime, run(config))
}

async fn run(config: WorkerServiceConfig) -> Result<(), String> {
    let relay_config = config.worker.relay_config(&config.outbox)?;
    if let Some(advice) = config.pool_advice() {
        tracing::warn!(error_code = "CONFIG_POOL_SMALL", error_message = %advice, "the pool is no larger than the batches in hand");
    }
    gift_bins::metrics::export_dogstatsd(&config.metrics, &config.log.service("worker"))?;
    let store = wiring::postgres_store(&config.db, "gift-worker").await?;
    tokio::spawn(gift_bins::metrics::sample(store.clone(), None));
    let queue = wiring::sqs_queue(&config.sqs).await;
    let base = wiring::deps(store, queue, config.worker.send_failure_rate);
    let tap = wiring::open_tap(&config.tap)?;
    let (deps, relay_deps) = match &tap {
        Some(tap) => (wiring::tapped(&base, tap), wiring::tapped(&base, &wiring::relay_tap(tap, &config.tap)?)),
        None => (base.clone(), base),
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let relay_heartbeat = wiring::relay_heartbeat(&config.heartbeat_file);
    let relay = tokio::spawn(gift_core::relay::run_relay(relay_deps, relay_config, relay_heartbeat, stopped()));
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    // Stops receiving at the signal and finishes the batch in hand: no message is left
    // half-handled, and unreceived ones stay on the queue for the next task.
    gift_core::worker::run_worker(
        deps,
        config.worker.worker_config(),
        wiring::heartbeat(&config.heartbeat_file, tap.clone()),
        stopped(),
    )
    .await;
    if let Some(tap) = &tap {
        tap.write(gift_runtime::rt::now_utc().timestamp_micros(), gift_runtime::tap::Effect::Stopped);
    }
    let _ = relay.await;
    Ok(())
}
