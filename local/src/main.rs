//! The whole gift service in one process on an embedded SQLite file: API, worker and
//! outbox relay, with its metrics as Prometheus text on `/metrics`. `cargo run -p gift-local`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gift_bins::config::LocalConfig;
use gift_bins::{serve, shutdown_signal, wiring};
use gift_runtime::memory::QueueSettings;
use tokio::sync::watch;

fn main() -> ExitCode {
    let config = LocalConfig::parse();
    let (log, runtime) = (config.log.clone(), config.runtime.clone());
    gift_bins::run_service("local", &log, &runtime, run(config))
}

async fn run(config: LocalConfig) -> Result<(), String> {
    let relay_config = config.worker.relay_config(&config.outbox)?;
    let queue_settings = QueueSettings {
        visibility_timeout: Duration::from_secs(config.worker.visibility_timeout_seconds),
        max_receives: config.worker.max_receives,
    };
    let (store, queue) = gift_runtime::sqlite::open(&config.data_file, queue_settings)
        .await
        .map_err(|e| format!("DATA_FILE {}: {e}", config.data_file.display()))?;
    let metrics = gift_bins::metrics::prometheus(&config.metrics, &config.log.service("local"))?;
    tokio::spawn(gift_bins::metrics::sample(store.clone(), Some(metrics.clone())));
    let deps = wiring::deps(store, queue, config.worker.send_failure_rate);

    // One signal stops all three loops: the API drains, the worker finishes its batch.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let worker =
        tokio::spawn(gift_core::worker::run_worker(deps.clone(), config.worker.worker_config(), |_| {}, stopped()));
    let relay = tokio::spawn(gift_core::relay::run_relay(deps.clone(), relay_config, |_| {}, stopped()));
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    let router =
        gift_core::http::router(deps, config.http.api_config(&config.outbox)).merge(gift_bins::metrics::route(metrics));
    let router = serve::with_transport(router, &config.http);
    let addr = SocketAddr::new(config.host, config.http.port);
    serve::serve(router, addr, stopped()).await.map_err(|e| format!("cannot serve on {addr} (PORT/HOST): {e}"))?;
    let _ = tokio::join!(worker, relay);
    Ok(())
}
