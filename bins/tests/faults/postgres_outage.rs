//! PostgreSQL stopped under load, then started.

use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::fixture::{services, wait_until, Fixture};
use crate::load::{accepted, assert_unavailable_shape, send_retrying, status_histogram, Call, Load};
use crate::support::{Answer, Client};

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
    // The stale deadline just above the retry window (5 × (5 s visibility + 1 s backoff)):
    // the backstop for a message whose last receive fell inside the outage. The API sets it
    // after its own publishes, the worker's relay after its.
    let stale = ("STALE_QUEUED_SECONDS", "31".to_owned());
    let (mut api_proc, api) = fx.api(&[("DB_ACQUIRE_TIMEOUT_MS", acquire_ms.to_string()), stale.clone()]);
    let mut worker = fx.worker(&[stale]);
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
    let not_ready = wait_not_ready(&api);
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
    let unavailable = answered_within(&calls, bound);
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
    fx.drain_and_check(&accepted(&calls), Duration::from_secs(90), || worker.log_lines());
}

/// Waits until `/readyz` says 503 with a database reason, and returns that answer.
fn wait_not_ready(api: &Client) -> Answer {
    let mut not_ready = None;
    wait_until("/readyz reporting the database", Duration::from_secs(15), || {
        let a = api.try_call("GET", "/readyz", None, None).expect("/readyz answers while the database is down");
        let hit = a.status == 503 && a.body["reason"].as_str().is_some_and(|r| r.starts_with("database"));
        if hit {
            not_ready = Some(a);
        }
        hit
    });
    not_ready.unwrap()
}

/// Checks that every call was answered within `bound`, with a success or a 503 in the error
/// shape; returns how many were 503.
fn answered_within(calls: &[Call], bound: Duration) -> usize {
    let mut unavailable = 0;
    for c in calls {
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
    unavailable
}
