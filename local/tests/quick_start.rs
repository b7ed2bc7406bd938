//! The quick-start binary, end to end: as a new user would run it.

#[path = "../../bins/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::{events_for, free_port, temp_dir, Client, Proc};

const BIN: &str = env!("CARGO_BIN_EXE_gift-local");

fn start(data: &std::path::Path, port: u16, failure_rate: &str) -> Proc {
    Proc::start(
        BIN,
        &[
            ("PORT", port.to_string()),
            ("DATA_FILE", data.display().to_string()),
            ("SEND_FAILURE_RATE", failure_rate.into()),
            ("RETRY_BACKOFF_SECONDS", "1".into()),
            ("VISIBILITY_TIMEOUT_SECONDS", "2".into()),
            ("WORKER_WAIT_SECONDS", "1".into()),
            ("PUBLISH_GRACE_MS", "500".into()),
        ],
    )
}

#[test]
fn a_send_reaches_sent_and_keys_behave() {
    let dir = temp_dir("local-sent");
    let port = free_port();
    let _proc = start(&dir.join("data.sqlite"), port, "0");
    let api = Client::new(port);
    api.wait_healthy(Duration::from_secs(10));
    let id = api.create();
    let (code, first) = api.send(&id, "order-1");
    assert_eq!(code, 202, "{first}");
    let (code, again) = api.send(&id, "order-1");
    assert_eq!((code, &again), (200, &first));
    assert_eq!(api.send(&id, "order-2").0, 409);
    let done = api.wait_terminal(std::slice::from_ref(&id), Duration::from_secs(10));
    assert_eq!(done[0]["status"], "SENT");
}

#[test]
fn with_every_send_failing_a_gift_fails_after_exactly_five_attempts() {
    let dir = temp_dir("local-failed");
    let port = free_port();
    let proc = start(&dir.join("data.sqlite"), port, "1");
    let api = Client::new(port);
    api.wait_healthy(Duration::from_secs(10));
    let id = api.create();
    assert_eq!(api.send(&id, "k").0, 202);
    let done = api.wait_terminal(std::slice::from_ref(&id), Duration::from_secs(60));
    assert_eq!(done[0]["status"], "FAILED");
    assert!(done[0]["last_error"].as_str().unwrap().contains("attempt 5"), "{}", done[0]);
    let logs = proc.log_lines_once(Duration::from_secs(5), |l| events_for(l, &id, "FAILED") > 0);
    assert_eq!(events_for(&logs, &id, "RETRY"), 4, "four failed attempts before the last");
    assert_eq!(events_for(&logs, &id, "FAILED"), 1);
    // Every log line carries the fields the dashboards rely on.
    assert!(logs.iter().all(|l| l["timestamp"].is_string() && l["service"] == "local" && l["status"].is_string()));
}

#[test]
fn kill_dash_nine_while_queued_loses_nothing() {
    let dir = temp_dir("local-kill");
    let data = dir.join("data.sqlite");
    let port = free_port();
    let mut proc = start(&data, port, "0.3");
    let api = Client::new(port);
    api.wait_healthy(Duration::from_secs(10));
    let ids: Vec<String> = (0..30).map(|_| api.create()).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(api.send(id, &format!("key-{i}")).0, 202);
    }
    proc.kill9();
    let mut logs = proc.log_lines();
    let proc = start(&data, port, "0.3");
    api.wait_healthy(Duration::from_secs(10));
    let done = api.wait_terminal(&ids, Duration::from_secs(90));
    let sent = done.iter().filter(|g| g["status"] == "SENT").count();
    println!("after kill -9 and restart: {sent} SENT, {} FAILED of {}", done.len() - sent, done.len());
    // Each gift went to SENT at most once across both processes.
    logs.extend(proc.log_lines());
    for id in &ids {
        assert!(events_for(&logs, id, "SENT") <= 1, "{id} SENT twice");
    }
}

