//! The production store on PostgreSQL (sqlx over a deadpool pool, see [`pool`]). A send is
//! one statement that locks the gift row (`SELECT … FOR UPDATE` in a CTE) and queues it;
//! the worker's updates are conditional on `status = 'QUEUED'`. Creates ([`inserts`]) and
//! sends ([`sends`]) that wait for a connection share statements ([`shared`]); the relay's
//! claims are [`claims`], the records of published outbox rows [`outbox`].

pub mod admin;
mod claims;
mod gauges;
mod inserts;
mod outbox;
mod pool;
mod sends;
mod shared;

use std::time::Duration;

use async_trait::async_trait;
use gift_core::domain::{Amount, Gift, GiftCode, GiftId, IdempotencyKey, Message, Status, Timestamp, TraceParent};
use gift_core::ports::{OutboxEntry, SendCommand, SendDecision, Store};
use gift_core::{defaults, StoreError};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Column, Row};
use uuid::Uuid;

use crate::sql::store_error;
use inserts::InsertGifts;
use outbox::OutboxDeferrals;
use pool::Pool;
use sends::RequestSends;
use shared::Shared;

/// Pool sizing and waiting; a full pool answers 503 after `acquire_timeout` instead of queueing forever.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Server-side cap on any one statement, so a stuck query cannot hold a connection.
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: defaults::DB_POOL_MAX,
            acquire_timeout: Duration::from_millis(defaults::DB_ACQUIRE_TIMEOUT_MS),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// Planner settings of every connection. Each statement the store runs (and each
/// foreign-key check its writes fire) finds its rows by key through an index; a connection
/// plans them once and keeps the plans until the table is next analyzed. Planned while a
/// table is tiny — a new deployment, where autovacuum analyzes the tables at some 50 rows —
/// a sequential scan or a hash join over the table is the cheaper plan, and it stays the plan
/// while the table grows to millions of rows, read whole on every call, until the next
/// analyze (on the benchmark's empty database, 14,000 rows per create+send, and a third of
/// the rate). With these, the plan is an index lookup at every size; the statements have no
/// other plan they need (a test in tests/conformance_postgres.rs holds them to it).
const KEY_LOOKUP_PLANS: [(&str, &str); 3] =
    [("enable_seqscan", "off"), ("enable_hashjoin", "off"), ("enable_mergejoin", "off")];

pub struct PgStore {
    pool: Pool,
    inserts: Shared<InsertGifts>,
    sends: Shared<RequestSends>,
    outbox: OutboxDeferrals,
}

impl PgStore {
    /// Builds the pool lazily: the process starts even while the database is down, and
    /// `/readyz` reports it.
    pub fn new(options: PgConnectOptions, settings: PoolSettings) -> Self {
        let options = options
            .options([("statement_timeout", format!("{}", settings.statement_timeout.as_millis()))])
            .options(KEY_LOOKUP_PLANS);
        let pool = Pool::new(options, settings.max_connections as usize, settings.acquire_timeout);
        Self {
            inserts: Shared::new(pool.clone()),
            sends: Shared::new(pool.clone()),
            outbox: OutboxDeferrals::new(pool.clone()),
            pool,
        }
    }

    /// Applies the embedded migrations (`sql::POSTGRES_MIGRATIONS`; sqlx holds an advisory lock, so concurrent starts are safe).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let failed = |e: String| StoreError::Unavailable(format!("migration failed: {e}"));
        let mut conn = self.pool.connection().await.map_err(|e| failed(e.to_string()))?;
        crate::sql::migrator(crate::sql::POSTGRES_MIGRATIONS).run(&mut *conn).await.map_err(|e| failed(e.to_string()))
    }
}

impl PgStore {
    /// QUEUED → `status` and the gift's outbox row deleted, conditionally: false when the
    /// gift was no longer QUEUED.
    async fn settle_queued(
        &self,
        id: GiftId,
        status: Status,
        error: Option<String>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.pool
            .run(move |c| {
                Box::pin(async move {
                    sqlx::query_scalar(
                        "WITH settled AS (UPDATE gifts SET status = $2, last_error = COALESCE($3, last_error), updated_at = $4 \
                                          WHERE id = $1 AND status = 'QUEUED' COLLATE \"C\" RETURNING id), \
                         gone AS (DELETE FROM outbox o USING settled WHERE o.gift_id = settled.id) \
                         SELECT count(*) FROM settled",
                    )
                    .bind(id.as_uuid())
                    .bind(status.as_str())
                    .bind(error)
                    .bind(now)
                    .fetch_one(c)
                    .await
                })
            })
            .await
            .map(|settled: i64| settled == 1)
            .map_err(store_error)
    }
}

/// A query for the gift columns [`gift_from_row`] reads, in the order it reads them by
/// position ([`GIFT_COLUMNS`]), with the given condition.
macro_rules! select_gifts_where {
    ($condition:literal) => {
        concat!(
            "SELECT id, code, amount, message, status, last_error, created_at, updated_at FROM gifts WHERE ",
            $condition
        )
    };
}

pub(crate) use select_gifts_where;

/// The columns of [`select_gifts_where`], in order. Two pairs share a type (`message` and
/// `last_error`, `created_at` and `updated_at`), so a swap would decode without an error;
/// debug builds, which run the conformance suites, check the names of every row read.
const GIFT_COLUMNS: [&str; 8] = ["id", "code", "amount", "message", "status", "last_error", "created_at", "updated_at"];

const GIFT_BY_ID: &str = select_gifts_where!("id = $1");
const GIFTS_BY_IDS: &str = select_gifts_where!("id = ANY($1)");

