//! The fault suite: the real `gift-api` and `gift-worker` on loopback against PostgreSQL
//! and SQS (moto), killed, starved, stopped and raced. Every case ends the same way
//! ([`Fixture::finish`]): it waits until every accepted send is SENT or FAILED, nothing is
//! QUEUED, the outbox is empty and the main queue has drained, checks that no gift was
//! logged SENT twice, and prints the counts by status.
//!
//! Needs `TEST_DATABASE_URL` and `TEST_SQS_ENDPOINT` (scripts/test provides both and makes
//! them required). The PostgreSQL outage and the secrets cases stop, start and reconfigure a
//! throwaway cluster of their own (`initdb` from the newest /usr/lib/postgresql/*/bin, or
//! `PG_BIN`); the shared server is never stopped.
//!
//! To hold a process in the middle of its work without timing luck, the cases take table
//! locks from the test and watch `pg_stat_activity` until the process's statements are
//! waiting on them: a worker blocked in its `UPDATE … SET status = 'SENT'` is in the middle of
//! a batch, an API blocked in its `INSERT` is in the middle of a request.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use gift_runtime::conformance::sqs_emulator;
use serde_json::Value;
use sqlx::Connection;
use support::{create_database, free_port, required, service_env, temp_dir, Answer, Client, Proc, Proxy};

const API: &str = env!("CARGO_BIN_EXE_gift-api");
const WORKER: &str = env!("CARGO_BIN_EXE_gift-worker");

