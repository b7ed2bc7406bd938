//! What every [`Queue`] must do, SQS being the reference.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use gift_core::domain::{GiftId, IdempotencyKey, SendMessage, TraceParent};
use gift_core::ports::{Delivery, Queue};

use crate::rt;

/// Reads the bodies in the dead-letter queue without consuming them for good.
pub type DeadLetters = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Vec<String>> + Send>> + Send + Sync>;

/// A queue built for one test, configured with the given visibility timeout and a
/// redrive to a dead-letter queue after 5 receives.
pub struct QueueUnderTest {
    pub queue: Arc<dyn Queue>,
    pub dead_letters: DeadLetters,
}

const SHORT: Duration = Duration::from_millis(200);
const LONG: Duration = Duration::from_secs(2);

/// Receives until `n` messages arrived or `patience` receives came back empty.
async fn receive_n(q: &dyn Queue, n: usize, patience: usize) -> Vec<Delivery> {
    let mut got = Vec::new();
    let mut empty = 0;
    while got.len() < n && empty < patience {
        let batch = q.receive(10, LONG).await.unwrap();
        if batch.is_empty() {
            empty += 1;
        }
        got.extend(batch);
    }
    got
}

/// A message no other test publishes: its gift id is random, its key names the test.
pub fn unique_message(tag: &str) -> SendMessage {
    let gift_id = GiftId::from_random(rt::random_u128());
    SendMessage { gift_id, request_id: IdempotencyKey::parse(tag).expect("a test's tag is a valid key") }
}

/// A published message is received with its body and receive count 1, then hidden.
pub async fn publish_then_receive(t: QueueUnderTest) {
    let q = &*t.queue;
    let message = unique_message("publish");
    let body = message.to_body();
    q.publish(&message, None).await.unwrap();
    let got = receive_n(q, 1, 3).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].body.as_str(), got[0].receive_count), (body.as_str(), 1));
    assert!(q.receive(10, SHORT).await.unwrap().is_empty(), "an in-flight message was delivered twice");
}

/// A message's trace comes back with every receipt of it; a message published without one
/// has none.
pub async fn the_trace_travels_with_the_message(t: QueueUnderTest) {
    let q = &*t.queue;
    let trace = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    q.publish(&unique_message("traced"), Some(&trace)).await.unwrap();
    let first = receive_n(q, 1, 3).await.remove(0);
    assert_eq!(first.trace, Some(trace));
    q.set_visibility(&first.receipt, Duration::ZERO).await.unwrap();
    let again = receive_n(q, 1, 3).await.remove(0);
    assert_eq!((again.receive_count, again.trace), (2, Some(trace)), "the redelivery keeps it");
    q.delete(&again.receipt).await.unwrap();
    q.publish(&unique_message("untraced"), None).await.unwrap();
    assert_eq!(receive_n(q, 1, 3).await.remove(0).trace, None);
}

/// Releasing a message (visibility 0) delivers it again with a higher count and a new
/// receipt; deleting it removes it for good; deleting twice is not an error.
pub async fn release_redelivers_and_delete_removes(t: QueueUnderTest) {
    let q = &*t.queue;
    q.publish(&unique_message("release"), None).await.unwrap();
    let first = receive_n(q, 1, 3).await.remove(0);
    q.set_visibility(&first.receipt, Duration::ZERO).await.unwrap();
    let second = receive_n(q, 1, 3).await.remove(0);
    assert_eq!(second.body, first.body);
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt);
    q.delete(&second.receipt).await.unwrap();
    q.delete(&second.receipt).await.unwrap();
    assert!(q.receive(10, SHORT).await.unwrap().is_empty(), "a deleted message came back");
}

/// Deleting a batch answers per receipt and removes those messages only; receipts of
/// messages deleted before succeed again, as a single delete does.
pub async fn delete_all_removes_each(t: QueueUnderTest) {
    let q = &*t.queue;
    for i in 0..12 {
        q.publish(&unique_message(&format!("delete-all-{i}")), None).await.unwrap();
    }
    let got = receive_n(q, 12, 5).await;
    assert_eq!(got.len(), 12, "{got:?}");
    let (kept, deleted) = got.split_at(1);
    // Twelve receipts and one repeated: more than one SQS request's worth.
    let mut receipts: Vec<_> = deleted.iter().map(|d| d.receipt.clone()).collect();
    receipts.push(deleted[0].receipt.clone());
    let answers = q.delete_all(&receipts).await;
    assert_eq!(answers, vec![Ok(()); receipts.len()]);
    assert_eq!(q.delete_all(&[]).await, vec![]);
    // The visibility timeout (1 s) has passed for all twelve: only the one kept comes back.
    rt::sleep(Duration::from_millis(1500)).await;
    let again = receive_n(q, 1, 3).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body, kept[0].body, "a deleted message came back");
    q.delete(&again[0].receipt).await.unwrap();
    assert!(q.receive(10, SHORT).await.unwrap().is_empty(), "a deleted message came back");
}

