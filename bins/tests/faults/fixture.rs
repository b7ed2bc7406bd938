//! The fixture of every fault case: a fresh database and queue, the processes started on them, the test's own queries and locks, and the check every case ends with.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Deref;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use sqlx::Connection;

use crate::scratch::Scratch;
use crate::support::{free_port, required, temp_dir, Client, Proc};

pub const API: &str = env!("CARGO_BIN_EXE_gift-api");

pub const WORKER: &str = env!("CARGO_BIN_EXE_gift-worker");

/// `(TEST_DATABASE_URL, TEST_SQS_ENDPOINT)`, or `None` when the case is skipped.
pub fn services() -> Option<(String, String)> {
    let db = required("TEST_DATABASE_URL")?;
    let sqs = required("TEST_SQS_ENDPOINT")?;
    Some((db, sqs))
}

pub fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every line of a process that has exited, once its output has been read to the end (the
/// reader thread may lag the exit by a moment): waits until the count stops growing.
pub fn final_lines(p: &Proc) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = usize::MAX;
    loop {
        let lines = p.raw_lines();
        if lines.len() == seen || Instant::now() > deadline {
            return lines;
        }
        seen = lines.len();
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn final_logs(p: &Proc) -> Vec<Value> {
    final_lines(p).iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

pub struct Fixture {
    case: &'static str,
    scratch: Scratch,
    /// Scratch files of the case (heartbeat files), removed with it.
    files: PathBuf,
    started: Instant,
}

impl Deref for Fixture {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.scratch
    }
}

impl Fixture {
    /// A fresh database on the server `admin_url` names (owned by `owner` if given) and a
    /// fresh queue with a DLQ after 5 receives and a 5 s visibility timeout.
    pub fn new(case: &'static str, admin_url: &str, sqs_endpoint: &str, owner: Option<&str>) -> Self {
        let db_name = format!("gift_fault_{case}_{}", free_port());
        Self {
            case,
            scratch: Scratch::create(admin_url, sqs_endpoint, db_name, owner),
            files: temp_dir(&format!("fault-{case}")),
            started: Instant::now(),
        }
    }

    /// What both binaries get (the URL form of the database settings); `extra` entries
    /// added later override these.
    fn common(&self) -> Vec<(&'static str, String)> {
        self.service_env(&self.sqs_endpoint)
    }

    pub fn api_env(&self, port: u16, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut env = self.common();
        env.push(("PORT", port.to_string()));
        env.push(("HOST", "127.0.0.1".into()));
        env.push(("PUBLISH_GRACE_MS", "500".into()));
        env.extend_from_slice(extra);
        env
    }

    pub fn worker_env(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut env = self.common();
        env.push(("SEND_FAILURE_RATE", "0.2".into()));
        env.push(("RETRY_BACKOFF_SECONDS", "1".into()));
        env.push(("VISIBILITY_TIMEOUT_SECONDS", "5".into())); // the fixture queue's
        env.push(("WORKER_WAIT_SECONDS", "1".into()));
        env.push(("RELAY_INTERVAL_MS", "200".into()));
        env.push(("HEARTBEAT_FILE", self.files.join(format!("{}.heartbeat", free_port())).display().to_string()));
        env.extend_from_slice(extra);
        env
    }

    /// A started API, healthy.
    pub fn api(&self, extra: &[(&'static str, String)]) -> (Proc, Client) {
        let port = free_port();
        let proc = Proc::start(API, &self.api_env(port, extra));
        let client = Client::new(port);
        client.wait_healthy(Duration::from_secs(30));
        (proc, client)
    }

    pub fn worker(&self, extra: &[(&'static str, String)]) -> Proc {
        Proc::start(WORKER, &self.worker_env(extra))
    }

    // --- database ---

    pub fn connect(&self) -> sqlx::PgConnection {
        self.rt.block_on(sqlx::PgConnection::connect(&self.database_url)).unwrap()
    }

    pub fn count(&self, sql: &'static str) -> i64 {
        self.rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
            sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut c).await.unwrap()
        })
    }

    pub fn counts(&self) -> BTreeMap<String, i64> {
        self.rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
            sqlx::query_as::<_, (String, i64)>("SELECT status, COUNT(*) FROM gifts GROUP BY status")
                .fetch_all(&mut c)
                .await
                .unwrap()
                .into_iter()
                .collect()
        })
    }

    pub fn ids_with_status(&self, status: &str) -> HashSet<String> {
        self.rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
            sqlx::query_scalar::<_, String>("SELECT id::text FROM gifts WHERE status = $1")
                .bind(status)
                .fetch_all(&mut c)
                .await
                .unwrap()
                .into_iter()
                .collect()
        })
    }

    pub fn terminal_among(&self, ids: &[String]) -> usize {
        self.rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM gifts WHERE id::text = ANY($1) AND status IN ('SENT', 'FAILED')",
            )
            .bind(ids)
            .fetch_one(&mut c)
            .await
            .unwrap() as usize
        })
    }

    /// Statements of this database waiting on a lock whose text starts with `prefix`.
    pub fn lock_waiters(&self, prefix: &str) -> i64 {
        self.rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND wait_event_type = 'Lock' AND starts_with(query, $2)",
            )
            .bind(&self.db_name)
            .bind(prefix)
            .fetch_one(&mut c)
            .await
            .unwrap()
        })
    }

    /// Takes `LOCK TABLE gifts IN <mode> MODE` in a transaction held until [`Self::unlock`].
    pub fn lock_gifts(&self, mode: &str) -> sqlx::PgConnection {
        let mut c = self.connect();
        self.rt.block_on(async {
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("LOCK TABLE gifts IN {mode} MODE"))).execute(&mut c).await.unwrap();
        });
        c
    }

    pub fn unlock(&self, mut lock: sqlx::PgConnection) {
        self.rt.block_on(async {
            sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
            lock.close().await.unwrap();
        });
    }

    /// Waits until a worker's batch, held by [`Self::lock_gifts`], is at its SENT writes and
    /// returns how many of them are waiting.
    pub fn worker_mid_batch(&self, what: &str) -> usize {
        let mid_batch = "WITH locked AS (SELECT id FROM gifts";
        wait_until(what, Duration::from_secs(30), || self.lock_waiters(mid_batch) >= 1);
        // The batch's other writes arrive within moments; take what is there after a short while.
        let t = Instant::now();
        while self.lock_waiters(mid_batch) < 5 && t.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.lock_waiters(mid_batch) as usize
    }

    // --- queue ---

    pub fn depth(&self, queue_url: &str) -> i64 {
        self.rt.block_on(async {
            let out = self
                .sqs
                .get_queue_attributes()
                .queue_url(queue_url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .unwrap();
            let attrs = out.attributes.unwrap_or_default();
            [QueueAttributeName::ApproximateNumberOfMessages, QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
                .iter()
                .map(|a| attrs.get(a).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0))
                .sum()
        })
    }

    // --- the end of every case ---

    /// Waits until every `accepted` gift is SENT or FAILED, no gift is QUEUED, the outbox
    /// is empty and the main queue has drained (the workers must still be running); then
    /// checks the workers' logs — no gift logged SENT twice, every gift logged SENT is SENT
    /// in the database — and prints the counts.
    pub fn drain_and_check(
        &self,
        accepted: &[String],
        within: Duration,
        logs: impl Fn() -> Vec<Value>,
    ) -> BTreeMap<String, i64> {
        let deadline = Instant::now() + within;
        loop {
            let terminal = self.terminal_among(accepted);
            let queued = self.count("SELECT COUNT(*) FROM gifts WHERE status = 'QUEUED'");
            let outbox = self.count("SELECT COUNT(*) FROM outbox");
            let depth = self.depth(&self.queue_url);
            if terminal == accepted.len() && queued == 0 && outbox == 0 && depth == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] not settled after {within:?}: {terminal}/{} accepted terminal, {queued} QUEUED, \
                 {outbox} outbox rows, {depth} messages in the main queue; {:?}",
                self.case,
                accepted.len(),
                self.counts()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let counts = self.counts();
        let logs = logs();
        let mut sent_lines: HashMap<String, usize> = HashMap::new();
        for line in logs.iter().filter(|l| l["event"] == "SENT") {
            *sent_lines.entry(line["gift_id"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
        }
        let twice: Vec<_> = sent_lines.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "[{}] gifts SENT more than once: {twice:?}", self.case);
        let sent_in_db = self.ids_with_status("SENT");
        let stray: Vec<_> = sent_lines.keys().filter(|id| !sent_in_db.contains(*id)).collect();
        assert!(stray.is_empty(), "[{}] logged SENT but not SENT in the database: {stray:?}", self.case);
        let event = |name: &str| logs.iter().filter(|l| l["event"] == name).count();
        println!(
            "[{}] database {:?}; {} accepted, all SENT or FAILED; outbox and queue empty, {} in the DLQ; \
             worker log: {} SENT (at most 1 per gift), {} DUPLICATE, {} SKIPPED (lost race), {} RETRY, \
             {} RELAYED; {:.1} s",
            self.case,
            counts,
            accepted.len(),
            self.depth(&self.dlq_url),
            sent_lines.len(),
            event("DUPLICATE"),
            event("SKIPPED"),
            event("RETRY"),
            event("RELAYED"),
            self.started.elapsed().as_secs_f64()
        );
        counts
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.files);
        // Best effort; the throwaway clusters go away with their directory anyway.
        let (admin, name) = (self.admin_url.clone(), self.db_name.clone());
        let _ = self.rt.block_on(async move {
            let mut c = sqlx::PgConnection::connect(&admin).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut c)
                .await
        });
    }
}

pub type EnvVars = Vec<(&'static str, String)>;
