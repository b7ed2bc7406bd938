//! The send statement of an old isolation bug, run on PostgreSQL: the checker must catch it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use gift_core::domain::{SendAccepted, Status};
use gift_core::ports::{SendCommand, SendDecision, Store};
use gift_core::StoreError;
use gift_runtime::conformance::linearizable::checker::Failure;
use gift_runtime::conformance::linearizable::history::{Answer, Decision, Op, G};
use gift_runtime::conformance::linearizable::{run, shrink};
use gift_runtime::postgres::{PgStore, PoolSettings};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;

use crate::support::wrapped::{Wrap, Wrapped};
use crate::{drop_database, fresh_database, support, CONFIG};

/// PostgreSQL with the send of the workspace skeleton (7d5e3b1), which 97b674f fixed: one
/// transaction whose first statement locks the gift row and, in the same statement, asks
/// with `EXISTS` whether the key was seen. Under READ COMMITTED a statement that waited for
/// the row lock re-reads only the locked row once the holder commits; the subquery keeps
/// the snapshot taken before the wait. So a send of the same key that waited for the one
/// queueing the gift finds it QUEUED and its own request missing: a conflict, where the
/// model replays. Everything else is the real [`PgStore`].
struct OldExistsSend {
    inner: PgStore,
    /// The sends' own pool, on the same database.
    pool: PgPool,
}

impl OldExistsSend {
    /// The old adapter's `request_send`, statement for statement.
    async fn send(pool: PgPool, cmd: SendCommand) -> Result<SendDecision, StoreError> {
        let failed = |e: sqlx::Error| StoreError::Unavailable(e.to_string());
        let mut tx = pool.begin().await.map_err(failed)?;
        // Lock the gift row and learn, in the same round trip, whether this key was seen.
        let row = sqlx::query(
            "SELECT g.status, EXISTS (SELECT 1 FROM send_requests s WHERE s.gift_id = g.id AND s.request_id = $2) AS seen \
             FROM gifts g WHERE g.id = $1 FOR UPDATE OF g",
        )
        .bind(cmd.gift_id.as_uuid())
        .bind(cmd.key.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed)?;
        let Some(row) = row else { return Ok(SendDecision::NotFound) };
        let status = Status::parse(row.try_get("status").map_err(failed)?).map_err(|e| StoreError::Other(e.0))?;
        let seen: bool = row.try_get("seen").map_err(failed)?;
        let accepted = SendAccepted { gift_id: cmd.gift_id, status: Status::Queued, request_id: cmd.key.clone() };
        if seen {
            return Ok(SendDecision::Replay(accepted));
        }
        if status != Status::Created {
            return Ok(SendDecision::Conflict(status));
        }
        sqlx::query(
            "WITH request AS (INSERT INTO send_requests (gift_id, request_id, created_at) VALUES ($1, $2, $3)), \
                  outbox_row AS (INSERT INTO outbox (gift_id, request_id, available_at) VALUES ($1, $2, $4)) \
             UPDATE gifts SET status = 'QUEUED', updated_at = $3 WHERE id = $1",
        )
        .bind(cmd.gift_id.as_uuid())
        .bind(cmd.key.as_str())
        .bind(cmd.now)
        .bind(cmd.outbox_available_at)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(SendDecision::Queued(accepted))
    }
}

#[async_trait]
impl Wrap for OldExistsSend {
    fn inner(&self) -> &dyn Store {
        &self.inner
    }

    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        // On a task of its own, as PgStore runs its calls: a client that hangs up leaves
        // the transaction to finish (or roll back) instead of cutting it off mid-protocol.
        let send = tokio::spawn(Self::send(self.pool.clone(), cmd.clone()));
        send.await.map_err(|e| StoreError::Other(format!("the send panicked: {e}")))?
    }
}

/// Histories the old send gets to show its bug in. With [`CONFIG`] the first or second
/// history usually shows it, the seventh at worst in over 50 runs; a history takes some 40 ms.
const OLD_SEND_HISTORIES: u64 = 200;

/// The old send under the same clients as the real stores: four clients of five calls on
/// three gifts race same-key sends often enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_exists_send_statement_is_not_linearizable() {
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let (name, options) = fresh_database(&url).await;
    let inner = PgStore::new(options.clone(), PoolSettings { max_connections: 2, ..PoolSettings::default() });
    inner.migrate().await.expect("migrations apply");
    // A connection per client, so that sends wait for each other on the row lock and not
    // for a connection.
    let pool = PgPoolOptions::new().max_connections(CONFIG.clients as u32).connect_lazy_with(options);
    let store = Arc::new(Wrapped(OldExistsSend { inner, pool: pool.clone() }));
    let started = Instant::now();
    let outcome = run(store, 0..OLD_SEND_HISTORIES, CONFIG).await;
    let elapsed = started.elapsed();
    pool.close().await;
    drop_database(&url, &name).await;
    let violation = match outcome {
        Ok(summary) => panic!("the old send went unnoticed: {summary}"),
        Err(violation) => violation,
    };
    eprintln!("old EXISTS send caught by history {} in {elapsed:.1?}: {violation}", violation.seed + 1);
    // The shrunk calls may be a lone conflict: the other calls on its gift, whatever they
    // did, could not have queued it without its key. They are the context.
    let gifts: BTreeSet<G> = violation.shrunk_calls().flat_map(|r| gifts_of(&r.op)).collect();
    let on_them: Vec<usize> = (0..violation.history.len())
        .filter(|&at| gifts_of(&violation.history[at].op).iter().any(|g| gifts.contains(g)))
        .collect();
    eprintln!("every call of the history on those gifts:\n{}", shrink::timeline(&violation.history, &on_them));
    // What the bug answers: a conflict where the model replays.
    let conflict = violation
        .shrunk_calls()
        .any(|r| matches!((&r.op, &r.answer), (Op::RequestSend { .. }, Ok(Answer::Send(Decision::Conflict(_))))));
    let decided = matches!(violation.failure, Failure::NotLinearizable(_));
    assert!(
        decided && conflict && violation.shrunk.len() <= 4,
        "{}",
        shrink::timeline(&violation.history, &violation.shrunk)
    );
}

/// The gifts a call is about.
fn gifts_of(op: &Op) -> Vec<G> {
    match op {
        Op::RequestSend { gift, .. }
        | Op::Get { gift }
        | Op::MarkSent { gift }
        | Op::MarkFailed { gift }
        | Op::OutboxPublished { gift, .. } => vec![*gift],
        Op::GetGifts { gifts } | Op::MarkSentAll { gifts } => gifts.clone(),
        Op::OutboxClaim { .. } => Vec::new(),
    }
}
