//! What the SQL adapters share: translating driver errors into store errors.

use gift_core::StoreError;

/// Connection trouble (the database is down, restarting, out of connections, or the pool
/// waited too long) is `Unavailable` and becomes a 503; anything else is a bug.
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    store_error_of(&e)
}

/// [`store_error`] for an error that is still needed afterwards.
pub(crate) fn store_error_of(e: &sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: 08 connection exception, 28 authentication (a password being
            // rotated), 53 insufficient resources, 57P0x shutdown, 40001/40P01
            // serialization/deadlock, 57014 statement timeout.
            // SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED.
            let transient = code.starts_with("08")
                || code.starts_with("28")
                || code.starts_with("53")
                || code.starts_with("57P0")
                || code == "57014"
                || code == "40001"
                || code == "40P01"
                || code == "5"
                || code == "6";
            if transient {
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::Other(e.to_string())
            }
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// Whether the error is a unique violation of the gift code.
pub(crate) fn is_code_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                && (db.constraint() == Some("gifts_code_key") || db.message().contains("gifts.code"))
        }
        _ => false,
    }
}

/// The embedded schema migrations, listed here rather than found by sqlx's `migrate!`
/// macro: the macro is the only reason to build sqlx's proc-macro crate, which compiles
/// sqlx and its drivers a second time for the host. Each entry is (version, description,
/// SQL) exactly as `migrate!` reads a `VERSION_DESCRIPTION.sql` file, so the checksums
/// recorded in an existing `_sqlx_migrations` table still match; a test holds the list to
/// the directory.
pub(crate) type MigrationFile = (i64, &'static str, &'static str);

#[cfg(feature = "sqlite")]
pub(crate) const SQLITE_MIGRATIONS: &[MigrationFile] = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (2, "outbox trace", include_str!("../migrations/sqlite/0002_outbox_trace.sql")),
    (3, "outbox claim", include_str!("../migrations/sqlite/0003_outbox_claim.sql")),
    (4, "outbox until final", include_str!("../migrations/sqlite/0004_outbox_until_final.sql")),
];

#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_MIGRATIONS: &[MigrationFile] = &[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (2, "outbox trace", include_str!("../migrations/postgres/0002_outbox_trace.sql")),
    (3, "outbox claim", include_str!("../migrations/postgres/0003_outbox_claim.sql")),
    (4, "outbox until final", include_str!("../migrations/postgres/0004_outbox_until_final.sql")),
];

pub(crate) fn migrator(files: &[MigrationFile]) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use sqlx::{AssertSqlSafe, SqlSafeStr};
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// What `migrate!` would embed for `dir`, in the fields that decide whether a database
    /// migrated by it accepts ours.
    fn as_sqlx_reads(dir: &str) -> Vec<(i64, String, Vec<u8>, bool)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut found: Vec<_> = sqlx::migrate::resolve_blocking(&dir)
            .expect("the migrations directory reads")
            .into_iter()
            .map(|(m, _)| (m.version, m.description.into_owned(), m.checksum.into_owned(), m.no_tx))
            .collect();
        found.sort();
        found
    }

    fn as_listed(files: &[MigrationFile]) -> Vec<(i64, String, Vec<u8>, bool)> {
        migrator(files)
            .iter()
            .map(|m| {
                assert_eq!(m.migration_type, sqlx::migrate::MigrationType::Simple);
                (m.version, m.description.to_string(), m.checksum.to_vec(), m.no_tx)
            })
            .collect()
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn the_sqlite_list_is_the_directory() {
        assert_eq!(as_listed(SQLITE_MIGRATIONS), as_sqlx_reads("migrations/sqlite"));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_postgres_list_is_the_directory() {
        assert_eq!(as_listed(POSTGRES_MIGRATIONS), as_sqlx_reads("migrations/postgres"));
    }
}
