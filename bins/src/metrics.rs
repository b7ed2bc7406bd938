//! Exporting the metrics `gift_core::metrics` records. The ECS services send them to the
//! Datadog agent beside them as DogStatsD (`DOGSTATSD_ADDR`), histograms as distributions so
//! percentiles aggregate across tasks; gift-local renders them as Prometheus text on
//! `/metrics`, readable without Datadog. Either way each metric carries the `service`, `env`
//! and `version` tags of Datadog's unified service tagging.
//!
//! DogStatsD rather than OTLP: the agent already listens for it in every task, and the
//! exporter is one small crate on a thread of its own with a UDP socket, where OTLP would
//! bring an OpenTelemetry SDK and a gRPC or HTTP client into every binary.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use gift_runtime::gauges::Gauged;
use metrics::Label;
use metrics_exporter_dogstatsd::DogStatsDBuilder;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::MetricsArgs;

/// How often the sampler reads the store's gauges (and runs the Prometheus upkeep).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// `service`, `env`, `version`.
fn tags(args: &MetricsArgs, service: &str) -> [(&'static str, String); 3] {
    [
        ("service", service.to_owned()),
        ("env", args.dd_env.clone()),
        ("version", args.dd_version.clone().unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned())),
    ]
}

/// Installs the DogStatsD exporter when `DOGSTATSD_ADDR` is set; otherwise metrics stay
/// unrecorded. `service` is the logs' service ([`crate::config::LogArgs::service`]).
pub fn export_dogstatsd(args: &MetricsArgs, service: &str) -> Result<(), String> {
    let Some(addr) = &args.dogstatsd_addr else { return Ok(()) };
    let labels = tags(args, service).into_iter().map(|(k, v)| Label::new(k, v)).collect();
    DogStatsDBuilder::default()
        .with_remote_address(addr)
        .map_err(|e| format!("DOGSTATSD_ADDR={addr}: {e}"))?
        .with_global_labels(labels)
        .with_telemetry(false)
        .send_histograms_as_distributions(true)
        .install()
        .map_err(|e| format!("cannot start the DogStatsD exporter: {e}"))?;
    tracing::info!(event = "METRICS", dogstatsd_addr = %addr, "metrics exported to DogStatsD");
    Ok(())
}

/// Installs the Prometheus recorder; the handle renders the text [`route`] serves.
pub fn prometheus(args: &MetricsArgs, service: &str) -> Result<PrometheusHandle, String> {
    let builder = tags(args, service).into_iter().fold(PrometheusBuilder::new(), |b, (k, v)| b.add_global_label(k, v));
    builder.install_recorder().map_err(|e| format!("cannot start the metrics recorder: {e}"))
}

/// `GET /metrics`: every metric as Prometheus text.
pub fn route(handle: PrometheusHandle) -> Router {
    Router::new().route("/metrics", get(move || std::future::ready(handle.render())))
}

/// Records the store's gauges every [`SAMPLE_EVERY`], forever (and keeps the Prometheus
/// recorder's histograms bounded, when there is one). A failed read is logged and the last
/// values stand until the next.
pub async fn sample(store: Arc<dyn Gauged>, prometheus: Option<PrometheusHandle>) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let now = chrono::Utc::now();
        match store.gauges(now).await {
            Ok(g) => {
                let age = g.outbox_oldest_due.map_or(0.0, |due| (now - due).to_std().unwrap_or_default().as_secs_f64());
                gift_core::metrics::outbox(g.outbox_depth, age);
                gift_core::metrics::pool(g.pool.size, g.pool.in_use, g.pool.waiting);
            }
            Err(e) => tracing::warn!(error_code = "GAUGES_FAILED", error_message = %e, "store gauges not read"),
        }
        if let Some(handle) = &prometheus {
            handle.run_upkeep();
        }
    }
}
