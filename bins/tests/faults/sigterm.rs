//! SIGTERM during load: the API drains its in-flight requests, the worker its batch.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixture::{final_logs, services, wait_until, Fixture};
use crate::support::{Answer, Client, Proc};

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
    let (api_proc, api) = fx.api(std::slice::from_ref(&pool));
    let ids: Vec<String> = (0..40).map(|_| api.create()).collect();

    let created = api_drains(&fx, api_proc, &api, &ids);

    // A new API sends the rest (10 of the first gifts, the 10 created while draining).
    let (_api2, api2) = fx.api(&[]);
    let rest: Vec<String> = ids[20..30].iter().chain(&created).cloned().collect();
    for (i, id) in rest.iter().enumerate() {
        assert_eq!(api2.send(id, &format!("rest-{i}")).0, 202);
    }
    let mut accepted_ids: Vec<String> = ids[..20].to_vec();
    accepted_ids.extend(rest);

    let first_logs = worker_drains(&fx);

    let second = fx.worker(&[]);
    fx.drain_and_check(&accepted_ids, Duration::from_secs(90), || {
        let mut logs = first_logs.clone();
        logs.extend(second.log_lines());
        logs
    });
}

/// The API: 30 requests held inside it by a lock at SIGTERM, all answered once the lock
/// goes, then a clean exit. Returns the gifts the held creates made.
fn api_drains(fx: &Fixture, mut api_proc: Proc, api: &Client, ids: &[String]) -> Vec<String> {
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
    created
}

/// The worker: held mid-batch at SIGTERM, it finishes the batch (each held write logged
/// SENT) and exits 0. Returns its log.
fn worker_drains(fx: &Fixture) -> Vec<Value> {
    // Worker: a batch in flight at the signal.
    let lock = fx.lock_gifts("EXCLUSIVE");
    let mut first = fx.worker(&[("DB_POOL_MAX", "20".into()), ("SEND_FAILURE_RATE", "0".into())]);
    let in_flight = fx.worker_mid_batch("the worker blocked mid-batch");
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
    first_logs
}
