//! The application's database role: it logs in, reads and writes the tables, and can do
//! nothing else — no CREATE anywhere, owns nothing, no role attributes. The migrating user
//! (RDS's master user) creates it and keeps it in that shape; the services then connect as
//! it, so a bug or an injection in the service cannot change the schema.
//!
//! Utility statements (`CREATE ROLE`, `GRANT`) take no bind parameters, so each is built by
//! the server: `format('%I', name)` quotes the name as an identifier and `%L` the password
//! verifier as a literal, and the client runs the text the server built.

use std::fmt;

use gift_core::ports::Env;
use gift_core::StoreError;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::scram::{self, Unpreparable};
use super::{PgAdmin, Write};
use crate::rt::SystemEnv;
use crate::sql::store_error;

/// The role to ensure. The password is only needed to create the role or to change it.
#[derive(Clone)]
pub struct AppRole {
    pub name: String,
    pub password: Option<String>,
}

impl fmt::Debug for AppRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = self.password.as_ref().map(|_| "<hidden>");
        f.debug_struct("AppRole").field("name", &self.name).field("password", &password).finish()
    }
}

/// What ensuring the role changed (or, dry, would change); the grants are re-applied on
/// every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleChange {
    pub created: bool,
    pub password_set: bool,
}

/// Why the role could not be ensured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleError {
    /// The role does not exist and no password was given to create it with.
    PasswordRequired(String),
    /// SASLprep refuses the password, so the application could not log in with it.
    PasswordUnusable,
    /// The application role would be the migrating user itself.
    IsMigrator(String),
    /// After the grants the role still can more than read and write data.
    TooPowerful {
        role: String,
        because: Vec<&'static str>,
    },
    Store(StoreError),
}

impl fmt::Display for RoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleError::PasswordRequired(role) => {
                write!(f, "role {role:?} does not exist: set APP_DB_PASSWORD to create it")
            }
            RoleError::PasswordUnusable => f.write_str(
                "APP_DB_PASSWORD has characters SASLprep refuses (control characters, unassigned code points)",
            ),
            RoleError::IsMigrator(role) => write!(
                f,
                "APP_DB_USER {role:?} is the user running the migration; the application needs a role of its own"
            ),
            RoleError::TooPowerful { role, because } => {
                write!(f, "role {role:?} is not data-only: {}", because.join(", "))
            }
            RoleError::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RoleError {}

impl From<sqlx::Error> for RoleError {
    fn from(e: sqlx::Error) -> Self {
        RoleError::Store(store_error(e))
    }
}

/// Grants, revocations and default privileges, each a `format()` template whose every `%I`
/// is the role's name (`%1$I`). Default privileges cover the tables and sequences later
/// migrations create as the migrating user.
const PRIVILEGES: [&str; 9] = [
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    "REVOKE CREATE ON SCHEMA public FROM %1$I",
    "GRANT USAGE ON SCHEMA public TO %1$I",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %1$I",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %1$I",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %1$I",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO %1$I",
    // The migrations' ledger is not data: a role that could rewrite it could make the next
    // migration run twice or not at all.
    "REVOKE INSERT, UPDATE, DELETE ON TABLE public._sqlx_migrations FROM %1$I",
    "GRANT CONNECT ON DATABASE %2$I TO %1$I",
];

impl PgAdmin<'_> {
    /// Creates `role` if missing, sets its password when one is given, grants it the data
    /// and nothing more, and checks it ended up that way: all in one transaction, so a
    /// failure leaves the role as it was. Safe to run again. Run after the migrations (the
    /// grants cover the tables that exist, and the ledger's revoke needs the ledger).
    pub async fn ensure_app_role(&self, role: &AppRole, write: Write) -> Result<RoleChange, RoleError> {
        let salt = SystemEnv.random_u128().to_le_bytes();
        let verifier = match &role.password {
            Some(p) => Some(scram::verifier(p, &salt).map_err(|Unpreparable| RoleError::PasswordUnusable)?),
            None => None,
        };
        let name = role.name.clone();
        self.pool
            .run(move |c| Box::pin(async move { Ok(ensure(c, &name, verifier.as_deref(), write).await) }))
            .await
            .map_err(RoleError::from)?
    }
}

async fn ensure(
    c: &mut PgConnection,
    name: &str,
    verifier: Option<&str>,
    write: Write,
) -> Result<RoleChange, RoleError> {
    let mut tx = c.begin().await?;
    let (me, exists): (String, bool) =
        sqlx::query_as("SELECT current_user::text, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
    if me == name {
        return Err(RoleError::IsMigrator(name.to_owned()));
    }
    let change = RoleChange { created: !exists, password_set: verifier.is_some() };
    let login = match (exists, verifier) {
        (false, None) => return Err(RoleError::PasswordRequired(name.to_owned())),
        (false, Some(v)) => Some(("CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L", v)),
        (true, Some(v)) => Some(("ALTER ROLE %I LOGIN PASSWORD %L", v)),
        (true, None) => None,
    };
    if write == Write::DryRun {
        tx.rollback().await?;
        return Ok(change);
    }
    if let Some((template, verifier)) = login {
        let statement: String = sqlx::query_scalar("SELECT format($1, $2, $3)")
            .bind(template)
            .bind(name)
            .bind(verifier)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(statement)).execute(&mut *tx).await?;
    }
    for template in PRIVILEGES {
        let statement: String = sqlx::query_scalar("SELECT format($1, $2, current_database())")
            .bind(template)
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(statement)).execute(&mut *tx).await?;
    }
    let because = excess_powers(&mut tx, name).await?;
    if !because.is_empty() {
        return Err(RoleError::TooPowerful { role: name.to_owned(), because });
    }
    tx.commit().await?;
    Ok(change)
}

/// What `name` can do beyond reading and writing data, as the server sees it (attributes,
/// privileges held directly or through other roles, ownership in this database).
async fn excess_powers(c: &mut PgConnection, name: &str) -> Result<Vec<&'static str>, sqlx::Error> {
    let (superuser, create_db, create_role, create_schema, create_in_public, owns): (
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
    ) = sqlx::query_as(
        "SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, \
                    has_database_privilege(r.oid, current_database(), 'CREATE'), \
                    has_schema_privilege(r.oid, 'public', 'CREATE'), \
                    EXISTS (SELECT 1 FROM pg_class WHERE relowner = r.oid) \
                    OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspowner = r.oid) \
             FROM pg_roles r WHERE r.rolname = $1",
    )
    .bind(name)
    .fetch_one(c)
    .await?;
    Ok([
        (superuser, "superuser"),
        (create_db, "may create databases"),
        (create_role, "may create roles"),
        (create_schema, "may create schemas in this database"),
        (create_in_public, "may create tables in schema public"),
        (owns, "owns tables or schemas (REASSIGN OWNED BY it to the migrating user)"),
    ]
    .into_iter()
    .filter_map(|(has, what)| has.then_some(what))
    .collect())
}