#[test]
fn sigterm_stops_cleanly() {
    let dir = temp_dir("local-term");
    let port = free_port();
    let mut proc = start(&dir.join("data.sqlite"), port, "0");
    Client::new(port).wait_healthy(Duration::from_secs(10));
    let status = proc.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_configuration_names_the_variable() {
    let out = std::process::Command::new(BIN).env("SEND_FAILURE_RATE", "1.5").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SEND_FAILURE_RATE"), "{err}");
}

#[test]
fn version_names_the_release_and_the_commit_and_the_first_line_says_it_too() {
    let out = std::process::Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let version = String::from_utf8_lossy(&out.stdout);
    let expected = format!("gift-local {} (git ", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version}");

    let dir = temp_dir("local-version");
    let port = free_port();
    let proc = start(&dir.join("data.sqlite"), port, "0");
    Client::new(port).wait_healthy(Duration::from_secs(10));
    let lines = proc.log_lines_once(Duration::from_secs(5), |l| !l.is_empty());
    let first = &lines[0];
    assert_eq!(first["event"], "STARTING", "{first}");
    assert_eq!(first["version"], env!("CARGO_PKG_VERSION"), "{first}");
    assert!(first["git_sha"].as_str().is_some_and(|s| !s.is_empty()), "{first}");
}

fn scrape(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    ureq::get(&url).call().expect("GET /metrics answers").into_string().expect("a text body")
}

/// The sum of the samples of `name` whose labels include every one of `labels`.
fn sample_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| series.split('{').next() == Some(name) && labels.iter().all(|want| series.contains(want)))
        .filter_map(|(_, value)| value.parse::<f64>().ok())
        .sum()
}

/// The metric names `terraform/datadog.tf` queries.
fn monitored_names() -> Vec<String> {
    let tf = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../terraform/datadog.tf")).unwrap();
    let mut names: Vec<String> = tf
        .match_indices("gift.")
        .map(|(at, _)| tf[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_').collect())
        .filter(|n: &String| n.len() > "gift.".len() && !n.ends_with('.'))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `/metrics` shows the service's metrics in Prometheus text, moving as gifts are sent, and
/// every metric a Datadog monitor or the dashboard queries is one the service records.
#[test]
fn metrics_move_under_load_and_cover_every_name_the_monitors_use() {
    let monitored = monitored_names();
    assert!(monitored.len() >= 5, "datadog.tf's monitors and dashboard query the service's metrics: {monitored:?}");
    for name in monitored {
        assert!(gift_core::metrics::NAMES.contains(&name.as_str()), "datadog.tf queries {name}, which nothing records");
    }

    let dir = temp_dir("local-metrics");
    let port = free_port();
    let _proc = start(&dir.join("data.sqlite"), port, "0");
    let api = Client::new(port);
    api.wait_healthy(Duration::from_secs(10));
    let before = scrape(port);
    let ids: Vec<String> = (0..5).map(|_| api.create()).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(api.send(id, &format!("m-{i}")).0, 202);
    }
    assert_eq!(api.send(&ids[0], "m-0").0, 200, "a replay");
    assert_eq!(api.send(&ids[0], "other").0, 409, "a conflict");
    api.wait_terminal(&ids, Duration::from_secs(20));
    // The gauges are sampled every few seconds; wait until they and the counters show.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let after = loop {
        let text = scrape(port);
        let all = gift_core::metrics::NAMES.iter().all(|n| text.contains(&format!("\n{}", n.replace('.', "_"))));
        if all || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for name in gift_core::metrics::NAMES {
        let prom = name.replace('.', "_");
        assert!(after.contains(&format!("\n{prom}")), "{prom} missing from /metrics:\n{after}");
    }
    let count = |text: &str, name: &str, labels: &[&str]| sample_sum(text, name, labels);
    let grew = |name: &str, labels: &[&str]| count(&after, name, labels) - count(&before, name, labels);
    assert_eq!(grew("gift_sends", &["outcome=\"accepted\""]), 5.0, "{after}");
    assert_eq!(grew("gift_sends", &["outcome=\"replayed\""]), 1.0);
    assert_eq!(grew("gift_sends", &["outcome=\"conflict\""]), 1.0);
    assert_eq!(grew("gift_worker_outcomes", &["outcome=\"sent\""]), 5.0);
    assert_eq!(grew("gift_worker_pseudo_sends", &["outcome=\"ok\""]), 5.0);
    assert_eq!(count(&after, "gift_accept_to_sent_count", &[]), 5.0, "{after}");
    let created = ["route=\"/gifts\"", "method=\"POST\"", "status=\"201\""];
    assert_eq!(grew("gift_http_requests", &created), 5.0);
    assert!(count(&after, "gift_db_pool_size", &[]) >= 1.0);
    // Every series carries the unified service tags.
    let series = after.lines().find(|l| l.starts_with("gift_sends{")).expect("a gift_sends series");
    for tag in ["service=\"local\"", "env=\"local\"", "version=\""] {
        assert!(series.contains(tag), "{series} lacks {tag}");
    }
}