/// `(TEST_DATABASE_URL, TEST_SQS_ENDPOINT)`, or `None` when the case is skipped.
fn services() -> Option<(String, String)> {
    let db = required("TEST_DATABASE_URL")?;
    let sqs = required("TEST_SQS_ENDPOINT")?;
    Some((db, sqs))
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every line of a process that has exited, once its output has been read to the end (the
/// reader thread may lag the exit by a moment): waits until the count stops growing.
fn final_lines(p: &Proc) -> Vec<String> {
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

fn final_logs(p: &Proc) -> Vec<Value> {
    final_lines(p).iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

// --- the fixture: a fresh database, a fresh queue, the processes ---------------------------

struct Fixture {
    case: &'static str,
    db_name: String,
    admin_url: String,
    /// The fresh database with the admin's credentials: the test's own queries.
    database_url: String,
    sqs_endpoint: String,
    queue_url: String,
    dlq_url: String,
    sqs: aws_sdk_sqs::Client,
    rt: tokio::runtime::Runtime,
    /// Scratch files of the case (heartbeat files), removed with it.
    scratch: PathBuf,
    started: Instant,
}

impl Fixture {
    /// A fresh database on the server `admin_url` names (owned by `owner` if given) and a
    /// fresh queue with a DLQ after 5 receives and a 5 s visibility timeout.
    fn new(case: &'static str, admin_url: &str, sqs_endpoint: &str, owner: Option<&str>) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let db_name = format!("gift_fault_{case}_{}", free_port());
        let database_url = create_database(&rt, admin_url, &db_name, owner);
        let sqs = sqs_emulator::client(sqs_endpoint);
        let (queue_url, dlq_url) = rt.block_on(sqs_emulator::queue_with_dlq(&sqs, &db_name, 5, 5));
        Self {
            case,
            database_url,
            db_name,
            admin_url: admin_url.to_owned(),
            sqs_endpoint: sqs_endpoint.to_owned(),
            queue_url,
            dlq_url,
            sqs,
            rt,
            scratch: temp_dir(&format!("fault-{case}")),
            started: Instant::now(),
        }
    }

    /// What both binaries get (the URL form of the database settings); `extra` entries
    /// added later override these.
    fn common(&self) -> Vec<(&'static str, String)> {
        service_env(&self.database_url, &self.queue_url, &self.sqs_endpoint)
    }

    fn api_env(&self, port: u16, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut env = self.common();
        env.push(("PORT", port.to_string()));
        env.push(("HOST", "127.0.0.1".into()));
        env.push(("PUBLISH_GRACE_MS", "500".into()));
        env.extend_from_slice(extra);
        env
    }

    fn worker_env(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut env = self.common();
        env.push(("SEND_FAILURE_RATE", "0.2".into()));
        env.push(("RETRY_BACKOFF_SECONDS", "1".into()));
        env.push(("VISIBILITY_TIMEOUT_SECONDS", "5".into())); // the fixture queue's
        env.push(("WORKER_WAIT_SECONDS", "1".into()));
        env.push(("RELAY_INTERVAL_MS", "200".into()));
        env.push(("HEARTBEAT_FILE", self.scratch.join(format!("{}.heartbeat", free_port())).display().to_string()));
        env.extend_from_slice(extra);
        env
    }

    /// A started API, healthy.
    fn api(&self, extra: &[(&'static str, String)]) -> (Proc, Client) {
        let port = free_port();
        let proc = Proc::start(API, &self.api_env(port, extra));
        let client = Client::new(port);
        client.wait_healthy(Duration::from_secs(30));
        (proc, client)
    }

    fn worker(&self, extra: &[(&'static str, String)]) -> Proc {
        Proc::start(WORKER, &self.worker_env(extra))
    }

    // --- database ---

    fn connect(&self) -> sqlx::PgConnection {
        self.rt.block_on(sqlx::PgConnection::connect(&self.database_url)).unwrap()
    }

    fn count(&self, sql: &'static str) -> i64 {
        self.rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
            sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut c).await.unwrap()
        })
    }

    fn counts(&self) -> BTreeMap<String, i64> {
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

    fn ids_with_status(&self, status: &str) -> HashSet<String> {
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

    fn terminal_among(&self, ids: &[String]) -> usize {
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
    fn lock_waiters(&self, prefix: &str) -> i64 {
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
    fn lock_gifts(&self, mode: &str) -> sqlx::PgConnection {
        let mut c = self.connect();
        self.rt.block_on(async {
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("LOCK TABLE gifts IN {mode} MODE"))).execute(&mut c).await.unwrap();
        });
        c
    }

    fn unlock(&self, mut lock: sqlx::PgConnection) {
        self.rt.block_on(async {
            sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
            lock.close().await.unwrap();
        });
    }

    // --- queue ---

    fn depth(&self, queue_url: &str) -> i64 {
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

    fn publish_raw(&self, body: &str) {
        self.rt.block_on(async {
            self.sqs.send_message().queue_url(&self.queue_url).message_body(body).send().await.unwrap()
        });
    }

    // --- the end of every case ---

    /// Waits until every `accepted` gift is SENT or FAILED, no gift is QUEUED, the outbox
    /// is empty and the main queue has drained (the workers must still be running); then
    /// checks the workers' logs — no gift logged SENT twice, every gift logged SENT is SENT
    /// in the database — and prints the counts.
    fn finish(&self, accepted: &[String], within: Duration, logs: impl Fn() -> Vec<Value>) -> BTreeMap<String, i64> {
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
        let _ = std::fs::remove_dir_all(&self.scratch);
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

// --- load: clients creating and sending gifts until told to stop -----------------------------

struct Call {
    op: &'static str,
    at: Instant,
    key: Option<String>,
    gift: Option<String>,
    answer: Result<Answer, String>,
}

struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Call>>>,
}

impl Load {
    /// `threads` clients, each looping create → send (a fresh key) with `pause` in between.
    fn start(port: u16, threads: usize, pause: Duration, tag: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|t| {
                let (stop, tag) = (stop.clone(), tag.to_owned());
                std::thread::spawn(move || {
                    let client = Client::new(port);
                    let mut calls = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        let at = Instant::now();
                        let created = client.try_call("POST", "/gifts", None, Some(r#"{"amount": 500}"#));
                        let gift = match &created {
                            Ok(a) if a.status == 201 => a.body["gift_id"].as_str().map(str::to_owned),
                            _ => None,
                        };
                        calls.push(Call { op: "create", at, key: None, gift: gift.clone(), answer: created });
                        if let Some(id) = gift {
                            let key = format!("{tag}-{t}-{i}");
                            let at = Instant::now();
                            let answer = client.try_call("POST", &format!("/gifts/{id}/send"), Some(&key), None);
                            calls.push(Call { op: "send", at, key: Some(key), gift: Some(id), answer });
                        }
                        std::thread::sleep(pause);
                    }
                    calls
                })
            })
            .collect();
        Self { stop, threads }
    }

    fn stop(self) -> Vec<Call> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    }
}

/// Gift ids whose send was accepted (202, or 200 for a retry of an accepted key).
fn accepted(calls: &[Call]) -> Vec<String> {
    let mut ids: Vec<String> = calls
        .iter()
        .filter(|c| c.op == "send" && matches!(&c.answer, Ok(a) if a.status == 202 || a.status == 200))
        .filter_map(|c| c.gift.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A client that sends each of `gifts` once, retrying the same Idempotency-Key after a 503
/// (as Retry-After asks) until it is accepted or `within` runs out.
fn send_retrying(port: u16, gifts: Vec<String>, tag: &str, within: Duration) -> JoinHandle<Vec<Call>> {
    let tag = tag.to_owned();
    std::thread::spawn(move || {
        let client = Client::new(port);
        let deadline = Instant::now() + within;
        let mut calls = Vec::new();
        for (i, id) in gifts.into_iter().enumerate() {
            let key = format!("{tag}-{i}");
            while Instant::now() < deadline {
                let at = Instant::now();
                let answer = client.try_call("POST", &format!("/gifts/{id}/send"), Some(&key), None);
                let retry = matches!(&answer, Ok(a) if a.status == 503);
                let wait = match &answer {
                    Ok(a) => a.retry_after.as_deref().and_then(|s| s.parse().ok()).unwrap_or(1),
                    Err(_) => 1,
                };
                calls.push(Call { op: "send", at, key: Some(key.clone()), gift: Some(id.clone()), answer });
                if !retry {
                    break;
                }
                std::thread::sleep(Duration::from_secs(wait));
            }
        }
        calls
    })
}

fn status_histogram(calls: &[&Call]) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for c in calls {
        let k = match &c.answer {
            Ok(a) => format!("{} {}", c.op, a.status),
            Err(_) => format!("{} transport error", c.op),
        };
        *h.entry(k).or_default() += 1;
    }
    h
}

/// A 503 in the one error shape, with Retry-After, and the request's key as request_id.
fn assert_unavailable_shape(call: &Call, answer: &Answer) {
    let body = &answer.body;
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{}", answer.text);
    assert!(body["error"]["message"].is_string(), "{}", answer.text);
    let expected = call.key.as_deref().map_or(Value::Null, |k| Value::String(k.to_owned()));
    assert_eq!(body.get("request_id"), Some(&expected), "{}", answer.text);
    assert!(answer.retry_after.is_some(), "503 without Retry-After: {}", answer.text);
}

type EnvVars = Vec<(&'static str, String)>;

// --- a throwaway PostgreSQL cluster ------------------------------------------------------------

fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL cluster in a temporary directory on a free port, which the test may stop
/// and start. As root, initdb and pg_ctl run as the `postgres` user (initdb refuses root).
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    admin_password: Option<String>,
}

impl Cluster {
    /// Initialises and starts a cluster; `admin_password` makes it password-only
    /// (scram-sha-256) instead of trust. `None` when skipped (no initdb found).
    fn start_new(tag: &str, admin_password: Option<&str>) -> Option<Self> {
        let Some(bin) = pg_bin() else {
            if std::env::var("GIFT_TEST_SERVICES").as_deref() == Ok("required") {
                panic!("initdb is required: no /usr/lib/postgresql/*/bin and no PG_BIN");
            }
            eprintln!("SKIPPED: needs initdb (/usr/lib/postgresql/*/bin or PG_BIN)");
            return None;
        };
        let dir = temp_dir(&format!("pg-{tag}"));
        let cluster = Self {
            bin,
            port: free_port(),
            as_postgres: is_root(),
            admin_password: admin_password.map(str::to_owned),
            dir,
        };
        let data = cluster.dir.join("data");
        let mut args: Vec<String> = vec!["-D".into(), data.display().to_string(), "-U".into(), "postgres".into()];
        args.extend(["-N".into(), "-E".into(), "UTF8".into()]);
        match admin_password {
            Some(pw) => {
                let pwfile = cluster.dir.join("pwfile");
                std::fs::write(&pwfile, pw).unwrap();
                args.extend(["-A".into(), "scram-sha-256".into(), "--pwfile".into(), pwfile.display().to_string()]);
            }
            None => args.extend(["-A".into(), "trust".into()]),
        }
        if cluster.as_postgres {
            let chown = Command::new("chown").arg("-R").arg("postgres").arg(&cluster.dir).status().unwrap();
            assert!(chown.success(), "chown postgres {}", cluster.dir.display());
        }
        let out = cluster.command("initdb").args(&args).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        cluster.start();
        Some(cluster)
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> bool {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    fn start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        let log = self.dir.join("log").display().to_string();
        let ok = self.pg_ctl(&["-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
        assert!(ok, "pg_ctl start: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// A fast shutdown: sessions are terminated, as when RDS fails over or restarts.
    fn stop(&self) {
        assert!(self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]), "pg_ctl stop");
    }

    fn admin_url(&self) -> String {
        let auth = self.admin_password.as_deref().map(|p| format!(":{p}")).unwrap_or_default();
        format!("postgres://postgres{auth}@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// --- 1. kill -9 of a worker in the middle of a batch ------------------------------------------

/// 100 accepted sends. The worker's batch is gathered at one point by a table lock the test
/// holds (reads pass, its `UPDATE … SET status = 'SENT'` writes wait); then its SQS
/// connection is stalled and the lock released, so the writes commit and are logged SENT
/// while the deletes that should follow hang. The worker is killed with SIGKILL right there
/// — gifts SENT, messages not deleted, retries not re-timed — and the held requests are
/// discarded. A new worker finishes: every gift ends SENT or FAILED, none SENT twice, and
/// each message of a gift the dead worker finished comes back and is dropped as a duplicate.
#[test]
fn kill_dash_nine_of_a_worker_mid_batch_then_restart_loses_nothing() {
    let Some((db, sqs)) = services() else { return };
    let fx = Fixture::new("kill9", &db, &sqs, None);
    let (_api, api) = fx.api(&[]);
    let ids: Vec<String> = (0..100).map(|_| api.create()).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(api.send(id, &format!("kill-{i}")).0, 202);
    }

    let proxy = Proxy::start(&sqs);
    let lock = fx.lock_gifts("EXCLUSIVE");
    let mut first = fx.worker(&[("DB_POOL_MAX", "20".into()), ("AWS_ENDPOINT_URL_SQS", proxy.url())]);
    let mid_batch = "WITH locked AS (SELECT id FROM gifts";
    wait_until("the worker's batch at its SENT writes", Duration::from_secs(30), || fx.lock_waiters(mid_batch) >= 1);
    // The batch's other writes arrive within moments; take what is there after a short while.
    let t = Instant::now();
    while fx.lock_waiters(mid_batch) < 5 && t.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let in_flight = fx.lock_waiters(mid_batch) as usize;
    proxy.set_stalled(true);
    fx.unlock(lock);
    let sent_lines = |p: &Proc| p.log_lines().iter().filter(|l| l["event"] == "SENT").count();
    wait_until("the batch's writes committed and logged", Duration::from_secs(20), || sent_lines(&first) >= in_flight);
    first.kill9();
    proxy.set_up(false); // the deletes it was waiting for never reach SQS
    let first_logs = final_logs(&first);
    let sent_by_first = first_logs.iter().filter(|l| l["event"] == "SENT").count();
    println!(
        "[kill9] batch held with {in_flight} SENT writes waiting; worker killed after logging {sent_by_first} SENT, \
         before deleting any of those messages"
    );

    // Half the sends fail from here on, so some gifts use up their five receives and FAIL.
    let second = fx.worker(&[("SEND_FAILURE_RATE", "0.5".into())]);
    fx.finish(&ids, Duration::from_secs(90), || {
        let mut logs = first_logs.clone();
        logs.extend(second.log_lines());
        logs
    });
    let duplicates = |p: &Proc| p.log_lines().iter().filter(|l| l["event"] == "DUPLICATE").count();
    wait_until("a duplicate delivery per gift the killed worker finished", Duration::from_secs(10), || {
        duplicates(&second) >= sent_by_first
    });
    println!("[kill9] {} redeliveries of finished gifts dropped as duplicates after the restart", duplicates(&second));
}

// --- 2. PostgreSQL stopped under load, then started ------------------------------------------

/// Load on the API while the worker runs; the cluster is stopped for about four seconds and
/// started again, while another client sends ten gifts created before the outage, retrying
/// each key after a 503. While the database is down, `/readyz` says 503 with a database
/// reason and every request is answered within the pool's acquire timeout plus a margin:
/// 503 in the error shape with Retry-After and the key as `request_id`, never a hang, a
/// reset or a 500. Both processes recover without a restart and every accepted send ends
/// SENT or FAILED.
#[test]
fn postgres_stopped_under_load_fails_fast_and_recovers_without_restart() {
    let Some((_, sqs)) = services() else { return };
    let Some(pg) = Cluster::start_new("outage", None) else { return };
    let fx = Fixture::new("pgdown", &pg.admin_url(), &sqs, None);
    let acquire_ms = 1000;
    let (mut api_proc, api) = fx.api(&[("DB_ACQUIRE_TIMEOUT_MS", acquire_ms.to_string())]);
    // Stale re-arm just above the retry window (5 × (5 s visibility + 1 s backoff)): the
    // backstop for a message whose last receive fell inside the outage.
    let mut worker = fx.worker(&[("STALE_QUEUED_SECONDS", "31".into())]);
    let port = api.base.rsplit(':').next().unwrap().parse().unwrap();
    let load = Load::start(port, 4, Duration::from_millis(100), "pgdown");
    wait_until("some sends before the outage", Duration::from_secs(20), || {
        fx.count("SELECT COUNT(*) FROM gifts WHERE status <> 'CREATED'") >= 10
    });

    let backlog: Vec<String> = (0..10).map(|_| api.create()).collect();

    pg.stop();
    let down_at = Instant::now();
    // A client sending gifts created before the outage, retrying on 503 with the same key.
    let sender = send_retrying(port, backlog, "pgdown-retry", Duration::from_secs(60));
    let mut not_ready = None;
    wait_until("/readyz reporting the database", Duration::from_secs(15), || {
        let a = api.try_call("GET", "/readyz", None, None).expect("/readyz answers while the database is down");
        let hit = a.status == 503 && a.body["reason"].as_str().is_some_and(|r| r.starts_with("database"));
        if hit {
            not_ready = Some(a);
        }
        hit
    });
    let not_ready = not_ready.unwrap();
    assert_eq!(not_ready.body["status"], "not_ready");
    // Keep the load on the stopped database for a few seconds.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(down_at.elapsed()));
    pg.start();
    let up_at = Instant::now();
    wait_until("/readyz ready again without a restart", Duration::from_secs(30), || {
        api.try_call("GET", "/readyz", None, None).is_ok_and(|a| a.status == 200)
    });
    let recovered_in = up_at.elapsed();
    let before = fx.count("SELECT COUNT(*) FROM gifts");
    wait_until("new gifts after the restart", Duration::from_secs(20), || {
        fx.count("SELECT COUNT(*) FROM gifts") >= before + 10
    });
    let mut calls = load.stop();
    calls.extend(sender.join().unwrap());
    assert!(api_proc.is_running() && worker.is_running(), "neither process may need a restart");

    let bound = Duration::from_millis(acquire_ms + 4000);
    let mut unavailable = 0;
    for c in &calls {
        let a = c.answer.as_ref().unwrap_or_else(|e| panic!("every request is answered: {e}"));
        assert!(a.elapsed < bound, "{} took {:?} (bound {bound:?}): {}", c.op, a.elapsed, a.text);
        match a.status {
            200..=202 => {}
            503 => {
                unavailable += 1;
                assert_unavailable_shape(c, a);
            }
            other => panic!("{} answered {other} during a database outage: {}", c.op, a.text),
        }
    }
    let during: Vec<&Call> = calls.iter().filter(|c| c.at >= down_at && c.at < up_at).collect();
    let slowest = calls.iter().filter_map(|c| c.answer.as_ref().ok()).map(|a| a.elapsed).max().unwrap_or_default();
    assert!(unavailable > 0, "the outage must be visible to clients");
    let sends_refused =
        during.iter().filter(|c| c.op == "send" && matches!(&c.answer, Ok(a) if a.status == 503)).count();
    assert!(sends_refused > 0, "sends during the outage are refused with 503 (and retried)");
    println!(
        "[pgdown] down {:.1} s; /readyz {} in {:?} ({}); ready {:.1} s after start; during the outage {:?}; \
         whole run {:?}; slowest answer {slowest:?} (bound {bound:?})",
        (up_at - down_at).as_secs_f64(),
        not_ready.status,
        not_ready.elapsed,
        not_ready.body["reason"],
        recovered_in.as_secs_f64(),
        status_histogram(&during),
        status_histogram(&calls.iter().collect::<Vec<_>>()),
    );
    fx.finish(&accepted(&calls), Duration::from_secs(90), || worker.log_lines());
}

// --- 3. the SQS endpoint stopped under load, then started ------------------------------------

/// API and worker reach SQS through a proxy that is cut for about four seconds under load
/// (live connections dropped, new ones closed). Sends keep being accepted (202) while the
/// publish after commit fails; `/readyz` names the queue; when SQS is back the relay
/// publishes the outbox rows and everything accepted ends SENT or FAILED.
#[test]
fn sqs_stopped_under_load_accepts_sends_and_processes_them_later() {
    let Some((db, sqs)) = services() else { return };
    let fx = Fixture::new("sqsdown", &db, &sqs, None);
    let proxy = Proxy::start(&sqs);
    let via_proxy = ("AWS_ENDPOINT_URL_SQS", proxy.url());
    let (api_proc, api) = fx.api(std::slice::from_ref(&via_proxy));
    let worker = fx.worker(std::slice::from_ref(&via_proxy));
    let port = api.base.rsplit(':').next().unwrap().parse().unwrap();
    let load = Load::start(port, 3, Duration::from_millis(100), "sqsdown");
    wait_until("some gifts sent before the outage", Duration::from_secs(20), || {
        fx.count("SELECT COUNT(*) FROM gifts WHERE status = 'SENT'") >= 5
    });

    proxy.set_up(false);
    let down_at = Instant::now();
    wait_until("/readyz reporting the queue", Duration::from_secs(30), || {
        api.try_call("GET", "/readyz", None, None)
            .is_ok_and(|a| a.status == 503 && a.body["reason"].as_str().is_some_and(|r| r.starts_with("queue")))
    });
    let before = fx.count("SELECT COUNT(*) FROM outbox");
    wait_until("sends accepted while SQS is down", Duration::from_secs(30), || {
        fx.count("SELECT COUNT(*) FROM outbox") >= before + 5
    });
    std::thread::sleep(Duration::from_secs(4).saturating_sub(down_at.elapsed()));
    proxy.set_up(true);
    let up_at = Instant::now();
    let sent = fx.count("SELECT COUNT(*) FROM gifts WHERE status = 'SENT'");
    wait_until("sends processed after SQS is back", Duration::from_secs(30), || {
        fx.count("SELECT COUNT(*) FROM gifts WHERE status = 'SENT'") >= sent + 5
    });
    let calls = load.stop();

    for c in &calls {
        let a = c.answer.as_ref().unwrap_or_else(|e| panic!("every request is answered: {e}"));
        let ok = if c.op == "create" { 201 } else { 202 };
        assert_eq!(a.status, ok, "the API keeps accepting while SQS is down: {} {}", c.op, a.text);
    }
    let during: Vec<&Call> = calls.iter().filter(|c| c.at >= down_at && c.at < up_at).collect();
    let during_sends = during.iter().filter(|c| c.op == "send").count();
    assert!(during_sends > 0, "sends were made while SQS was down");
    let slowest = calls.iter().filter_map(|c| c.answer.as_ref().ok()).map(|a| a.elapsed).max().unwrap_or_default();
    let publish_failed = api_proc.log_lines().iter().filter(|l| l["error_code"] == "PUBLISH_FAILED").count();
    assert!(publish_failed > 0, "the API's publishes failed during the outage");
    println!(
        "[sqsdown] down {:.1} s; during the outage {:?}; {publish_failed} API publishes failed and were left to the \
         relay; slowest answer {slowest:?}",
        (up_at - down_at).as_secs_f64(),
        status_histogram(&during),
    );
    let counts = fx.finish(&accepted(&calls), Duration::from_secs(90), || worker.log_lines());
    let relayed = worker.log_lines().iter().filter(|l| l["event"] == "RELAYED").count();
    assert!(relayed >= publish_failed, "{relayed} relayed for {publish_failed} failed publishes");
    assert!(counts.get("SENT").copied().unwrap_or(0) > 0);
}

// --- 4. SIGTERM during load ------------------------------------------------------------------

/// The API: 30 requests (sends and creates) are held inside the server by an ACCESS
/// EXCLUSIVE lock on `gifts`, visible as 30 waiting statements; SIGTERM; the process stays
/// up while they wait, and when the lock goes every one of them is answered (no reset) and
/// the process exits 0. The worker: held mid-batch in its SENT writes the same way; SIGTERM;
/// it finishes the batch (each held write is logged SENT by it) and exits 0; a new worker
/// then processes the rest.
#[test]
fn sigterm_drains_in_flight_requests_and_the_worker_batch() {
    let Some((db, sqs)) = services() else { return };
    let fx = Fixture::new("sigterm", &db, &sqs, None);
    let pool = ("DB_POOL_MAX", "40".to_owned());
    let (mut api_proc, api) = fx.api(std::slice::from_ref(&pool));
    let ids: Vec<String> = (0..40).map(|_| api.create()).collect();

    // API: requests in flight at the signal.
    let lock = fx.lock_gifts("ACCESS EXCLUSIVE");
    let port: u16 = api.base.rsplit(':').next().unwrap().parse().unwrap();
    let request = |i: usize| {
        let id = ids[i].clone();
        std::thread::spawn(move || {
            let client = Client::new(port);
            if i < 20 {
                (
                    format!("send {id}"),
                    client.try_call("POST", &format!("/gifts/{id}/send"), Some(&format!("term-{i}")), None),
                )
            } else {
                ("create".to_owned(), client.try_call("POST", "/gifts", None, Some(r#"{"amount": 7}"#)))
            }
        })
    };
    // One request at a time, each waiting on the lock before the next starts: sends or
    // creates that arrive together share one statement, which would leave nothing to count
    // them by.
    let mut held: Vec<JoinHandle<(String, Result<Answer, String>)>> = Vec::new();
    for i in 0..30 {
        held.push(request(i));
        wait_until("the request inside the API", Duration::from_secs(30), || fx.lock_waiters("") > i as i64);
    }
    let signalled = Instant::now();
    api_proc.signal("TERM");
    assert!(api_proc.wait_exit(Duration::from_millis(500)).is_none(), "the API must wait for its in-flight requests");
    fx.unlock(lock);
    let answers: Vec<(String, Result<Answer, String>)> = held.into_iter().map(|h| h.join().unwrap()).collect();
    let exit = api_proc.wait_exit(Duration::from_secs(15)).expect("the API exits after draining");
    let api_exit_after = signalled.elapsed();
    assert!(exit.success(), "API exit status {exit:?}");
    let mut created = Vec::new();
    for (what, answer) in &answers {
        let a = answer.as_ref().unwrap_or_else(|e| panic!("{what} in flight at SIGTERM was not answered: {e}"));
        let ok = if what == "create" { 201 } else { 202 };
        assert_eq!(a.status, ok, "{what}: {}", a.text);
        if what == "create" {
            created.push(a.body["gift_id"].as_str().unwrap().to_owned());
        }
    }
    println!("[sigterm] API: 30 requests in flight at SIGTERM, all answered; exit 0 after {api_exit_after:?}");

    // A new API sends the rest (10 of the first gifts, the 10 created while draining).
    let (_api2, api2) = fx.api(&[]);
    let rest: Vec<String> = ids[20..30].iter().chain(&created).cloned().collect();
    for (i, id) in rest.iter().enumerate() {
        assert_eq!(api2.send(id, &format!("rest-{i}")).0, 202);
    }
    let mut accepted_ids: Vec<String> = ids[..20].to_vec();
    accepted_ids.extend(rest);

    // Worker: a batch in flight at the signal.
    let lock = fx.lock_gifts("EXCLUSIVE");
    let mut first = fx.worker(&[("DB_POOL_MAX", "20".into()), ("SEND_FAILURE_RATE", "0".into())]);
    let mid_batch = "WITH locked AS (SELECT id FROM gifts";
    wait_until("the worker blocked mid-batch", Duration::from_secs(30), || fx.lock_waiters(mid_batch) >= 1);
    let t = Instant::now();
    while fx.lock_waiters(mid_batch) < 5 && t.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let in_flight = fx.lock_waiters(mid_batch) as usize;
    let signalled = Instant::now();
    first.signal("TERM");
    assert!(first.wait_exit(Duration::from_millis(500)).is_none(), "the worker must finish its batch first");
    fx.unlock(lock);
    let exit = first.wait_exit(Duration::from_secs(20)).expect("the worker exits after its batch");
    assert!(exit.success(), "worker exit status {exit:?}");
    wait_until("the stopping worker's last line", Duration::from_secs(5), || {
        first.log_lines().iter().any(|l| l["event"] == "STOPPED")
    });
    let first_logs = final_logs(&first);
    let finished = first_logs.iter().filter(|l| l["event"] == "SENT").count();
    assert!(finished >= in_flight, "{in_flight} writes were in flight, the stopping worker logged {finished} SENT");
    println!(
        "[sigterm] worker: {in_flight} writes in flight at SIGTERM; it finished them ({finished} SENT) and exited 0 \
         after {:?}",
        signalled.elapsed()
    );

    let second = fx.worker(&[]);
    fx.finish(&accepted_ids, Duration::from_secs(90), || {
        let mut logs = first_logs.clone();
        logs.extend(second.log_lines());
        logs
    });
}

// --- 5. two workers and the relay racing -------------------------------------------------------

/// Two workers (each with its relay, passes every 25 ms, stale re-arm after 6 s — just over
/// the retry window of 1 s visibility and no backoff) are running
/// while sends arrive; the API leaves its outbox rows due at once (PUBLISH_GRACE_MS=0), so
/// both relays race the API's own publish, and every third gift gets two extra messages by
/// hand, one of them after it finished. Half the pseudo-sends fail, so retries, FAILED
/// writes and re-armed messages race too. All end SENT or FAILED; none is SENT twice.
#[test]
fn two_workers_and_racing_relays_send_each_gift_at_most_once() {
    let Some((db, sqs)) = services() else { return };
    let fx = Fixture::new("race", &db, &sqs, None);
    let (_api, api) = fx.api(&[("PUBLISH_GRACE_MS", "0".into())]);
    let racing = [
        ("RELAY_INTERVAL_MS", "25".to_owned()),
        ("STALE_QUEUED_SECONDS", "6".to_owned()),
        ("VISIBILITY_TIMEOUT_SECONDS", "1".to_owned()),
        ("RETRY_BACKOFF_SECONDS", "0".to_owned()),
        ("SEND_FAILURE_RATE", "0.5".to_owned()),
    ];
    let (w1, w2) = (fx.worker(&racing), fx.worker(&racing));
    let ids: Vec<String> = (0..120).map(|_| api.create()).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(api.send(id, &format!("race-{i}")).0, 202);
        if i % 3 == 0 {
            fx.publish_raw(&format!("{{\"gift_id\":\"{id}\",\"request_id\":\"race-{i}\"}}"));
        }
    }
    // One more copy each once they are finished: a late duplicate of a terminal gift.
    let done = api.wait_terminal(&ids, Duration::from_secs(90));
    assert_eq!(done.len(), ids.len());
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        fx.publish_raw(&format!("{{\"gift_id\":\"{id}\",\"request_id\":\"race-{i}\"}}"));
    }
    let logs = || {
        let mut logs = w1.log_lines();
        logs.extend(w2.log_lines());
        logs
    };
    fx.finish(&ids, Duration::from_secs(90), logs);
    let all = logs();
    let relayed = all.iter().filter(|l| l["event"] == "RELAYED").count();
    let duplicates = all.iter().filter(|l| l["event"] == "DUPLICATE").count();
    assert!(duplicates >= ids.len() / 3, "the late copies were recognised as duplicates ({duplicates})");
    let by_worker = |w: &Proc| w.log_lines().iter().filter(|l| l["event"] == "SENT").count();
    println!(
        "[race] {relayed} relay publishes racing the API's; SENT by worker 1: {}, by worker 2: {}",
        by_worker(&w1),
        by_worker(&w2)
    );
}

// --- 6. secrets never reach logs or responses ---------------------------------------------------

/// A password-only cluster and a role whose password is a distinctive secret, given as
/// `DB_PASSWORD` the way the task definitions inject it from Secrets Manager (and once in a
/// `DATABASE_URL`), with a distinctive AWS secret key too. The run covers `--help`, failed
/// connections (wrong password at start, nothing listening, credentials rotated under a
/// running API), a normal create → send → SENT, client errors, and requests while the
/// database is stopped. Neither secret may appear in any log line (stdout and stderr) or
/// any HTTP response (body or headers).
#[test]
fn secrets_never_appear_in_logs_or_responses() {
    let Some((_, sqs)) = services() else { return };
    let nonce = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    let secret = format!("Pw7-{nonce}-zQx");
    let aws_secret = format!("AwsK-{nonce}-vYt");
    let Some(pg) = Cluster::start_new("secrets", Some("admin-only-password")) else { return };
    let admin = pg.admin_url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        // Role passwords cannot be bound parameters; the secret is alphanumeric and dashes.
        for sql in [
            format!("CREATE ROLE gift_app LOGIN PASSWORD '{secret}'"),
            "CREATE ROLE gift_other LOGIN PASSWORD 'something-else'".to_owned(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
        }
    });
    let fx = Fixture::new("secrets", &admin, &sqs, Some("gift_app"));
    let split = |user: &str, password: &str| -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", String::new()),
            ("DB_HOST", "127.0.0.1".into()),
            ("DB_PORT", pg.port.to_string()),
            ("DB_NAME", fx.db_name.clone()),
            ("DB_USER", user.into()),
            ("DB_PASSWORD", password.into()),
            ("AWS_SECRET_ACCESS_KEY", aws_secret.clone()),
            ("DB_ACQUIRE_TIMEOUT_MS", "1000".into()),
        ]
    };
    let mut outputs: Vec<String> = Vec::new();
    let mut answers: Vec<Answer> = Vec::new();
    let mut keep = |a: Result<Answer, String>, outputs: &mut Vec<String>| -> Answer {
        let a = a.unwrap();
        outputs.push(a.text.clone());
        outputs.extend(a.headers.iter().cloned());
        answers.push(a.clone());
        a
    };

    // --help with the secrets in the environment.
    for bin in [API, WORKER] {
        let out = Command::new(bin)
            .arg("--help")
            .env("DB_PASSWORD", &secret)
            .env("DATABASE_URL", format!("postgres://gift_app:{secret}@127.0.0.1:{}/x", pg.port))
            .env("AWS_SECRET_ACCESS_KEY", &aws_secret)
            .output()
            .unwrap();
        assert!(out.status.success());
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }

    // Failed connections at start: the secret as a wrong password; the secret in a URL to
    // a port where nothing listens. Both processes must exit non-zero, having said why.
    let nothing_listens = free_port();
    let starts: Vec<(&str, &str, EnvVars)> = vec![
        ("api, wrong password", API, fx.api_env(free_port(), &split("gift_other", &secret))),
        ("worker, wrong password", WORKER, fx.worker_env(&split("gift_other", &secret))),
        (
            "api, nothing listening",
            API,
            fx.api_env(
                free_port(),
                &[
                    ("DATABASE_URL", format!("postgres://gift_app:{secret}@127.0.0.1:{nothing_listens}/gift")),
                    ("DB_ACQUIRE_TIMEOUT_MS", "500".into()),
                    ("AWS_SECRET_ACCESS_KEY", aws_secret.clone()),
                ],
            ),
        ),
    ];
    let mut failed_logs = Vec::new();
    for (what, bin, env) in &starts {
        let mut p = Proc::start_capturing_stderr(bin, env);
        let exit = p.wait_exit(Duration::from_secs(30)).unwrap_or_else(|| panic!("{what}: still running"));
        assert!(!exit.success(), "{what} must fail");
        let lines = final_lines(&p);
        assert!(lines.iter().any(|l| l.contains("STARTUP_FAILED")), "{what}: {lines:?}");
        failed_logs.push(format!("{what}: {}", lines.iter().find(|l| l.contains("STARTUP_FAILED")).unwrap()));
        outputs.extend(lines);
    }
    assert!(failed_logs[0].contains("password authentication failed"), "{}", failed_logs[0]);

    // A normal run with the secret as DB_PASSWORD, at debug level.
    let port = free_port();
    let mut env = fx.api_env(port, &split("gift_app", &secret));
    env.push(("LOG_LEVEL", "debug".into()));
    let mut api_proc = Proc::start_capturing_stderr(API, &env);
    let api = Client::new(port);
    api.wait_healthy(Duration::from_secs(30));
    let mut wenv = fx.worker_env(&split("gift_app", &secret));
    wenv.push(("SEND_FAILURE_RATE", "0".into()));
    wenv.push(("LOG_LEVEL", "debug".into()));
    let worker = Proc::start_capturing_stderr(WORKER, &wenv);

    let created =
        keep(api.try_call("POST", "/gifts", None, Some(r#"{"amount": 1200, "message": "hi"}"#)), &mut outputs);
    assert_eq!(created.status, 201);
    let id = created.body["gift_id"].as_str().unwrap().to_owned();
    assert_eq!(keep(api.try_call("POST", &format!("/gifts/{id}/send"), Some("sec-1"), None), &mut outputs).status, 202);
    let mut accepted_ids = vec![id.clone()];
    for (method, path, key, body, status) in [
        ("POST", "/gifts".to_owned(), None, Some("{not json"), 400),
        ("POST", "/gifts".to_owned(), None, Some(r#"{"amount": -1}"#), 400),
        ("GET", "/gifts/not-a-uuid".to_owned(), None, None, 400),
        ("GET", "/gifts/00000000-0000-4000-8000-000000000000".to_owned(), None, None, 404),
        ("DELETE", "/gifts".to_owned(), None, None, 405),
        ("POST", format!("/gifts/{id}/send"), Some("sec-2"), None, 409),
        ("GET", "/nowhere".to_owned(), None, None, 404),
    ] {
        let a = keep(api.try_call(method, &path, key, body), &mut outputs);
        assert_eq!(a.status, status, "{method} {path}: {}", a.text);
    }
    let big = format!("{{\"amount\": 1, \"message\": \"{}\"}}", "x".repeat(40_000));
    assert_eq!(keep(api.post_too_large("/gifts", &big), &mut outputs).status, 413);
    assert_eq!(keep(api.try_call("GET", "/readyz", None, None), &mut outputs).status, 200);

    // Credentials rotated under the running API: its pooled sessions are ended and new ones
    // are refused with the secret it still has.
    let sql = |s: String| {
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(s)).execute(&mut c).await.unwrap();
        })
    };
    sql("ALTER ROLE gift_app PASSWORD 'rotated-elsewhere'".to_owned());
    sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'gift_app'".to_owned());
    let mut during_rotation = Vec::new();
    for _ in 0..3 {
        let a = keep(api.try_call("POST", "/gifts", None, Some(r#"{"amount": 5}"#)), &mut outputs);
        during_rotation.push(a.status);
        let r = keep(api.try_call("GET", "/readyz", None, None), &mut outputs);
        during_rotation.push(r.status);
    }
    assert!(during_rotation.iter().all(|s| *s >= 500), "requests fail with the old password: {during_rotation:?}");
    sql(format!("ALTER ROLE gift_app PASSWORD '{secret}'"));

    // The database stopped: failed connections and failed requests of every kind.
    pg.stop();
    let mut while_down = Vec::new();
    for (method, path, key, body) in [
        ("GET", "/readyz".to_owned(), None, None),
        ("POST", "/gifts".to_owned(), None, Some(r#"{"amount": 9}"#)),
        ("GET", format!("/gifts/{id}"), None, None),
        ("POST", format!("/gifts/{id}/send"), Some("sec-3"), None),
    ] {
        let a = keep(api.try_call(method, &path, key, body), &mut outputs);
        while_down.push(a.status);
        assert_eq!(a.status, 503, "{method} {path}: {}", a.text);
    }
    pg.start();
    wait_until("ready after the restart", Duration::from_secs(30), || {
        api.try_call("GET", "/readyz", None, None).is_ok_and(|a| a.status == 200)
    });
    let again = keep(api.try_call("POST", "/gifts", None, Some(r#"{"amount": 3}"#)), &mut outputs);
    assert_eq!(again.status, 201);
    let id2 = again.body["gift_id"].as_str().unwrap().to_owned();
    assert_eq!(
        keep(api.try_call("POST", &format!("/gifts/{id2}/send"), Some("sec-4"), None), &mut outputs).status,
        202
    );
    accepted_ids.push(id2);
    fx.finish(&accepted_ids, Duration::from_secs(60), || worker.log_lines());

    api_proc.signal("TERM");
    assert!(api_proc.wait_exit(Duration::from_secs(15)).is_some_and(|s| s.success()));
    outputs.extend(final_lines(&api_proc));
    outputs.extend(worker.raw_lines());
    let leaks: Vec<&String> = outputs.iter().filter(|o| o.contains(&secret) || o.contains(&aws_secret)).collect();
    assert!(leaks.is_empty(), "a secret leaked: {leaks:?}");
    let readyz_reasons: Vec<&Value> = answers
        .iter()
        .filter(|a| a.status == 503 && a.body.get("reason").is_some())
        .map(|a| &a.body["reason"])
        .collect();
    println!(
        "[secrets] {} output lines/bodies/headers scanned ({} HTTP answers), neither secret found; statuses during \
         rotation {during_rotation:?}, while stopped {while_down:?}",
        outputs.len(),
        answers.len()
    );
    for line in &failed_logs {
        println!("[secrets] failed start, as logged: {line}");
    }
    println!("[secrets] /readyz reasons returned to the client: {readyz_reasons:?}");
}
