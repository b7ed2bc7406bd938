//! The ECS binaries against real PostgreSQL and SQS (moto), started the way the task
//! definitions start them. Needs `TEST_DATABASE_URL` and `TEST_SQS_ENDPOINT` (scripts/test
//! provides both and makes them required).

mod support;

use std::time::Duration;

use gift_runtime::conformance::sqs_emulator;
use serde_json::Value;
use support::{create_database, events_for, free_port, required, service_env, Client, Proc, Proxy};

const API: &str = env!("CARGO_BIN_EXE_gift-api");
const WORKER: &str = env!("CARGO_BIN_EXE_gift-worker");

struct Env {
    database_url: String,
    db_name: String,
    sqs_endpoint: String,
    queue_url: String,
    dlq_url: String,
    rt: tokio::runtime::Runtime,
    sqs: aws_sdk_sqs::Client,
}

/// A fresh database and a fresh queue + DLQ (redrive after 5 receives).
fn setup(tag: &str) -> Option<Env> {
    let admin = required("TEST_DATABASE_URL")?;
    let sqs_endpoint = required("TEST_SQS_ENDPOINT")?;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db_name = format!("gift_{tag}_{}", free_port());
    let database_url = create_database(&rt, &admin, &db_name, None);
    let sqs = sqs_emulator::client(&sqs_endpoint);
    let (queue_url, dlq_url) = rt.block_on(sqs_emulator::queue_with_dlq(&sqs, &db_name, 5, 5));
    Some(Env { database_url, db_name, sqs_endpoint, queue_url, dlq_url, rt, sqs })
}

impl Env {
    fn common(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        service_env(&self.database_url, &self.queue_url, endpoint)
    }

    fn api(&self, port: u16, endpoint: &str, extra: &[(&'static str, String)]) -> (Proc, Client) {
        let mut env = self.common(endpoint);
        env.push(("PORT", port.to_string()));
        env.push(("HOST", "127.0.0.1".into()));
        env.push(("PUBLISH_GRACE_MS", "500".into()));
        env.extend_from_slice(extra);
        let proc = Proc::start(API, &env);
        let client = Client::new(port);
        client.wait_healthy(Duration::from_secs(20));
        (proc, client)
    }

    fn worker(&self, failure_rate: &str, endpoint: &str) -> Proc {
        let mut env = self.common(endpoint);
        env.push(("SEND_FAILURE_RATE", failure_rate.into()));
        env.push(("RETRY_BACKOFF_SECONDS", "1".into()));
        env.push(("WORKER_WAIT_SECONDS", "1".into()));
        env.push(("RELAY_INTERVAL_MS", "200".into()));
        env.push(("HEARTBEAT_FILE", format!("/tmp/{}-{}.heartbeat", self.db_name, free_port())));
        Proc::start(WORKER, &env)
    }

    fn dlq_bodies(&self) -> Vec<String> {
        self.rt.block_on(async {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
            out.messages.unwrap_or_default().into_iter().filter_map(|m| m.body).collect()
        })
    }

    fn publish_raw(&self, body: &str) {
        self.rt.block_on(async {
            self.sqs.send_message().queue_url(&self.queue_url).message_body(body).send().await.unwrap()
        });
    }

    fn db_counts(&self) -> Vec<(String, i64)> {
        self.rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
            sqlx::query_as("SELECT status, COUNT(*) FROM gifts GROUP BY status ORDER BY status")
                .fetch_all(&mut c)
                .await
                .unwrap()
        })
    }
}

#[test]
fn both_config_forms_start_the_api_and_a_missing_variable_is_named() {
    let Some(env) = setup("config") else { return };
    let (_a, url_form) = env.api(free_port(), &env.sqs_endpoint, &[]);
    assert_eq!(url_form.call("GET", "/readyz", None, None), (200, serde_json::json!({"status": "ready"})));

    let url = url::Url::parse(&env.database_url).unwrap();
    let split = [
        ("DATABASE_URL", String::new()),
        ("DB_HOST", url.host_str().unwrap().to_owned()),
        ("DB_PORT", url.port().unwrap_or(5432).to_string()),
        ("DB_NAME", env.db_name.clone()),
        ("DB_USER", url.username().to_owned()),
        ("DB_PASSWORD", url.password().unwrap_or("").to_owned()),
    ];
    let (_b, split_form) = env.api(free_port(), &env.sqs_endpoint, &split);
    assert_eq!(split_form.call("GET", "/readyz", None, None).0, 200);
    let id = split_form.create();
    assert_eq!(url_form.status(&id)["gift_id"], Value::String(id.clone()), "both forms reach the same database");

    let out = std::process::Command::new(API)
        .env_clear()
        .env("SQS_QUEUE_URL", &env.queue_url)
        .env("DB_HOST", "127.0.0.1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("DB_NAME") && text.contains("DB_USER"), "{text}");
}

#[test]
fn create_send_reaches_sent() {
    let Some(env) = setup("flow") else { return };
    let (_api, api) = env.api(free_port(), &env.sqs_endpoint, &[]);
    let _worker = env.worker("0", &env.sqs_endpoint);
    let id = api.create();
    assert_eq!(api.send(&id, "req-1").0, 202);
    assert_eq!(api.wait_terminal(std::slice::from_ref(&id), Duration::from_secs(30))[0]["status"], "SENT");
    // Each process names its connections, so an operator can tell them apart.
    let names: Vec<(String,)> = env.rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&env.database_url).await.unwrap();
        sqlx::query_as("SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = $1 ORDER BY 1")
            .bind(&env.db_name)
            .fetch_all(&mut c)
            .await
            .unwrap()
    });
    let names: Vec<&str> = names.iter().map(|(n,)| n.as_str()).collect();
    assert!(names.contains(&"gift-api") && names.contains(&"gift-worker"), "{names:?}");
}

