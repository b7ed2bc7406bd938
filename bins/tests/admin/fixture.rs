//! What the gift-admin cases set up and read: a fresh database and queue with the store, gifts in every state, and one run's output.

use std::ops::Deref;
use std::process::Command;

use gift_core::domain::{GiftCode, GiftId, IdempotencyKey, SendMessage, Timestamp};
use gift_runtime::postgres::{PgStore, PoolSettings};
use serde_json::Value;
use sqlx::Connection;

use crate::scratch::Scratch;

pub const ADMIN: &str = env!("CARGO_BIN_EXE_gift-admin");
pub const WORKER: &str = env!("CARGO_BIN_EXE_gift-worker");

/// A fresh database, a fresh queue and its DLQ, and the store to set gifts up through.
pub struct Env {
    scratch: Scratch,
    store: PgStore,
}

impl Deref for Env {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.scratch
    }
}

/// A fresh database (without the schema), queue and DLQ.
pub fn fresh(tag: &str) -> Option<Env> {
    let scratch = Scratch::from_env("gift_admin", tag)?;
    let store = PgStore::new(scratch.database_url.parse().unwrap(), PoolSettings::default());
    Some(Env { scratch, store })
}

/// [`fresh`], migrated.
pub fn setup(tag: &str) -> Option<Env> {
    let env = fresh(tag)?;
    env.rt.block_on(env.store.migrate()).unwrap();
    Some(env)
}

/// What one run printed: its exit, the JSON log lines, and the report (the last line of
/// stdout, parsed when it is JSON).
pub struct Run {
    pub ok: bool,
    pub logs: Vec<Value>,
    pub text: String,
    pub report: Value,
    pub stderr: String,
}

impl Run {
    pub fn events(&self, event: &str) -> Vec<&Value> {
        self.logs.iter().filter(|l| l["event"] == event).collect()
    }

    /// The first log line of `event`.
    pub fn event(&self, event: &str) -> &Value {
        self.logs.iter().find(|l| l["event"] == event).unwrap_or_else(|| panic!("no {event} line in {:?}", self.logs))
    }
}

impl Env {
    /// The worker's environment, plus the DLQ.
    pub fn admin_env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.service_env(&self.sqs_endpoint);
        env.push(("SQS_DLQ_URL", self.dlq_url.clone()));
        env
    }

    pub fn admin(&self, args: &[&str]) -> Run {
        self.admin_with(args, &self.admin_env())
    }

    pub fn admin_with(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        let out = Command::new(ADMIN).env_clear().envs(env.iter().map(|(k, v)| (k, v))).args(args).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        let logs = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["service"] == "admin")
            .collect();
        let report = lines.last().and_then(|l| serde_json::from_str::<Value>(l).ok()).unwrap_or(Value::Null);
        Run { ok: out.status.success(), logs, text: stdout, report, stderr: String::from_utf8(out.stderr).unwrap() }
    }

    /// A gift in `status` at `at`, with its send request `key` and, if `outbox`, the outbox
    /// row a send writes; the rows the service itself would have written.
    pub fn gift(&self, status: &str, key: &str, at: Timestamp, last_error: Option<&str>, outbox: bool) -> GiftId {
        let id = GiftId::from(uuid::Uuid::new_v4());
        let code = GiftCode::from_random(uuid::Uuid::new_v4().as_u64_pair().0);
        self.rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
            sqlx::query(
                "WITH gift AS (INSERT INTO gifts (id, code, amount, status, last_error, created_at, updated_at) \
                               VALUES ($1, $2, 1000, $3, $4, $5, $5) RETURNING id), \
                      send AS (INSERT INTO send_requests (gift_id, request_id, created_at) \
                               SELECT id, $6, $5 FROM gift RETURNING gift_id) \
                 INSERT INTO outbox (gift_id, request_id, available_at) SELECT gift_id, $6, $5 FROM send WHERE $7",
            )
            .bind(id.as_uuid())
            .bind(code.as_str())
            .bind(status)
            .bind(last_error)
            .bind(at)
            .bind(key)
            .bind(outbox)
            .execute(&mut c)
            .await
            .unwrap();
        });
        id
    }

    /// Accepted for sending at `at`, its message not yet published.
    pub fn queued_gift(&self, key: &str, at: Timestamp) -> GiftId {
        self.gift("QUEUED", key, at, None, true)
    }

    /// QUEUED, its message published and then dead-lettered.
    pub fn dead_lettered(&self, key: &str) -> GiftId {
        let id = self.gift("QUEUED", key, now(), None, false);
        self.to_dlq(&SendMessage { gift_id: id, request_id: IdempotencyKey::parse(key).unwrap() }.to_body());
        id
    }

    pub fn failed_gift(&self, key: &str) -> GiftId {
        self.gift("FAILED", key, now(), Some("pseudo-send failed (attempt 5)"), false)
    }

    pub fn sent_gift(&self, key: &str) -> GiftId {
        self.gift("SENT", key, now(), None, false)
    }

    pub fn to_dlq(&self, body: &str) {
        self.rt.block_on(self.sqs.send_message().queue_url(&self.dlq_url).message_body(body).send()).unwrap();
    }

    /// (status, last_error, outbox rows) of a gift.
    pub fn gift_row(&self, id: GiftId) -> (String, Option<String>, i64) {
        self.rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
            sqlx::query_as(
                "SELECT status, last_error, (SELECT count(*) FROM outbox WHERE gift_id = $1) FROM gifts WHERE id = $1",
            )
            .bind(id.as_uuid())
            .fetch_one(&mut c)
            .await
            .unwrap()
        })
    }

    /// (visible, in flight) messages of the DLQ.
    pub fn dlq_depth(&self) -> (u64, u64) {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .rt
            .block_on(
                self.sqs
                    .get_queue_attributes()
                    .queue_url(&self.dlq_url)
                    .attribute_names(A::ApproximateNumberOfMessages)
                    .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                    .send(),
            )
            .unwrap();
        let attrs = out.attributes.unwrap();
        let n = |a: A| attrs[&a].parse().unwrap();
        (n(A::ApproximateNumberOfMessages), n(A::ApproximateNumberOfMessagesNotVisible))
    }

    /// The DLQ's bodies, sorted, left visible.
    pub fn sorted_dlq_bodies(&self) -> Vec<String> {
        let mut bodies = self.dlq_bodies();
        bodies.sort();
        bodies
    }
}

pub fn now() -> Timestamp {
    gift_runtime::rt::now_utc()
}
