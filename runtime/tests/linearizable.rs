//! Every store against the linearizability checker: concurrent clients, some of them
//! hanging up mid-call, and each history held to the in-memory model operation by
//! operation. A store with a planted lost update shows the checker finds one.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gift_core::domain::{Gift, GiftId, IdempotencyKey, SendAccepted, Status, Timestamp};
use gift_core::ports::{OutboxEntry, SendCommand, SendDecision, Store};
use gift_core::StoreError;
use gift_runtime::conformance::linearizable::history::{Answer, Config, Decision, Op};
use gift_runtime::conformance::linearizable::{run, shrink};
use gift_runtime::memory::{MemoryStore, QueueSettings};
use gift_runtime::postgres::{PgStore, PoolSettings};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Histories per store: four clients of five calls, one call in ten given up part-way.
const HISTORIES: u64 = 500;
const CONFIG: Config = Config { clients: 4, ops_per_client: 5, cancel_one_in: 10 };

async fn linearizable(name: &str, store: Arc<dyn Store>) {
    let started = Instant::now();
    match run(store, 0..HISTORIES, CONFIG).await {
        Ok(summary) => eprintln!("{name}: {summary} in {:.1?}", started.elapsed()),
        Err(violation) => panic!("{name}: {violation}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_is_linearizable() {
    linearizable("memory", Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_is_linearizable() {
    let dir = std::env::temp_dir().join(format!(
        "gift-linearizable-{}-{}",
        std::process::id(),
        gift_runtime::rt::random_u64()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let settings = QueueSettings { visibility_timeout: Duration::from_secs(1), max_receives: 5 };
    let (store, _) = gift_runtime::sqlite::open(&dir.join("data.sqlite"), settings).await.unwrap();
    linearizable("sqlite", store).await;
    std::fs::remove_dir_all(&dir).ok();
}

/// Two connections for four clients: calls wait for one, so sends and creates share
/// statements, and a call given up while its item waits takes it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_is_linearizable() {
    let Some(url) = support::service("TEST_DATABASE_URL", "PostgreSQL") else { return };
    let admin: PgConnectOptions = url.parse().expect("TEST_DATABASE_URL is a PostgreSQL URL");
    let name = format!("gift_test_{:016x}", gift_runtime::rt::random_u64());
    let mut conn = admin.connect().await.expect("connect to TEST_DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
    conn.close().await.ok();
    let store = PgStore::new(admin.database(&name), PoolSettings { max_connections: 2, ..PoolSettings::default() });
    store.migrate().await.expect("migrations apply");
    linearizable("postgres", Arc::new(store)).await;
}

/// The planted bug: `request_send` reads the gift, yields, and then accepts the send
/// without looking again, so two sends racing over a CREATED gift may both queue it. It
/// keeps the accepted keys itself and leaves the rest to the model.
struct LostUpdateStore {
    inner: MemoryStore,
    accepted: Mutex<BTreeSet<(GiftId, IdempotencyKey)>>,
}

#[async_trait]
impl Store for LostUpdateStore {
    async fn insert_gift(&self, gift: &Gift) -> Result<(), StoreError> {
        self.inner.insert_gift(gift).await
    }

    async fn get_gift(&self, id: GiftId) -> Result<Option<Gift>, StoreError> {
        self.inner.get_gift(id).await
    }

    async fn request_send(&self, cmd: &SendCommand) -> Result<SendDecision, StoreError> {
        let Some(gift) = self.inner.get_gift(cmd.gift_id).await? else { return Ok(SendDecision::NotFound) };
        let accepted = SendAccepted { gift_id: cmd.gift_id, status: Status::Queued, request_id: cmd.key.clone() };
        let request = (cmd.gift_id, cmd.key.clone());
        if self.accepted.lock().unwrap().contains(&request) {
            return Ok(SendDecision::Replay(accepted));
        }
        if gift.status != Status::Created {
            return Ok(SendDecision::Conflict(gift.status));
        }
        tokio::task::yield_now().await;
        // The write, on what was read before the yield.
        self.accepted.lock().unwrap().insert(request);
        self.inner.request_send(cmd).await?;
        Ok(SendDecision::Queued(accepted))
    }

    async fn mark_sent(&self, id: GiftId, now: Timestamp) -> Result<bool, StoreError> {
        self.inner.mark_sent(id, now).await
    }

    async fn mark_failed(&self, id: GiftId, error: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.inner.mark_failed(id, error, now).await
    }

    async fn outbox_due(&self, now: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.outbox_due(now, limit).await
    }

    async fn outbox_remove(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.inner.outbox_remove(entry).await
    }

    async fn rearm_stale(&self, stale_before: Timestamp, now: Timestamp, limit: u32) -> Result<u32, StoreError> {
        self.inner.rearm_stale(stale_before, now, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_update_is_not_linearizable() {
    let store = Arc::new(LostUpdateStore { inner: MemoryStore::new(), accepted: Mutex::default() });
    let started = Instant::now();
    let violation = run(store, 0..HISTORIES, CONFIG).await.expect_err("the lost update goes unnoticed");
    eprintln!("lost update found in {:.1?}: {violation}", started.elapsed());
    let queued = violation
        .shrunk_calls()
        .any(|r| matches!((&r.op, &r.answer), (Op::RequestSend { .. }, Ok(Answer::Send(Decision::Queued)))));
    assert!(queued && violation.shrunk.len() <= 4, "{}", shrink::timeline(&violation.history, &violation.shrunk));
}
