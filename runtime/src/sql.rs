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
