//! The recorder: clients publishing, receiving, deleting and releasing at random, each call kept with when it was made, when it returned and what it answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gift_core::domain::{GiftId, IdempotencyKey, SendMessage};
use gift_core::ports::{MessageId, Queue, Receipt};

use crate::conformance::linearizable::history::Rng;
use crate::rt;

use super::{QueueAnswer, QueueConfig, QueueOp, QueueRecord};

/// The receipts clients have seen, to delete and release with (the latest or an older one).
type Seen = Arc<Mutex<Vec<(MessageId, Receipt)>>>;

fn pick(rng: &mut Rng, seen: &Seen) -> Option<(MessageId, Receipt)> {
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    if seen.is_empty() {
        return None;
    }
    // Mostly the latest receipt of a message, sometimes any older one.
    let (msg, receipt) = seen[rng.below(seen.len() as u64) as usize].clone();
    if rng.below(10) < 7 {
        let latest = seen.iter().rev().find(|(m, _)| *m == msg).cloned();
        return latest.or(Some((msg, receipt)));
    }
    Some((msg, receipt))
}

fn random_op(rng: &mut Rng, seen: &Seen) -> QueueOp {
    // Few publishes and deletes, many receives and releases: messages live long enough to
    // reach the maximum receive count within a history.
    match rng.below(20) {
        0 => QueueOp::Publish,
        1..=8 => QueueOp::Receive { max: 1 + rng.below(3) as u32 },
        9..=17 => match pick(rng, seen) {
            Some((msg, receipt)) => QueueOp::Release { msg, receipt },
            None => QueueOp::Publish,
        },
        _ => match pick(rng, seen) {
            Some((msg, receipt)) => QueueOp::Delete { msg, receipt },
            None => QueueOp::Receive { max: 1 },
        },
    }
}

/// Publishes two messages, then runs the clients at once, each making random calls.
pub async fn record_queue(queue: Arc<dyn Queue>, seed: u64, config: QueueConfig) -> Vec<QueueRecord> {
    let clock = Arc::new(AtomicU64::new(0));
    let seen: Seen = Arc::default();
    let mut history = Vec::new();
    for n in 0..2 {
        let invoke = clock.fetch_add(1, Ordering::SeqCst);
        let answer = queue.publish(&message(seed, n), None).await;
        let complete = clock.fetch_add(1, Ordering::SeqCst);
        let answer = answer.map(QueueAnswer::Published).map_err(|e| e.to_string());
        history.push(QueueRecord { client: 0, invoke, complete, op: QueueOp::Publish, answer });
    }
    let mut seeds = Rng::new(seed);
    let clients: Vec<_> = (0..config.clients)
        .map(|client| {
            let (queue, clock, seen) = (queue.clone(), clock.clone(), seen.clone());
            let mut rng = Rng::new(seeds.next_u64());
            rt::spawn(async move {
                let mut records = Vec::with_capacity(config.ops_per_client);
                for n in 0..config.ops_per_client {
                    let op = random_op(&mut rng, &seen);
                    let invoke = clock.fetch_add(1, Ordering::SeqCst);
                    let answer = perform(&*queue, &op, seed, client * 1_000 + n).await;
                    let complete = clock.fetch_add(1, Ordering::SeqCst);
                    if let Ok(QueueAnswer::Received(got)) = &answer {
                        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                        seen.extend(got.iter().map(|(m, _, r)| (m.clone(), r.clone())));
                    }
                    records.push(QueueRecord { client: client + 1, invoke, complete, op, answer });
                }
                records
            })
        })
        .collect();
    for client in clients {
        history.extend(client.await.expect("a client of the history panicked"));
    }
    history.sort_by_key(|r| r.invoke);
    history
}

/// The `n`th message of history `seed`: the checker tells messages apart by their ids, so
/// the body only has to be a valid one.
fn message(seed: u64, n: usize) -> SendMessage {
    let gift_id = GiftId::from_random(u128::from(seed) << 64 | n as u128);
    SendMessage { gift_id, request_id: IdempotencyKey::parse(&format!("h{seed}-{n}")).expect("a valid key") }
}

async fn perform(queue: &dyn Queue, op: &QueueOp, seed: u64, n: usize) -> Result<QueueAnswer, String> {
    let answer = match op {
        QueueOp::Publish => queue.publish(&message(seed, 1_000_000 + n), None).await.map(QueueAnswer::Published),
        QueueOp::Receive { max } => queue.receive(*max, Duration::ZERO).await.map(|got| {
            QueueAnswer::Received(got.into_iter().map(|d| (d.message_id, d.receive_count, d.receipt)).collect())
        }),
        QueueOp::Delete { receipt, .. } => queue.delete(receipt).await.map(|()| QueueAnswer::Done),
        QueueOp::Release { receipt, .. } => {
            queue.set_visibility(receipt, Duration::ZERO).await.map(|()| QueueAnswer::Done)
        }
    };
    answer.map_err(|e| e.to_string())
}
