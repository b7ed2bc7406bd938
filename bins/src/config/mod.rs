//! Configuration from environment variables (and the equivalent flags). Each field names
//! its variable; `docs/configuration.md` lists them all. The ECS services' PostgreSQL and
//! SQS settings are in `aws` (feature `aws`).

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use gift_core::defaults;

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "aws")]
pub use aws::{ApiServiceConfig, DbArgs, SqsArgs, WorkerCommand, WorkerServiceConfig};

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is outside 0.0–1.0"))
    }
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// The `service` of every log line and every metric, one name for both as Datadog's
    /// unified service tagging wants; default the process's short name (api, worker, local).
    #[arg(long, env = "DD_SERVICE")]
    pub dd_service: Option<String>,
}

impl LogArgs {
    /// `DD_SERVICE`, else `default`.
    pub fn service(&self, default: &str) -> String {
        self.dd_service.clone().unwrap_or_else(|| default.to_owned())
    }
}

/// Where metrics go and the tags every metric carries (Datadog unified service tagging).
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// The Datadog agent's DogStatsD address (`127.0.0.1:8125` beside the ECS task's agent);
    /// unset: metrics are not exported. gift-local serves them on `/metrics` instead.
    #[arg(long, env = "DOGSTATSD_ADDR")]
    pub dogstatsd_addr: Option<String>,
    /// The `env` tag.
    #[arg(long, env = "DD_ENV", default_value = "local")]
    pub dd_env: String,
    /// The `version` tag; default the crate version.
    #[arg(long, env = "DD_VERSION")]
    pub dd_version: Option<String>,
}

/// The effect tap (`gift_runtime::tap`): every port call written to a file as one JSON
/// line, for the real-stack run's history. Off in production.
#[derive(Debug, Clone, Args)]
pub struct TapArgs {
    /// File to append the process's effect lines to; unset: no tap.
    #[arg(long, env = "EFFECT_LOG")]
    pub effect_log: Option<PathBuf>,
    /// The process's name in those lines (api-1, worker-2); its relay is `relay-` + the
    /// number.
    #[arg(long, env = "NODE_NAME", default_value = "node-1")]
    pub node_name: String,
}

/// The async runtime the service runs on.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Threads that run the service's tasks; default one per CPU the process may use. Set
    /// it to the task's vCPUs: on a fractional-vCPU Fargate task the container still sees
    /// two CPUs, and a second thread only adds wake-ups between the two (docs/benchmarks.md).
    #[arg(long, env = "TOKIO_WORKER_THREADS")]
    pub tokio_worker_threads: Option<NonZeroUsize>,
}

impl RuntimeArgs {
    /// The multi-threaded tokio runtime with every driver enabled.
    pub fn build(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(threads) = self.tokio_worker_threads {
            builder.worker_threads(threads.get());
        }
        builder.enable_all().build()
    }
}

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Largest request body accepted (bytes); larger bodies get 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = defaults::MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// A request taking longer gets 503 (milliseconds).
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = defaults::REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,
    /// Requests handled at once; beyond this the API sheds load with 503 + Retry-After.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = defaults::MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,
    /// How long an accepted send's outbox row waits for the API's own publish before the
    /// relay publishes it (milliseconds).
    #[arg(long, env = "PUBLISH_GRACE_MS", default_value_t = defaults::PUBLISH_GRACE_MS)]
    pub publish_grace_ms: u64,
}

