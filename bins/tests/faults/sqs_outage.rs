//! The SQS endpoint stopped under load, then started.

use std::time::{Duration, Instant};

use crate::fixture::{services, wait_until, Fixture};
use crate::load::{accepted, status_histogram, Call, Load};
use crate::support::Proxy;

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
    let counts = fx.drain_and_check(&accepted(&calls), Duration::from_secs(90), || worker.log_lines());
    let relayed = worker.log_lines().iter().filter(|l| l["event"] == "RELAYED").count();
    assert!(relayed >= publish_failed, "{relayed} relayed for {publish_failed} failed publishes");
    assert!(counts.get("SENT").copied().unwrap_or(0) > 0);
}
