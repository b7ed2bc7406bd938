//! The ECS services' configuration: PostgreSQL, SQS, and the two services' top-level
//! structs. Behind the `aws` feature, so the local build links neither driver.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use gift_core::defaults;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::{HttpArgs, LogArgs, MetricsArgs, OutboxArgs, RuntimeArgs, TapArgs, WorkerArgs};

/// `DATABASE_URL`, or the split `DB_*` variables that Terraform sets. URL first.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    #[arg(long, env = "DB_HOST")]
    pub db_host: Option<String>,
    #[arg(long, env = "DB_PORT", default_value_t = 5432)]
    pub db_port: u16,
    #[arg(long, env = "DB_NAME")]
    pub db_name: Option<String>,
    #[arg(long, env = "DB_USER")]
    pub db_user: Option<String>,
    #[arg(long, env = "DB_PASSWORD", hide_env_values = true)]
    pub db_password: Option<String>,
    /// disable | prefer | require | verify-ca | verify-full (applies to both forms unless the URL sets sslmode).
    #[arg(long, env = "DB_SSLMODE", default_value = "prefer")]
    pub db_sslmode: String,
    #[arg(long, env = "DB_POOL_MAX", default_value_t = defaults::DB_POOL_MAX)]
    pub db_pool_max: u32,
    /// How long a request waits for a pooled connection before 503 (milliseconds).
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT_MS", default_value_t = defaults::DB_ACQUIRE_TIMEOUT_MS)]
    pub db_acquire_timeout_ms: u64,
    /// Apply database migrations at start (under an advisory lock).
    #[arg(long, env = "RUN_MIGRATIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub run_migrations: bool,
}

impl DbArgs {
    /// Builds connection options; the error names the variables to set.
    pub fn connect_options(&self) -> Result<PgConnectOptions, String> {
        let ssl: PgSslMode = self.db_sslmode.parse().map_err(|_| {
            format!(
                "DB_SSLMODE: {:?} is not one of disable, allow, prefer, require, verify-ca, verify-full",
                self.db_sslmode
            )
        })?;
        if let Some(url) = self.database_url.as_deref().filter(|u| !u.is_empty()) {
            let options: PgConnectOptions =
                url.parse().map_err(|e| format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))?;
            return Ok(if url.contains("sslmode=") { options } else { options.ssl_mode(ssl) });
        }
        let missing: Vec<&str> = [("DB_HOST", &self.db_host), ("DB_NAME", &self.db_name), ("DB_USER", &self.db_user)]
            .into_iter()
            .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
            .map(|(name, _)| name)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "database not configured: set DATABASE_URL, or DB_HOST, DB_NAME, DB_USER and DB_PASSWORD (missing: {})",
                missing.join(", ")
            ));
        }
        let mut options = PgConnectOptions::new()
            .host(self.db_host.as_deref().unwrap_or_default())
            .port(self.db_port)
            .database(self.db_name.as_deref().unwrap_or_default())
            .username(self.db_user.as_deref().unwrap_or_default())
            .ssl_mode(ssl);
        if let Some(password) = &self.db_password {
            options = options.password(password);
        }
        Ok(options)
    }

    pub fn pool_settings(&self) -> gift_runtime::postgres::PoolSettings {
        gift_runtime::postgres::PoolSettings {
            max_connections: self.db_pool_max,
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SqsArgs {
    /// The queue's URL. Region and credentials follow the AWS SDK's standard chain
    /// (`AWS_REGION`, task role); `AWS_ENDPOINT_URL_SQS` points at an emulator.
    #[arg(long, env = "SQS_QUEUE_URL")]
    pub sqs_queue_url: String,
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
}

/// The ECS API service.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "gift-api", version = crate::VERSION.as_str(), about = "The gift HTTP API (PostgreSQL + SQS).")]
pub struct ApiServiceConfig {
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub outbox: OutboxArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub sqs: SqsArgs,
    #[command(flatten)]
    pub tap: TapArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// The ECS worker service (worker loop + outbox relay).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "gift-worker",
    version = crate::VERSION.as_str(),
    about = "The gift worker: consumes SQS, pseudo-sends, records outcomes; also relays the outbox."
)]
pub struct WorkerServiceConfig {
    #[command(subcommand)]
    pub command: Option<WorkerCommand>,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub outbox: OutboxArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub sqs: SqsArgs,
    /// File the worker loop touches each turn (and, with `.relay` appended, the relay each
    /// pass); `gift-worker healthcheck` wants both fresh.
    #[arg(long, env = "HEARTBEAT_FILE", default_value = "/tmp/gift-worker.heartbeat", global = true)]
    pub heartbeat_file: PathBuf,
    #[command(flatten)]
    pub tap: TapArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl WorkerServiceConfig {
    /// Settings that work but cost: with as many batches in hand as pooled connections,
    /// batches wait for one another's loads and records, and the relay for all of them.
    pub fn pool_advice(&self) -> Option<String> {
        let (in_hand, pool) = (self.worker.worker_batches_in_hand, self.db.db_pool_max);
        (in_hand >= pool).then(|| {
            format!(
                "WORKER_BATCHES_IN_HAND={in_hand} is not below DB_POOL_MAX={pool}: each batch takes a connection to load and to record, and the relay needs one more; batches and relay passes wait up to DB_ACQUIRE_TIMEOUT_MS for one"
            )
        })
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum WorkerCommand {
    /// Exit 0 if the worker loop and the relay both turned within the last
    /// `--max-age-seconds`, else 1.
    Healthcheck {
        #[arg(long, default_value_t = 90)]
        max_age_seconds: u64,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn advice(args: &[&str]) -> Option<String> {
        let base = ["gift-worker", "--sqs-queue-url", "http://queue"];
        WorkerServiceConfig::try_parse_from(base.iter().chain(args)).unwrap().pool_advice()
    }

    #[test]
    fn batches_in_hand_at_or_above_the_pool_get_advice_naming_both_variables() {
        assert_eq!(advice(&[]), None, "the defaults leave the relay a connection");
        assert_eq!(advice(&["--worker-batches-in-hand", "4", "--db-pool-max", "5"]), None);
        let said = advice(&["--worker-batches-in-hand", "5", "--db-pool-max", "5"]).expect("advice");
        assert!(said.contains("WORKER_BATCHES_IN_HAND=5") && said.contains("DB_POOL_MAX=5"), "{said}");
        assert!(advice(&["--worker-batches-in-hand", "8", "--db-pool-max", "4"]).is_some());
    }
}
