//! Thin binaries and what they share.
//!
//! # Layout
//!
//! - `src/bin/gift-api.rs`: the ECS API service (PostgreSQL + SQS).
//! - `src/bin/gift-worker.rs`: the ECS worker service, which also runs the outbox relay,
//!   and its `healthcheck` subcommand for the container health check.
//! - `src/bin/gift-admin.rs` and `admin`: the operator tool (show, list, DLQ redrive,
//!   retry of FAILED gifts, migrations and the application's database role).
//! - [`config`]: every environment variable, parsed by clap; invalid config fails fast
//!   naming the variable.
//! - [`telemetry`]: JSON log lines with `timestamp`, `service`, `status` (the level).
//! - [`log_writer`]: stdout written in batches by one thread, so logging costs a request no
//!   system call.
//! - [`metrics`]: the metrics exporters (DogStatsD to the Datadog agent, Prometheus text for
//!   gift-local's `/metrics`) and the sampler of the store's gauges.
//! - [`serve`]: transport middleware (load shedding, timeout, request logs) and graceful
//!   shutdown around the core router.
//! - [`wiring`]: building ports from config.
//! - [`run_service`]: a binary's `main` once its config is parsed: logs, the first line
//!   (`STARTING` with version and git commit), the runtime (`TOKIO_WORKER_THREADS`), the
//!   exit code. [`VERSION`] is what every binary's `--version` prints.
//!
//! The quick start, `gift-local`, is its own package (`local/`) that uses this crate without
//! the `aws` feature: the two ECS binaries, `config::aws` and the PostgreSQL/SQS wiring need
//! it; the rest (logs, transport, the shared config) does not.

#[cfg(feature = "aws")]
pub mod admin;
pub mod config;
pub mod log_writer;
pub mod metrics;
pub mod serve;
pub mod telemetry;
pub mod wiring;

use std::future::Future;
use std::process::ExitCode;

use config::{LogArgs, RuntimeArgs};

/// The git commit the binary was built from: `GIT_SHA` at compile time (the Dockerfile
/// passes the deploy's commit), else `unknown`.
pub const GIT_SHA: &str = match option_env!("GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

/// What `--version` prints after the binary's name: the crate version and the commit.
pub static VERSION: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{} (git {GIT_SHA})", env!("CARGO_PKG_VERSION")));

/// Every binary that links this crate (the three services and gift-bench) allocates with
/// mimalloc: a request makes some 80 small short-lived allocations, and glibc's malloc/free
/// were a tenth of the API's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A binary's `main` after parsing its config: logs set up, the runtime built from
/// `TOKIO_WORKER_THREADS`, `run` driven to its end, a failure logged as `STARTUP_FAILED`.
/// `service` is the process's short name (`api`, `worker`, `local`): the logs' `service`
/// field unless `DD_SERVICE` names it.
pub fn run_service(
    service: &'static str,
    log: &LogArgs,
    runtime: &RuntimeArgs,
    run: impl Future<Output = Result<(), String>>,
) -> ExitCode {
    let bin = format!("gift-{service}");
    // Once per process: the subscriber holds the name for the process's lifetime.
    let named: &'static str = log.service(service).leak();
    let _log = match telemetry::init(named, &log.log_level) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{bin}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The first line of every run says what is running.
    tracing::info!(event = "STARTING", version = env!("CARGO_PKG_VERSION"), git_sha = GIT_SHA, "{bin} starting");
    let outcome = runtime
        .build()
        .map_err(|e| format!("cannot start the runtime (TOKIO_WORKER_THREADS): {e}"))
        .and_then(|runtime| runtime.block_on(run));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error_code = "STARTUP_FAILED", error_message = %e, "{bin} failed");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM (ECS stopping the task) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!(event = "SHUTDOWN", "shutdown signal received; draining");
}