impl HttpArgs {
    pub fn api_config(&self, outbox: &OutboxArgs) -> gift_core::http::ApiConfig {
        gift_core::http::ApiConfig {
            outbox: gift_core::service::OutboxTiming {
                publish_grace: Duration::from_millis(self.publish_grace_ms),
                stale_after: Duration::from_secs(outbox.stale_queued_seconds),
            },
            max_body_bytes: self.max_body_bytes,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Probability (0.0–1.0) that a pseudo-send fails.
    #[arg(long, env = "SEND_FAILURE_RATE", default_value_t = defaults::SEND_FAILURE_RATE, value_parser = parse_rate)]
    pub send_failure_rate: f64,
    /// Messages per receive (1–10).
    #[arg(long, env = "WORKER_BATCH_SIZE", default_value_t = defaults::WORKER_BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub worker_batch_size: u32,
    /// Receives gathered into one batch while each comes back full (1–3): a backlog is then
    /// loaded and recorded this many receives' messages per statement.
    #[arg(long, env = "WORKER_RECEIVES_PER_BATCH", default_value_t = defaults::WORKER_RECEIVES_PER_BATCH, value_parser = clap::value_parser!(u32).range(1..=3))]
    pub worker_receives_per_batch: u32,
    /// Received batches handled at once (1–10); keep it below DB_POOL_MAX, whose last
    /// connection is the relay's.
    #[arg(long, env = "WORKER_BATCHES_IN_HAND", default_value_t = defaults::WORKER_BATCHES_IN_HAND, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub worker_batches_in_hand: u32,
    /// Long-poll wait per receive (0–20 seconds).
    #[arg(long, env = "WORKER_WAIT_SECONDS", default_value_t = defaults::WORKER_WAIT_SECONDS, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub worker_wait_seconds: u64,
    /// How long a failed message stays hidden before its next attempt (seconds).
    #[arg(long, env = "RETRY_BACKOFF_SECONDS", default_value_t = defaults::RETRY_BACKOFF_SECONDS)]
    pub retry_backoff_seconds: u64,
    /// The receive on which a failure is final; must equal the queue's maxReceiveCount.
    #[arg(long, env = "MAX_RECEIVES", default_value_t = defaults::MAX_RECEIVES, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_receives: u32,
    /// Pause between outbox relay passes (milliseconds).
    #[arg(long, env = "RELAY_INTERVAL_MS", default_value_t = defaults::RELAY_INTERVAL_MS)]
    pub relay_interval_ms: u64,
    /// The queue's visibility timeout (seconds): how long a received message stays hidden.
    /// The worker renews it while a pseudo-send runs; `gift-local` configures its embedded
    /// queue with it; on AWS it must equal the SQS queue's setting.
    #[arg(long, env = "VISIBILITY_TIMEOUT_SECONDS", default_value_t = defaults::VISIBILITY_TIMEOUT_SECONDS, value_parser = clap::value_parser!(u64).range(1..=43_200))]
    pub visibility_timeout_seconds: u64,
}

/// The outbox's stale deadline: the API sets it after its own publish of a send's message,
/// the worker's relay after each of its publishes.
#[derive(Debug, Clone, Args)]
pub struct OutboxArgs {
    /// A gift still QUEUED this long after its message's last publish is assumed to have lost
    /// the message, which the relay publishes again (seconds). It must exceed the retry
    /// window (MAX_RECEIVES × (visibility timeout + backoff)), which the worker checks, and
    /// be at most 7 days, which both check; the API must be given the worker's value.
    #[arg(long, env = "STALE_QUEUED_SECONDS", default_value_t = defaults::STALE_QUEUED_SECONDS, value_parser = clap::value_parser!(u64).range(1..=STALE_QUEUED_MAX_SECONDS))]
    pub stale_queued_seconds: u64,
}

/// The longest `STALE_QUEUED_SECONDS` accepted.
const STALE_QUEUED_MAX_SECONDS: u64 = 7 * 24 * 3600;

impl WorkerArgs {
    pub fn worker_config(&self) -> gift_core::worker::WorkerConfig {
        gift_core::worker::WorkerConfig {
            batch_size: self.worker_batch_size,
            receives_per_batch: self.worker_receives_per_batch,
            batches_in_hand: self.worker_batches_in_hand,
            wait: Duration::from_secs(self.worker_wait_seconds),
            error_pause: Duration::from_secs(1),
            retry: gift_core::service::RetryPolicy {
                max_receives: self.max_receives,
                backoff: Duration::from_secs(self.retry_backoff_seconds),
            },
            visibility_timeout: Duration::from_secs(self.visibility_timeout_seconds),
        }
    }

    /// The relay's settings; refuses a `STALE_QUEUED_SECONDS` that would publish again the
    /// messages of gifts still being retried (duplicates for healthy sends) or never at all.
    pub fn relay_config(&self, outbox: &OutboxArgs) -> Result<gift_core::relay::RelayConfig, String> {
        let retry_window =
            u64::from(self.max_receives).saturating_mul(self.visibility_timeout_seconds + self.retry_backoff_seconds);
        let stale = outbox.stale_queued_seconds;
        if stale <= retry_window || stale > STALE_QUEUED_MAX_SECONDS {
            return Err(format!(
                "STALE_QUEUED_SECONDS={stale} must exceed the retry window MAX_RECEIVES × (VISIBILITY_TIMEOUT_SECONDS + RETRY_BACKOFF_SECONDS) = {retry_window} s and be at most {STALE_QUEUED_MAX_SECONDS} s"
            ));
        }
        Ok(gift_core::relay::RelayConfig {
            interval: Duration::from_millis(self.relay_interval_ms),
            batch: 100,
            claim: gift_core::relay::RelayConfig::default().claim,
            stale_after: Duration::from_secs(stale),
        })
    }
}

/// The local all-in-one service.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "gift-local",
    version = crate::VERSION.as_str(),
    about = "The gift service in one process on an embedded database: no PostgreSQL, no AWS."
)]
pub struct LocalConfig {
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub outbox: OutboxArgs,
    /// The embedded database file (store and queue); created if missing.
    #[arg(long, env = "DATA_FILE", default_value = "gift-data.sqlite")]
    pub data_file: PathBuf,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct WithRuntime {
        #[command(flatten)]
        runtime: RuntimeArgs,
    }

