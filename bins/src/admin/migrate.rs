//! `migrate`: the embedded migrations, then the application's data-only role. Runs as the
//! database's master user, as a one-off task before the services start on a new schema.

use std::fmt;
use std::time::Duration;

use gift_runtime::postgres::admin::{AppRole, RoleChange, Write};
use gift_runtime::postgres::{PgStore, PoolSettings};
use serde::Serialize;

use super::config::MigrateArgs;
use super::report::{Finished, Report};
use super::AdminError;
use crate::config::DbArgs;

/// A migration may rewrite or index a large table, so a statement gets this long...
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// ...but waits at most this long for a lock: a migration stuck behind traffic fails (and
/// is run again) instead of stalling every query queued behind its lock request.
const LOCK_TIMEOUT: &str = "10s";

#[derive(Serialize)]
struct Migrated {
    dry_run: bool,
    /// Applied (or, dry, to apply), oldest first.
    migrations: Vec<Migration>,
    role: String,
    role_created: bool,
    password_set: bool,
}

#[derive(Serialize)]
struct Migration {
    version: i64,
    description: &'static str,
}

impl fmt::Display for Migrated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (would, verb) = if self.dry_run { ("would ", "apply") } else { ("", "applied") };
        if self.migrations.is_empty() {
            writeln!(f, "migrations: none pending")?;
        }
        for m in &self.migrations {
            writeln!(f, "migration {} {}: {would}{verb}", m.version, m.description)?;
        }
        let created = if self.role_created { format!("{would}created") } else { "exists".into() };
        let password = if self.password_set { format!(", password {would}set") } else { String::new() };
        let grants = if self.dry_run { "would be granted" } else { "granted, and nothing else" };
        writeln!(f, "role {}: {created}{password}; data privileges {grants}", self.role)
    }
}

impl Report for Migrated {}

pub async fn migrate(db: &DbArgs, args: &MigrateArgs) -> Result<Finished, AdminError> {
    let options = db
        .connect_options()
        .map_err(AdminError::Config)?
        .application_name("gift-admin")
        .options([("lock_timeout", LOCK_TIMEOUT)]);
    let store = PgStore::new(options, PoolSettings { statement_timeout: STATEMENT_TIMEOUT, ..db.pool_settings() });
    let write = super::write(args.dry_run);
    let migrations: Vec<Migration> = store
        .admin()
        .pending_migrations()
        .await?
        .into_iter()
        .map(|(version, description)| Migration { version, description })
        .collect();
    if write == Write::Apply {
        store.migrate().await?;
    }
    let role = AppRole { name: args.app_db_user.clone(), password: args.app_db_password.clone() };
    let RoleChange { created, password_set } = store.admin().ensure_app_role(&role, write).await?;
    let versions: Vec<i64> = migrations.iter().map(|m| m.version).collect();
    let event = if args.dry_run { "MIGRATE_PLANNED" } else { "MIGRATED" };
    tracing::info!(
        event, applied = ?versions, role = role.name, role_created = created, password_set, dry_run = args.dry_run,
        "schema migrated and the application role ensured"
    );
    Ok(Finished::of(&Migrated {
        dry_run: args.dry_run,
        migrations,
        role: role.name,
        role_created: created,
        password_set,
    }))
}
