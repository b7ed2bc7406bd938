//! gift-admin's command line: the worker's database and queue settings (the same clap
//! groups, so the same variables), the subcommands, and `SQS_DLQ_URL`, `APP_DB_USER`,
//! `APP_DB_PASSWORD`, which only gift-admin reads.

use clap::{Args, Parser, Subcommand};
use gift_core::domain::GiftId;

use crate::config::{DbArgs, LogArgs, SqsArgs};

/// The operator tool.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gift-admin",
    version = crate::VERSION.as_str(),
    about = "Operator tool for the gift service: inspect gifts, redrive the dead-letter queue, \
             retry FAILED gifts, migrate the database.",
    long_about = "Operator tool for the gift service: inspect gifts, redrive the dead-letter queue, \
                  retry FAILED gifts, migrate the database.\n\n\
                  Run it with the worker's environment. Only `migrate` applies migrations.",
    // Shared with the services, where it decides whether a start migrates; here only
    // `migrate` does, so the setting is not offered.
    mut_arg("run_migrations", |a| a.hide(true))
)]
pub struct AdminConfig {
    #[command(subcommand)]
    pub command: AdminCommand,
    /// Print the report as one line of JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// A gift with its send requests, its outbox rows and where to find its log lines.
    Show {
        #[arg(value_parser = parse_gift_id)]
        gift_id: GiftId,
    },
    /// QUEUED gifts not updated for a while (the relay publishes a lost message again
    /// STALE_QUEUED_SECONDS after its last publish).
    ListQueued {
        #[arg(long)]
        older_than_minutes: u32,
        #[command(flatten)]
        list: ListArgs,
    },
    /// FAILED gifts with their last error, the most recent first.
    ListFailed {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Takes messages off the dead-letter queue and decides each by its gift's status:
    /// QUEUED is re-armed (a new message through the outbox), SENT or FAILED is dropped,
    /// anything else is left in the queue and reported.
    RedriveDlq(RedriveArgs),
    /// FAILED → QUEUED with a new message (the admin transition): for gifts whose cause of
    /// failure is gone. Refuses gifts that are not FAILED.
    Retry(RetryArgs),
    /// Applies the embedded migrations, then ensures the application's data-only role.
    /// Runs as the database's master user.
    Migrate(MigrateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Gifts listed at most.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

#[derive(Debug, Clone, Args)]
pub struct RedriveArgs {
    /// The send queue: the dead-letter queue must be another one.
    #[command(flatten)]
    pub sqs: SqsArgs,
    /// The dead-letter queue of the send queue.
    #[arg(long, env = "SQS_DLQ_URL")]
    pub sqs_dlq_url: String,
    /// Messages handled at most.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max: u32,
    /// Decide and report, but re-arm nothing and delete nothing; every message is made
    /// visible again.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    #[arg(required = true, value_parser = parse_gift_id)]
    pub gift_ids: Vec<GiftId>,
    /// Check each gift and report, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The role the services connect as: it reads and writes data and can do nothing else.
    #[arg(long, env = "APP_DB_USER", default_value = "gift_app", value_parser = parse_role_name)]
    pub app_db_user: String,
    /// The role's password; needed to create the role or to change its password.
    #[arg(long, env = "APP_DB_PASSWORD", hide_env_values = true)]
    pub app_db_password: Option<String>,
    /// List the migrations to apply and the role changes, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_gift_id(s: &str) -> Result<GiftId, String> {
    GiftId::parse(s).map_err(|e| e.0)
}

/// PostgreSQL keeps 63 bytes of a name and would silently cut a longer one.
fn parse_role_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 63 || s.contains('\0') {
        return Err("a role name is 1 to 63 bytes without NUL".into());
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<AdminConfig, String> {
        AdminConfig::try_parse_from(std::iter::once("gift-admin").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_bad_gift_id_is_refused_by_name() {
        let err = parse(&["show", "not-a-uuid"]).unwrap_err();
        assert!(err.contains("not-a-uuid") && err.contains("gift_id must be a UUID"), "{err}");
        let err = parse(&["retry", "0f6b6e4e-8c1c-4b7e-9d55-3d1f1c1a2b3c", "nope"]).unwrap_err();
        assert!(err.contains("nope"), "{err}");
        assert!(parse(&["retry"]).is_err(), "retry needs a gift");
    }

    #[test]
    fn an_over_long_role_name_is_refused() {
        let long = "r".repeat(64);
        assert!(parse(&["migrate", "--app-db-user", &long]).unwrap_err().contains("63 bytes"));
        assert!(parse(&["migrate", "--app-db-user", &"r".repeat(63)]).is_ok());
    }
}