    fn workers(args: &[&str]) -> usize {
        let parsed = WithRuntime::try_parse_from(std::iter::once("test").chain(args.iter().copied())).unwrap();
        parsed.runtime.build().expect("the runtime starts").metrics().num_workers()
    }

    #[test]
    fn tokio_worker_threads_sets_the_runtime_threads() {
        assert_eq!(workers(&["--tokio-worker-threads", "1"]), 1);
        assert_eq!(workers(&["--tokio-worker-threads", "3"]), 3);
    }

    #[test]
    fn zero_runtime_threads_is_refused_naming_the_variable() {
        let err = WithRuntime::try_parse_from(["test", "--tokio-worker-threads", "0"]).unwrap_err().to_string();
        assert!(err.contains("TOKIO_WORKER_THREADS"), "{err}");
    }

    #[derive(Debug, Parser)]
    struct WithWorker {
        #[command(flatten)]
        worker: WorkerArgs,
        #[command(flatten)]
        outbox: OutboxArgs,
    }

    fn relay(args: &[&str]) -> Result<gift_core::relay::RelayConfig, String> {
        let parsed = WithWorker::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        parsed.worker.relay_config(&parsed.outbox)
    }

    #[test]
    fn stale_queued_seconds_outside_its_range_is_refused_with_the_reason() {
        assert_eq!(relay(&[]).unwrap().stale_after, Duration::from_secs(900));
        for bad in ["0", "175", "604801", "18446744073709551615"] {
            let err = relay(&["--stale-queued-seconds", bad]).unwrap_err();
            assert!(err.contains("STALE_QUEUED_SECONDS"), "{bad}: {err}");
        }
        assert!(relay(&["--stale-queued-seconds", "175"]).unwrap_err().contains("retry window"));
        assert!(relay(&["--stale-queued-seconds", "176"]).is_ok());
        // The window follows the other settings: 5 × (60 + 5) = 325.
        assert!(relay(&["--stale-queued-seconds", "300", "--visibility-timeout-seconds", "60"]).is_err());
    }
}
