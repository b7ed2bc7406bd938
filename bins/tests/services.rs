//! The ECS binaries against real PostgreSQL and SQS (moto), started the way the task
//! definitions start them. Needs `TEST_DATABASE_URL` and `TEST_SQS_ENDPOINT` (scripts/test
//! provides both and makes them required).

#[path = "support/scratch.rs"]
mod scratch;
mod support;

use std::ops::Deref;
use std::time::Duration;

use scratch::Scratch;
use serde_json::Value;
use support::{events_for, free_port, Client, Proc, Proxy};

const API: &str = env!("CARGO_BIN_EXE_gift-api");
const WORKER: &str = env!("CARGO_BIN_EXE_gift-worker");

/// A fresh database and a fresh queue + DLQ (redrive after 5 receives), and the binaries
/// started on them.
struct Env(Scratch);

impl Deref for Env {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

fn setup(tag: &str) -> Option<Env> {
    Scratch::from_env("gift", tag).map(Env)
}

impl Env {
    fn api(&self, port: u16, endpoint: &str, extra: &[(&'static str, String)]) -> (Proc, Client) {
        let mut env = self.service_env(endpoint);
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
        self.worker_with(failure_rate, endpoint, &[])
    }

    fn worker_with(&self, failure_rate: &str, endpoint: &str, extra: &[(&'static str, String)]) -> Proc {
        let mut env = self.service_env(endpoint);
        env.extend_from_slice(extra);
        env.push(("SEND_FAILURE_RATE", failure_rate.into()));
        env.push(("RETRY_BACKOFF_SECONDS", "1".into()));
        env.push(("WORKER_WAIT_SECONDS", "1".into()));
        env.push(("RELAY_INTERVAL_MS", "200".into()));
        env.push(("HEARTBEAT_FILE", format!("/tmp/{}-{}.heartbeat", self.db_name, free_port())));
        Proc::start(WORKER, &env)
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
    let mut vars = env.service_env(&env.sqs_endpoint);
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

/// With `DOGSTATSD_ADDR` set, both services send their metrics there as DogStatsD datagrams,
/// each tagged with Datadog's unified service tags, the latencies as distributions.
#[test]
fn metrics_reach_the_dogstatsd_agent_with_the_unified_service_tags() {
    let Some(env) = setup("dogstatsd") else { return };
    let agent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    agent.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let tags = [
        ("DOGSTATSD_ADDR", agent.local_addr().unwrap().to_string()),
        ("DD_ENV", "ci".to_owned()),
        ("DD_VERSION", "1.2.3".to_owned()),
    ];
    let named = |service: &str| [tags.as_slice(), &[("DD_SERVICE", service.to_owned())]].concat();
    let (api, client) = env.api(free_port(), &env.sqs_endpoint, &named("gift-api"));
    let _worker = env.worker_with("0", &env.sqs_endpoint, &tags);
    let id = client.create();
    assert_eq!(client.send(&id, "dsd-1").0, 202);
    assert_eq!(client.wait_terminal(std::slice::from_ref(&id), Duration::from_secs(30))[0]["status"], "SENT");

    let wanted = [
        ("gift.http.requests:", "service:gift-api"),
        ("gift.http.request.duration:", "service:gift-api"),
        ("gift.sends:", "service:gift-api"),
        ("gift.worker.outcomes:", "service:worker"),
        ("gift.accept_to_sent:", "service:worker"),
        ("gift.db.pool.size:", "service:worker"),
    ];
    let mut lines: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let seen = |lines: &[String], (metric, service): (&str, &str)| {
        lines.iter().any(|l| l.starts_with(metric) && l.contains(service))
    };
    while std::time::Instant::now() < deadline && !wanted.iter().all(|w| seen(&lines, *w)) {
        let mut buf = [0u8; 65_536];
        if let Ok(n) = agent.recv(&mut buf) {
            lines.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned));
        }
    }
    for w in wanted {
        assert!(seen(&lines, w), "no {w:?} datagram in {lines:#?}");
    }
    for line in lines.iter().filter(|l| l.starts_with("gift.")) {
        assert!(line.contains("env:ci") && line.contains("version:1.2.3"), "{line}");
    }
    let accept = lines.iter().find(|l| l.starts_with("gift.accept_to_sent:")).unwrap();
    assert!(accept.contains("|d"), "a distribution: {accept}");
    let sent = lines.iter().find(|l| l.starts_with("gift.worker.outcomes:") && l.contains("outcome:sent"));
    assert!(sent.is_some(), "{lines:#?}");
    // The logs name the service as the metrics do: DD_SERVICE where set, else the short name.
    assert!(api.log_lines().iter().all(|l| l["service"] == "gift-api"), "the API's lines say gift-api");
}

/// A send with its caller's `traceparent`, through an API whose publish works and through
/// one whose SQS is unreachable (the outbox row and the relay carry it instead): both
/// arrive in the worker's span, so the worker's SENT line names the request's trace.
#[test]
fn a_requests_traceparent_reaches_the_workers_log_line_directly_and_through_the_outbox() {
    let Some(env) = setup("trace") else { return };
    let (direct_port, relayed_port) = (free_port(), free_port());
    let (_direct, direct) = env.api(direct_port, &env.sqs_endpoint, &[]);
    let (_relayed, relayed) = env.api(relayed_port, "http://127.0.0.1:1", &[]);
    let worker = env.worker("0", &env.sqs_endpoint);
    let traced_send = |port: u16, client: &Client, trace_id: &str| {
        let id = client.create();
        let url = format!("http://127.0.0.1:{port}/gifts/{id}/send");
        let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
        let res = ureq::post(&url).set("Idempotency-Key", "t-1").set("traceparent", &traceparent).call();
        assert_eq!(res.map(|r| r.status()).unwrap_or_else(|e| panic!("{e}")), 202);
        id
    };
    let direct_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let relayed_trace = "0af7651916cd43dd8448eb211c80319c";
    let first = traced_send(direct_port, &direct, direct_trace);
    let second = traced_send(relayed_port, &relayed, relayed_trace);
    let ids = [first.clone(), second.clone()];
    let done = direct.wait_terminal(&ids, Duration::from_secs(60));
    assert!(done.iter().all(|g| g["status"] == "SENT"), "{done:?}");

    let logs = worker.log_lines_once(Duration::from_secs(5), |l| events_for(l, &second, "SENT") > 0);
    for (gift, trace_id) in [(&first, direct_trace), (&second, relayed_trace)] {
        let sent = logs.iter().find(|l| l["gift_id"] == gift.as_str() && l["event"] == "SENT");
        let sent = sent.unwrap_or_else(|| panic!("no SENT line for {gift}"));
        assert_eq!(sent["trace_id"], trace_id, "{sent}");
        let low = u64::from_str_radix(&trace_id[16..], 16).unwrap();
        assert_eq!(sent["dd.trace_id"], low.to_string(), "{sent}");
        assert!(sent["span_id"].as_str().is_some_and(|s| s.len() == 16 && s != "00f067aa0ba902b7"), "{sent}");
    }
    let relayed_line = logs.iter().find(|l| l["gift_id"] == second.as_str() && l["event"] == "RELAYED");
    assert!(relayed_line.is_some_and(|l| l["trace_id"] == relayed_trace), "the relay published it: {logs:?}");
}
