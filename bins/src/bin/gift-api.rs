//! The ECS API service: the core router over PostgreSQL and SQS.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use gift_bins::config::ApiServiceConfig;
use gift_bins::{serve, shutdown_signal, wiring};

fn main() -> ExitCode {
    let config = ApiServiceConfig::parse();
    let (log, runtime) = (config.log.clone(), config.runtime.clone());
    gift_bins::run_service("api", &log, &runtime, run(config))
}

async fn run(config: ApiServiceConfig) -> Result<(), String> {
    gift_bins::metrics::export_dogstatsd(&config.metrics, &config.log.service("api"))?;
    let store = wiring::postgres_store(&config.db, "gift-api").await?;
    tokio::spawn(gift_bins::metrics::sample(store.clone(), None));
    let queue = wiring::sqs_queue(&config.sqs).await;
    // The API never pseudo-sends; the rate only matters to the worker.
    let deps = wiring::deps(store, queue, 0.0);
    let deps = match wiring::open_tap(&config.tap)? {
        Some(tap) => wiring::tapped(&deps, &tap),
        None => deps,
    };
    let router =
        serve::with_transport(gift_core::http::router(deps, config.http.api_config(&config.outbox)), &config.http);
    let addr = SocketAddr::new(config.host, config.http.port);
    serve::serve(router, addr, shutdown_signal()).await.map_err(|e| format!("cannot serve on {addr} (PORT/HOST): {e}"))
}
