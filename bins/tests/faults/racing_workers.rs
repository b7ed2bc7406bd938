//! Two workers and their relays racing the API's publish and duplicates by hand.

use std::time::Duration;

use crate::fixture::{services, Fixture};
use crate::support::Proc;

/// Two workers (each with its relay, passes every 25 ms, stale deadline 6 s — just over
/// the retry window of 1 s visibility and no backoff) are running
/// while sends arrive; the API leaves its outbox rows due at once (PUBLISH_GRACE_MS=0), so
/// both relays race the API's own publish, and every third gift gets two extra messages by
/// hand, one of them after it finished. Half the pseudo-sends fail, so retries, FAILED
/// writes and messages published again at their stale deadline race too. All end SENT or FAILED; none is SENT twice.
#[test]
fn two_workers_and_racing_relays_send_each_gift_at_most_once() {
    let Some((db, sqs)) = services() else { return };
    let fx = Fixture::new("race", &db, &sqs, None);
    let (_api, api) = fx.api(&[("PUBLISH_GRACE_MS", "0".into()), ("STALE_QUEUED_SECONDS", "6".into())]);
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
    fx.drain_and_check(&ids, Duration::from_secs(90), logs);
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
