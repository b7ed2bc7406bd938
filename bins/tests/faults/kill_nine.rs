//! kill -9 of a worker in the middle of a batch, then a restart.

use std::time::Duration;

use crate::fixture::{final_logs, services, wait_until, Fixture};
use crate::support::{Proc, Proxy};

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
    let in_flight = fx.worker_mid_batch("the worker's batch at its SENT writes");
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
    fx.drain_and_check(&ids, Duration::from_secs(90), || {
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