/// Reads a row of [`select_gifts_where`] by position: a column's name costs a lookup per
/// field of every row, and the statement fixes the order.
fn gift_from_row(row: &PgRow) -> Result<Gift, StoreError> {
    debug_assert!(row.columns().iter().map(|c| c.name()).eq(GIFT_COLUMNS), "a gift row's columns moved");
    let bad = |e: gift_core::domain::ParseError| StoreError::Other(format!("bad row: {e}"));
    let get = |e: sqlx::Error| StoreError::Other(format!("bad row: {e}"));
    Ok(Gift {
        id: GiftId::from(row.try_get::<Uuid, _>(0).map_err(get)?),
        code: GiftCode::parse(row.try_get(1).map_err(get)?).map_err(bad)?,
        amount: Amount::try_from(row.try_get::<i64, _>(2).map_err(get)?).map_err(bad)?,
        message: row.try_get::<Option<String>, _>(3).map_err(get)?.map(Message::parse).transpose().map_err(bad)?,
        status: Status::parse(row.try_get(4).map_err(get)?).map_err(bad)?,
        last_error: row.try_get(5).map_err(get)?,
        created_at: row.try_get(6).map_err(get)?,
        updated_at: row.try_get(7).map_err(get)?,
    })
}

#[async_trait]
impl Store for PgStore {
    async fn insert_gift(&self, gift: &Gift) -> Result<(), StoreError> {
        self.inserts.call(gift.clone()).await
    }

    async fn get_gift(&self, id: GiftId) -> Result<Option<Gift>, StoreError> {
        let row = self
            .pool
            .run(move |c| Box::pin(async move { sqlx::query(GIFT_BY_ID).bind(id.as_uuid()).fetch_optional(c).await }))
            .await
            .map_err(store_error)?;
        row.as_ref().map(gift_from_row).transpose()
    }

    async fn get_gifts(&self, ids: &[GiftId]) -> Result<Vec<Option<Gift>>, StoreError> {
        let wanted: Vec<Uuid> = ids.iter().map(GiftId::as_uuid).collect();
        let rows = self
            .pool
            .run(move |c| Box::pin(async move { sqlx::query(GIFTS_BY_IDS).bind(wanted).fetch_all(c).await }))
            .await
            .map_err(store_error)?;
        let found = rows.iter().map(gift_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(ids.iter().map(|id| found.iter().find(|g| g.id == *id).cloned()).collect())
    }

    async fn mark_sent_all(&self, ids: &[GiftId], now: Timestamp) -> Result<Vec<bool>, StoreError> {
        let wanted: Vec<Uuid> = ids.iter().map(GiftId::as_uuid).collect();
        let mut won: Vec<Uuid> = self
            .pool
            .run(move |c| {
                Box::pin(async move {
                    // One statement, one commit for the batch; each row is still updated only
                    // if QUEUED, and RETURNING says which were, whose outbox rows go. The rows
                    // are locked in id order first, the order a batch of sends locks them in,
                    // so the two wait for each other instead of deadlocking.
                    sqlx::query_scalar(
                        "WITH locked AS (SELECT id FROM gifts WHERE id = ANY($1) AND status = 'QUEUED' COLLATE \"C\" \
                                         ORDER BY id FOR UPDATE), \
                         sent AS (UPDATE gifts g SET status = 'SENT', updated_at = $2 FROM locked \
                                  WHERE g.id = locked.id AND g.status = 'QUEUED' COLLATE \"C\" RETURNING g.id), \
                         gone AS (DELETE FROM outbox o USING sent WHERE o.gift_id = sent.id) \
                         SELECT id FROM sent",
                    )
                    .bind(wanted)
                    .bind(now)
                    .fetch_all(c)
                    .await
                })
            })
            .await
            .map_err(store_error)?;
        // An id listed twice is won by its first place only.
        Ok(ids
            .iter()
            .map(|id| match won.iter().position(|w| *w == id.as_uuid()) {
                Some(at) => {
                    won.swap_remove(at);
                    true
                }
                None => false,
            })
            .collect())
    }

    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        self.sends.call(cmd.clone()).await
    }

    async fn mark_sent(&self, id: GiftId, now: Timestamp) -> Result<bool, StoreError> {
        self.settle_queued(id, Status::Sent, None, now).await
    }

    async fn mark_failed(&self, id: GiftId, error: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.settle_queued(id, Status::Failed, Some(error.to_owned()), now).await
    }

    async fn outbox_claim(&self, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        claims::claim(&self.pool, now, until, limit).await
    }

    async fn outbox_published(&self, entry: &OutboxEntry, due_again: Timestamp) -> Result<(), StoreError> {
        self.outbox.published(entry.clone(), due_again)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool
            .run(|c| Box::pin(async move { sqlx::query("SELECT 1").execute(c).await }))
            .await
            .map(|_| ())
            .map_err(store_error)
    }
}

fn outbox_from_row(row: &PgRow) -> Result<OutboxEntry, StoreError> {
    let key: String = row.try_get("request_id").map_err(store_error)?;
    Ok(OutboxEntry {
        gift_id: GiftId::from(row.try_get::<Uuid, _>("gift_id").map_err(store_error)?),
        request_id: IdempotencyKey::parse(&key).map_err(|e| StoreError::Other(e.0))?,
        trace: trace_of(row.try_get("traceparent").map_err(store_error)?),
        stale: row.try_get::<i32, _>("publishes").map_err(store_error)? > 0,
    })
}

/// A stored `traceparent`; one that no longer parses is dropped, not an error: the send
/// still goes out, only untraced.
pub(crate) fn trace_of(stored: Option<String>) -> Option<TraceParent> {
    stored.and_then(|t| TraceParent::parse(&t).ok())
}
