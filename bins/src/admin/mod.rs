//! gift-admin, the operator tool: run with the worker's environment, it reads a gift and
//! the lists an on-call operator needs, redrives the dead-letter queue through the state
//! machine, retries FAILED gifts (the one admin transition), and migrates the database.
//!
//! # Layout
//!
//! - [`config`]: the command line (the worker's clap groups plus the admin's own variables).
//! - `show`: `show`, `list-queued`, `list-failed` — reads only.
//! - `retry`: FAILED → QUEUED with a new outbox row, per gift.
//! - `redrive`: the DLQ, message by message, through the [`redrive::Redrive`] decision.
//! - `migrate`: the migrations, then the application's data-only role.
//! - `report`: what each prints (text, or JSON with `--json`) and its exit code.
//!
//! The SQL is in `gift_runtime::postgres::admin`. Every write has `--dry-run`. Log lines go
//! to stdout like the services' (and are written before the report); read-only
//! subcommands log nothing but failures, so their `--json` output is the report alone.

pub mod config;
mod error;
mod migrate;
pub mod redrive;
mod report;
mod retry;
mod show;

use std::process::ExitCode;

use gift_runtime::postgres::admin::Write;
use gift_runtime::postgres::PgStore;

pub use config::{AdminCommand, AdminConfig};
pub use error::AdminError;
use report::Finished;

impl AdminCommand {
    fn name(&self) -> &'static str {
        match self {
            AdminCommand::Show { .. } => "show",
            AdminCommand::ListQueued { .. } => "list-queued",
            AdminCommand::ListFailed { .. } => "list-failed",
            AdminCommand::RedriveDlq(_) => "redrive-dlq",
            AdminCommand::Retry(_) => "retry",
            AdminCommand::Migrate(_) => "migrate",
        }
    }

    /// `Some` for the subcommands that write: whether this run does.
    fn writes(&self) -> Option<Write> {
        match self {
            AdminCommand::Show { .. } | AdminCommand::ListQueued { .. } | AdminCommand::ListFailed { .. } => None,
            AdminCommand::RedriveDlq(a) => Some(write(a.dry_run)),
            AdminCommand::Retry(a) => Some(write(a.dry_run)),
            AdminCommand::Migrate(a) => Some(write(a.dry_run)),
        }
    }
}

/// What `--dry-run` means to the store.
fn write(dry_run: bool) -> Write {
    if dry_run {
        Write::DryRun
    } else {
        Write::Apply
    }
}

/// gift-admin's `main` once its command line is parsed.
pub fn main(config: AdminConfig) -> ExitCode {
    let command = config.command.name();
    let log = match crate::telemetry::init("admin", &config.log.log_level) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("gift-admin: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(write) = config.command.writes() {
        // Who changed what is in the logs: every writing run says so first.
        tracing::info!(
            event = "ADMIN_COMMAND",
            command,
            dry_run = write == Write::DryRun,
            version = env!("CARGO_PKG_VERSION"),
            git_sha = crate::GIT_SHA,
            "gift-admin {command}"
        );
    }
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AdminError::Config(format!("cannot start the runtime: {e}")))
        .and_then(|runtime| runtime.block_on(run(&config)));
    if let Err(e) = &outcome {
        tracing::error!(error_code = e.code(), error_message = %e, command, "gift-admin {command} failed");
    }
    // The log lines first, then the report: the two share stdout.
    drop(log);
    match outcome {
        Ok(Finished { text, json, complete }) => {
            if config.json {
                println!("{json}");
            } else {
                print!("{text}");
            }
            if complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("gift-admin {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: &AdminConfig) -> Result<Finished, AdminError> {
    // An operator tool on the real clock, through the runtime's facade like the services.
    let now = gift_runtime::rt::now_utc();
    match &config.command {
        AdminCommand::Show { gift_id } => show::show(&connect(config)?, *gift_id).await,
        AdminCommand::ListQueued { older_than_minutes, list } => {
            show::list_queued(&connect(config)?, now, *older_than_minutes, list.limit).await
        }
        AdminCommand::ListFailed { list } => show::list_failed(&connect(config)?, list.limit).await,
        AdminCommand::RedriveDlq(args) => redrive::redrive(&connect(config)?, args, now).await,
        AdminCommand::Retry(args) => retry::retry(&connect(config)?, &args.gift_ids, now, write(args.dry_run)).await,
        AdminCommand::Migrate(args) => migrate::migrate(&config.db, args).await,
    }
}

/// The store as every subcommand but `migrate` uses it: the services' settings, named in
/// `pg_stat_activity`, and no migrations.
fn connect(config: &AdminConfig) -> Result<PgStore, AdminError> {
    let options = config.db.connect_options().map_err(AdminError::Config)?.application_name("gift-admin");
    Ok(PgStore::new(options, config.db.pool_settings()))
}