/// A delay hides the message at least that long, then it comes back.
pub async fn delay_hides_then_returns(t: QueueUnderTest) {
    let q = &*t.queue;
    q.publish(&unique_message("delay"), None).await.unwrap();
    let first = receive_n(q, 1, 3).await.remove(0);
    q.set_visibility(&first.receipt, Duration::from_secs(2)).await.unwrap();
    assert!(q.receive(10, Duration::from_millis(500)).await.unwrap().is_empty(), "visible before its delay");
    let again = receive_n(q, 1, 5).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
}

/// Without a delete, the visibility timeout (1 s for this test's queue) brings it back.
pub async fn visibility_timeout_expires(t: QueueUnderTest) {
    let q = &*t.queue;
    q.publish(&unique_message("expire"), None).await.unwrap();
    let first = receive_n(q, 1, 3).await.remove(0);
    rt::sleep(Duration::from_millis(1500)).await;
    let again = receive_n(q, 1, 3).await;
    assert_eq!(again.len(), 1, "the message did not reappear after its visibility timeout");
    assert_eq!((again[0].body.as_str(), again[0].receive_count), (first.body.as_str(), 2));
}

/// After the fifth receive the message is not delivered again: it is dead-lettered.
pub async fn fifth_receive_is_the_last(t: QueueUnderTest) {
    let q = &*t.queue;
    let message = unique_message("dlq");
    let body = message.to_body();
    q.publish(&message, None).await.unwrap();
    for expected in 1..=5 {
        let d = receive_n(q, 1, 3).await;
        assert_eq!(d.len(), 1, "receive {expected} got nothing");
        assert_eq!(d[0].receive_count, expected);
        q.set_visibility(&d[0].receipt, Duration::ZERO).await.unwrap();
    }
    assert!(q.receive(10, SHORT).await.unwrap().is_empty(), "delivered a sixth time");
    let mut dead = Vec::new();
    for _ in 0..10 {
        dead = (t.dead_letters)().await;
        if dead.contains(&body) {
            break;
        }
        rt::sleep(SHORT).await;
    }
    assert!(dead.contains(&body), "not in the dead-letter queue: {dead:?}");
}

/// A batch: each of several messages is delivered exactly once across receives.
pub async fn batch_delivers_each_once(t: QueueUnderTest) {
    let q = &*t.queue;
    let messages: Vec<SendMessage> = (0..5).map(|i| unique_message(&format!("batch-{i}"))).collect();
    for m in &messages {
        q.publish(m, None).await.unwrap();
    }
    let bodies: BTreeSet<String> = messages.iter().map(SendMessage::to_body).collect();
    let got = receive_n(q, bodies.len(), 5).await;
    let received: Vec<String> = got.iter().map(|d| d.body.clone()).collect();
    assert_eq!(received.len(), bodies.len(), "{received:?}");
    assert_eq!(received.into_iter().collect::<BTreeSet<_>>(), bodies);
    assert!(got.iter().all(|d| d.receive_count == 1));
}

/// An empty receive waits (long poll) and then returns nothing.
pub async fn empty_receive_returns_nothing(t: QueueUnderTest) {
    assert!(t.queue.receive(10, Duration::from_secs(1)).await.unwrap().is_empty());
    t.queue.ping().await.unwrap();
}

/// Runs every queue test; `fresh` builds an empty queue whose visibility timeout is 1 s and
/// whose redrive sends a message to the dead-letter queue after 5 receives.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = QueueUnderTest>,
{
    publish_then_receive(fresh().await).await;
    the_trace_travels_with_the_message(fresh().await).await;
    release_redelivers_and_delete_removes(fresh().await).await;
    delete_all_removes_each(fresh().await).await;
    delay_hides_then_returns(fresh().await).await;
    visibility_timeout_expires(fresh().await).await;
    fifth_receive_is_the_last(fresh().await).await;
    batch_delivers_each_once(fresh().await).await;
    empty_receive_returns_nothing(fresh().await).await;
}