#[test]
fn always_failing_sends_fail_after_five_receives_and_reach_the_dlq() {
    let Some(env) = setup("fail") else { return };
    let (_api, api) = env.api(free_port(), &env.sqs_endpoint, &[]);
    let failing = env.worker("1", &env.sqs_endpoint);
    let id = api.create();
    assert_eq!(api.send(&id, "req-2").0, 202);
    let done = api.wait_terminal(std::slice::from_ref(&id), Duration::from_secs(60));
    assert_eq!(done[0]["status"], "FAILED");
    assert!(done[0]["last_error"].as_str().unwrap().contains("attempt 5"));
    let logs = failing.log_lines_once(Duration::from_secs(5), |l| events_for(l, &id, "FAILED") > 0);
    assert_eq!(events_for(&logs, &id, "RETRY"), 4);
    assert_eq!(events_for(&logs, &id, "FAILED"), 1);
    // SQS moves the message to the DLQ on the receive after the fifth.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !env.dlq_bodies().iter().any(|b| b.contains(&id)) {
        assert!(std::time::Instant::now() < deadline, "message never reached the DLQ");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn two_workers_and_injected_duplicates_send_each_gift_once() {
    let Some(env) = setup("race") else { return };
    let (_api, api) = env.api(free_port(), &env.sqs_endpoint, &[]);
    let ids: Vec<String> = (0..200).map(|_| api.create()).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(api.send(id, &format!("k{i}")).0, 202);
        // A duplicate by hand for every other gift.
        if i % 2 == 0 {
            env.publish_raw(&format!("{{\"gift_id\":\"{id}\",\"request_id\":\"k{i}\"}}"));
        }
    }
    let (w1, w2) = (env.worker("0.2", &env.sqs_endpoint), env.worker("0.2", &env.sqs_endpoint));
    api.wait_terminal(&ids, Duration::from_secs(120));
    let mut logs = w1.log_lines();
    logs.extend(w2.log_lines());
    for id in &ids {
        assert!(events_for(&logs, id, "SENT") <= 1, "{id} SENT twice");
    }
    println!("final statuses: {:?}", env.db_counts());
}

#[test]
fn sends_accepted_while_sqs_is_down_are_processed_when_it_returns() {
    let Some(env) = setup("outage") else { return };
    // The emulator keeps its queues while the endpoint the services use goes away.
    let proxy = Proxy::start(&env.sqs_endpoint);
    let endpoint = proxy.url();
    let (_api, api) = env.api(free_port(), &endpoint, &[]);
    let worker = env.worker("0", &endpoint);
    proxy.set_up(false);
    let ids: Vec<String> = (0..20).map(|_| api.create()).collect();
    for (i, id) in ids.iter().enumerate() {
        let (code, body) = api.send(id, &format!("down-{i}"));
        assert_eq!(code, 202, "the API must keep accepting while SQS is down: {body}");
    }
    std::thread::sleep(Duration::from_secs(3));
    assert!(ids.iter().all(|id| api.status(id)["status"] == "QUEUED"), "nothing can finish while SQS is down");
    proxy.set_up(true);
    let done = api.wait_terminal(&ids, Duration::from_secs(90));
    assert!(done.iter().all(|g| g["status"] == "SENT"));
    let relayed_in = |l: &[Value]| l.iter().filter(|l| l["event"] == "RELAYED").count();
    let relayed = relayed_in(&worker.log_lines_once(Duration::from_secs(5), |l| relayed_in(l) >= ids.len()));
    println!("{relayed} messages published by the relay after the outage");
    assert!(relayed >= ids.len(), "the relay, not a person, published the accepted sends");
}

/// `gift-worker healthcheck` (the container health check) passes while the worker loop and
/// the relay both turn, and fails once they stop turning.
#[test]
fn the_health_check_follows_the_worker_loop_and_the_relay() {
    let Some(env) = setup("health") else { return };
    let heartbeat = std::env::temp_dir().join(format!("{}.heartbeat", env.db_name));
    let mut vars = env.common(&env.sqs_endpoint);
    vars.push(("HEARTBEAT_FILE", heartbeat.display().to_string()));
    vars.push(("WORKER_WAIT_SECONDS", "1".into()));
    vars.push(("RELAY_INTERVAL_MS", "200".into()));
    let healthy = || {
        std::process::Command::new(WORKER)
            .args(["healthcheck", "--max-age-seconds", "3"])
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .status()
            .expect("the health check runs")
            .success()
    };
    assert!(!healthy(), "nothing has turned yet");
    let worker = Proc::start(WORKER, &vars);
    let until = |want: bool, within: Duration| {
        let deadline = std::time::Instant::now() + within;
        while healthy() != want {
            assert!(std::time::Instant::now() < deadline, "the health check did not become {want}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    until(true, Duration::from_secs(20));
    worker.signal("STOP");
    until(false, Duration::from_secs(10));
    worker.signal("CONT");
    until(true, Duration::from_secs(10));
    for file in [heartbeat.clone(), gift_bins::wiring::relay_heartbeat_path(&heartbeat)] {
        std::fs::remove_file(file).ok();
    }
}
