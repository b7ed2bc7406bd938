//! `gift-bench`: the pieces of `scripts/bench` that are better written in Rust than in shell.
//!
//! Every subcommand prints its figures as one `RESULT key=value …` line on **stderr** (stdout
//! carries the service's JSON logs where a service runs in-process). No subcommand judges a
//! figure: `scripts/bench` puts each next to its ceiling and a person reads the table.
//!
//! - `serve-memq`: the production router, transport layers, logging and `PgStore`, wired
//!   exactly as `gift-api` wires them but with the in-memory queue instead of SQS, so the send
//!   path can be measured without an SQS emulator being the bottleneck.
//! - `worker`: drains a pre-filled in-memory queue through the real worker loop over
//!   PostgreSQL, and reports messages per second.
//! - `serve-pipeline`: the API, the worker and the relay in one process over PostgreSQL and
//!   the in-memory queue, for accept → SENT; `pipeline-parts` times the same steps one by
//!   one at zero load, its ceiling (pipeline.rs).
//! - `fleet`: an outbox backlog drained by 1, 2, 4… workers with their relays: drain rate and
//!   publishes per message.
//! - `load`: an HTTP load generator, closed loop or at a fixed rate (open loop, latency
//!   counted from each request's scheduled start as wrk2 does).
//! - `startup`: time from exec of a command to the first 200 on `/healthz`.
//! - `pgbench-log`: latency percentiles from pgbench's per-transaction logs.
//! - `log-format`: the service's JSON log formatter against tracing-subscriber's JSON layer,
//!   ns and bytes per line.
//! - `migrate`: the service's migrations on a database (the pgbench ceilings run on the
//!   schema the service uses).
//! - `sim-baseline` (built with `--cfg madsim` only): seeds per second of an empty madsim
//!   runtime, the ceiling of the simulation's speed.

#[cfg(not(madsim))]
mod fleet;
#[cfg(not(madsim))]
mod load;
#[cfg(not(madsim))]
mod logfmt;
#[cfg(not(madsim))]
mod pglog;
#[cfg(not(madsim))]
mod pipeline;
#[cfg(not(madsim))]
mod serve;
#[cfg(madsim)]
mod sim_baseline;
#[cfg(not(madsim))]
mod startup;
#[cfg(not(madsim))]
mod worker;

use std::process::ExitCode;

use clap::Parser;

#[cfg(not(madsim))]
#[derive(Parser)]
#[command(name = "gift-bench", about = "Benchmark helpers for scripts/bench")]
enum Cli {
    /// Serve the API like gift-api, but with the in-memory queue instead of SQS.
    ServeMemq(serve::Args),
    /// Drain a pre-filled in-memory queue through the real worker loop over PostgreSQL.
    Worker(worker::Args),
    /// The API, the worker and the relay in one process, with the in-memory queue.
    ServePipeline(pipeline::ServeArgs),
    /// The pipeline's steps from QUEUED to SENT, timed one at a time at zero load.
    PipelineParts(pipeline::PartsArgs),
    /// An outbox backlog drained by N workers with their relays against one PostgreSQL.
    Fleet(fleet::Args),
    /// Generate HTTP load, closed loop or at a fixed rate.
    Load(load::Args),
    /// Time from exec to the first 200 on /healthz.
    Startup(startup::Args),
    /// Latency percentiles from pgbench -l log files.
    PgbenchLog(pglog::Args),
    /// Apply the service's migrations to a database, as gift-api does at start.
    Migrate(serve::MigrateArgs),
    /// The service's JSON log formatter against tracing-subscriber's JSON layer.
    LogFormat(logfmt::Args),
}

#[cfg(not(madsim))]
fn main() -> ExitCode {
    let result = match Cli::parse() {
        Cli::ServeMemq(args) => on_service_runtime(&args.service.runtime.clone(), serve::run(args)),
        Cli::Worker(args) => on_service_runtime(&args.service.runtime.clone(), worker::run(args)),
        Cli::ServePipeline(args) => on_service_runtime(&args.service.runtime.clone(), pipeline::serve_pipeline(args)),
        Cli::PipelineParts(args) => pipeline::parts_main(args),
        Cli::Fleet(args) => on_service_runtime(&args.service.runtime.clone(), fleet::run(args)),
        Cli::Load(args) => load::main(args),
        Cli::Startup(args) => startup::main(args),
        Cli::PgbenchLog(args) => pglog::main(args),
        Cli::Migrate(args) => serve::migrate(args),
        Cli::LogFormat(args) => logfmt::main(args),
    };
    exit_code(result)
}

/// What every service the bench runs in-process reads, from the services' own variables.
#[cfg(not(madsim))]
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub db: gift_bins::config::DbArgs,
    #[command(flatten)]
    pub log: gift_bins::config::LogArgs,
    #[command(flatten)]
    pub runtime: gift_bins::config::RuntimeArgs,
}

/// Runs `service` on the runtime gift-api and gift-worker run on, built from the same
/// TOKIO_WORKER_THREADS.
#[cfg(not(madsim))]
fn on_service_runtime(
    runtime: &gift_bins::config::RuntimeArgs,
    service: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    runtime.build().map_err(|e| e.to_string())?.block_on(service)
}

#[cfg(madsim)]
#[derive(Parser)]
#[command(name = "gift-bench", about = "Benchmark helpers for scripts/bench (madsim build)")]
enum Cli {
    /// Seeds per second of an empty madsim runtime (the simulation's ceiling).
    SimBaseline(sim_baseline::Args),
}

#[cfg(madsim)]
fn main() -> ExitCode {
    let result = match Cli::parse() {
        Cli::SimBaseline(args) => sim_baseline::main(args),
    };
    exit_code(result)
}

fn exit_code(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gift-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one machine-readable result line on stderr.
pub fn result_line(fields: &[(&str, String)]) {
    let text: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("RESULT {}", text.join(" "));
}

#[cfg(not(madsim))]
/// The value at quantile `q` (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
