//! The worker's batch step over the in-memory models, with a scripted pseudo-send: the
//! cases where a success and a failure of one gift meet, a FAILED refused because the gift
//! was finished meanwhile, and the lease that keeps a slow send's message hidden.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gift_core::domain::Timestamp;
use gift_core::domain::{Amount, Gift, GiftCode, GiftId, IdempotencyKey, SendMessage, Status};
use gift_core::ports::{Delivery, Dispatcher, Env, Queue, Receipt, SendCommand, Store};
use gift_core::service::{handle_deliveries, BatchTerms, DeliveryOutcome, Deps, InFlight, RetryPolicy};
use gift_core::{QueueError, StoreError};
use gift_runtime::memory::{MemoryQueue, MemoryStore, QueueSettings};
use gift_runtime::rt::SystemEnv;
use support::wrapped::{Wrap, WrapQueue, Wrapped, WrappedQueue};

mod support;

const RETRY: RetryPolicy = RetryPolicy { max_receives: 5, backoff: Duration::from_millis(10) };

/// A pseudo-send that fails on the receive counts listed, after `delay`, and can run a
/// side effect (another worker's write) while it is in flight.
struct Scripted {
    fail_on: Vec<u32>,
    delay: Duration,
    calls: AtomicU32,
    meanwhile: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Scripted {
    fn new(fail_on: &[u32], delay: Duration) -> Self {
        Self { fail_on: fail_on.to_vec(), delay, calls: AtomicU32::new(0), meanwhile: Mutex::new(None) }
    }
}

#[async_trait]
impl Dispatcher for Scripted {
    async fn dispatch(&self, _: &Gift, _: &IdempotencyKey, receive_count: u32) -> Result<(), String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if let Some(f) = self.meanwhile.lock().unwrap().take() {
            f();
        }
        if self.fail_on.contains(&receive_count) {
            Err(format!("scripted failure on receive {receive_count}"))
        } else {
            Ok(())
        }
    }
}

/// A queue whose visibility changes all fail: renewals never land.
struct NoRenewals(Arc<MemoryQueue>);

#[async_trait]
impl WrapQueue for NoRenewals {
    fn inner(&self) -> &dyn Queue {
        &*self.0
    }

    async fn set_visibility(&self, _: &Receipt, _: Duration) -> Result<(), QueueError> {
        Err(QueueError::Unavailable("refused".into()))
    }
}

/// A store whose SENT writes take `delay`: the batch records after its lease has lapsed.
struct SlowSent {
    inner: Arc<MemoryStore>,
    delay: Duration,
}

#[async_trait]
impl Wrap for SlowSent {
    fn inner(&self) -> &dyn Store {
        &*self.inner
    }

    async fn mark_sent_all(&self, ids: &[GiftId], now: Timestamp) -> Result<Vec<bool>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.mark_sent_all(ids, now).await
    }
}

struct World {
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    gift: GiftId,
    message: SendMessage,
}

async fn queued_gift(visibility: Duration) -> World {
    let store = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::new(QueueSettings { visibility_timeout: visibility, max_receives: 5 }));
    let now = SystemEnv.now();
    let gift = Gift::new(GiftId::from_random(7), GiftCode::from_random(7), Amount::try_from(100).unwrap(), None, now);
    store.insert_gift(&gift).await.unwrap();
    let key = IdempotencyKey::parse("order-1").unwrap();
    let cmd = SendCommand { gift_id: gift.id, key: key.clone(), now, outbox_available_at: now, trace: None };
    store.request_send(&cmd).await.unwrap();
    let message = SendMessage { gift_id: gift.id, request_id: key };
    World { store, queue, gift: gift.id, message }
}

impl World {
    fn deps(&self, dispatcher: Arc<dyn Dispatcher>, queue: Arc<dyn Queue>) -> Deps {
        Deps { store: self.store.clone(), queue, env: Arc::new(SystemEnv), dispatcher }
    }

    /// Receives the message `times` times, releasing it after each but the last.
    async fn receive_times(&self, times: u32) -> Vec<Delivery> {
        for _ in 1..times {
            let d = self.queue.receive(1, Duration::ZERO).await.unwrap();
            self.queue.set_visibility(&d[0].receipt, Duration::ZERO).await.unwrap();
        }
        self.queue.receive(10, Duration::ZERO).await.unwrap()
    }

    fn status(&self) -> Status {
        self.store.gift(self.gift).unwrap().status
    }
}

fn terms(visibility: Duration) -> BatchTerms {
    BatchTerms { retry: RETRY, visibility, received_at: SystemEnv.now() }
}

fn outcomes(handled: &[(Delivery, DeliveryOutcome)]) -> Vec<DeliveryOutcome> {
    handled.iter().map(|(_, o)| o.clone()).collect()
}

#[tokio::test]
async fn two_messages_of_one_gift_in_a_batch_get_one_attempt_and_never_fail_beside_a_success() {
    // One message on its fifth receive, a duplicate on its first. Each delivered alone,
    // the first would fail (final) and the second succeed: handled as one batch, the gift
    // gets one attempt, so it cannot end FAILED after a successful pseudo-send.
    let w = queued_gift(Duration::from_secs(30)).await;
    w.queue.publish(&w.message, None).await.unwrap();
    let mut batch = w.receive_times(5).await;
    w.queue.publish(&w.message, None).await.unwrap();
    batch.extend(w.queue.receive(10, Duration::ZERO).await.unwrap());
    assert_eq!(batch.iter().map(|d| d.receive_count).collect::<Vec<_>>(), vec![5, 1]);

    let dispatcher = Arc::new(Scripted::new(&[5], Duration::ZERO));
    let deps = w.deps(dispatcher.clone(), w.queue.clone());
    let handled = handle_deliveries(&deps, terms(Duration::from_secs(30)), &InFlight::default(), batch).await;

    assert_eq!(dispatcher.calls.load(Ordering::SeqCst), 1, "one pseudo-send per gift per batch");
    assert_eq!(outcomes(&handled), vec![DeliveryOutcome::Failed, DeliveryOutcome::Duplicate]);
    assert_eq!(w.status(), Status::Failed);
    assert_eq!(w.queue.len(), 1, "the duplicate is deleted, the final one left for the dead-letter queue");
}

#[tokio::test]
async fn a_success_in_a_batch_is_recorded_even_when_a_duplicate_has_budget_left() {
    let w = queued_gift(Duration::from_secs(30)).await;
    w.queue.publish(&w.message, None).await.unwrap();
    let mut batch = w.receive_times(3).await;
    w.queue.publish(&w.message, None).await.unwrap();
    batch.extend(w.queue.receive(10, Duration::ZERO).await.unwrap());
    let deps = w.deps(Arc::new(Scripted::new(&[], Duration::ZERO)), w.queue.clone());
    let handled = handle_deliveries(&deps, terms(Duration::from_secs(30)), &InFlight::default(), batch).await;
    assert_eq!(outcomes(&handled), vec![DeliveryOutcome::Sent, DeliveryOutcome::Duplicate]);
    assert_eq!((w.status(), w.queue.len()), (Status::Sent, 0));
}

#[tokio::test]
async fn a_final_failure_refused_because_the_gift_was_sent_meanwhile_deletes_its_message() {
    let w = queued_gift(Duration::from_secs(30)).await;
    w.queue.publish(&w.message, None).await.unwrap();
    let batch = w.receive_times(5).await;
    let dispatcher = Scripted::new(&[5], Duration::ZERO);
    let (store, gift) = (w.store.clone(), w.gift);
    *dispatcher.meanwhile.lock().unwrap() = Some(Box::new(move || {
        // Another worker records its success while this attempt runs.
        // The model answers without yielding.
        let sent = futures::FutureExt::now_or_never(store.mark_sent(gift, SystemEnv.now()));
        assert_eq!(sent, Some(Ok(true)));
    }));
    let deps = w.deps(Arc::new(dispatcher), w.queue.clone());
    let handled = handle_deliveries(&deps, terms(Duration::from_secs(30)), &InFlight::default(), batch).await;
    assert_eq!(outcomes(&handled), vec![DeliveryOutcome::LostRace]);
    assert_eq!(w.status(), Status::Sent);
    assert_eq!(w.queue.len(), 0, "deleted, not left to reach the dead-letter queue");
}

#[tokio::test]
async fn a_slow_send_keeps_its_message_hidden_by_renewing_the_lease() {
    let visibility = Duration::from_millis(300);
    let w = queued_gift(visibility).await;
    w.queue.publish(&w.message, None).await.unwrap();
    let batch = w.receive_times(1).await;
    let deps = w.deps(Arc::new(Scripted::new(&[], Duration::from_millis(900))), w.queue.clone());
    let other = {
        let queue = w.queue.clone();
        tokio::spawn(async move { queue.receive(10, Duration::from_millis(800)).await.unwrap() })
    };
    let handled = handle_deliveries(&deps, terms(visibility), &InFlight::default(), batch).await;
    assert_eq!(outcomes(&handled), vec![DeliveryOutcome::Sent]);
    assert_eq!(other.await.unwrap(), vec![], "no other worker got the message while it was being sent");
}

#[tokio::test]
async fn a_send_that_would_outlive_an_unrenewed_lease_is_abandoned_not_recorded() {
    let visibility = Duration::from_millis(300);
    let w = queued_gift(visibility).await;
    w.queue.publish(&w.message, None).await.unwrap();
    let batch = w.receive_times(4).await;
    let deps = w.deps(
        Arc::new(Scripted::new(&[], Duration::from_secs(2))),
        Arc::new(WrappedQueue(NoRenewals(w.queue.clone()))),
    );
    let handled = handle_deliveries(&deps, terms(visibility), &InFlight::default(), batch).await;
    assert!(matches!(&outcomes(&handled)[..], [DeliveryOutcome::Error(e)] if e.contains("lease")), "{handled:?}");
    assert_eq!(w.status(), Status::Queued, "an abandoned send records nothing");
}

/// Two messages of one gift in two batches of one worker, both on their fourth receive:
/// the first batch's send is slow and succeeds, and its SENT write takes a while too. The
/// second batch does not attempt the gift, and keeps its message hidden (the visibility is
/// shorter than the send: only its heartbeat keeps it) until the first has written SENT,
/// then deletes it as a duplicate. Released any earlier (after the backoff, or before the
/// write), it could reach another worker on its fifth receive and fail there, FAILED beside
/// a success.
#[tokio::test]
async fn a_gift_in_hand_in_another_batch_is_not_attempted_twice_and_waits_for_its_outcome() {
    let visibility = Duration::from_millis(300);
    let w = queued_gift(visibility).await;
    w.queue.publish(&w.message, None).await.unwrap();
    w.queue.publish(&w.message, None).await.unwrap();
    for _ in 1..4 {
        for d in w.queue.receive(10, Duration::ZERO).await.unwrap() {
            w.queue.set_visibility(&d.receipt, Duration::ZERO).await.unwrap();
        }
    }
    let first = w.queue.receive(1, Duration::ZERO).await.unwrap();
    let second = w.queue.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!((first[0].receive_count, second[0].receive_count), (4, 4));
    let dispatcher = Arc::new(Scripted::new(&[], Duration::from_millis(400)));
    let slow = Arc::new(Wrapped(SlowSent { inner: w.store.clone(), delay: Duration::from_millis(150) }));
    let deps = Deps { store: slow, queue: w.queue.clone(), env: Arc::new(SystemEnv), dispatcher: dispatcher.clone() };
    let in_flight = InFlight::default();
    // Another worker polls all along; the backoff (10 ms) is far shorter than the send.
    let other = {
        let queue = w.queue.clone();
        tokio::spawn(async move { queue.receive(10, Duration::from_millis(800)).await.unwrap() })
    };
    let (a, b) = tokio::join!(
        handle_deliveries(&deps, terms(visibility), &in_flight, first),
        handle_deliveries(&deps, terms(visibility), &in_flight, second),
    );
    assert_eq!(dispatcher.calls.load(Ordering::SeqCst), 1);
    assert_eq!((outcomes(&a), outcomes(&b)), (vec![DeliveryOutcome::Sent], vec![DeliveryOutcome::Duplicate]));
    assert_eq!(other.await.unwrap(), vec![], "no message of the gift reached another worker");
    assert_eq!((w.status(), w.queue.len()), (Status::Sent, 0));
}

#[tokio::test]
async fn a_gift_whose_attempt_in_another_batch_failed_comes_back_after_the_backoff() {
    let w = queued_gift(Duration::from_secs(30)).await;
    w.queue.publish(&w.message, None).await.unwrap();
    w.queue.publish(&w.message, None).await.unwrap();
    let first = w.queue.receive(1, Duration::ZERO).await.unwrap();
    let second = w.queue.receive(1, Duration::ZERO).await.unwrap();
    let deps = w.deps(Arc::new(Scripted::new(&[1], Duration::from_millis(100))), w.queue.clone());
    let in_flight = InFlight::default();
    let (a, b) = tokio::join!(
        handle_deliveries(&deps, terms(Duration::from_secs(30)), &in_flight, first),
        handle_deliveries(&deps, terms(Duration::from_secs(30)), &in_flight, second),
    );
    assert_eq!((outcomes(&a), outcomes(&b)), (vec![DeliveryOutcome::RetryLater], vec![DeliveryOutcome::RetryLater]));
    assert_eq!((w.status(), w.queue.len()), (Status::Queued, 2));
}

/// A batch that records after its lease has lapsed does not delete: the queue may have
/// handed the message to another worker, and a delete with the superseded receipt would
/// remove it from under that worker. The message comes back and is deleted as a duplicate.
#[tokio::test]
async fn a_batch_whose_lease_lapsed_before_its_delete_leaves_the_message() {
    let visibility = Duration::from_millis(300);
    let w = queued_gift(visibility).await;
    w.queue.publish(&w.message, None).await.unwrap();
    let slow = Arc::new(Wrapped(SlowSent { inner: w.store.clone(), delay: Duration::from_millis(450) }));
    let queue: Arc<dyn Queue> = Arc::new(WrappedQueue(NoRenewals(w.queue.clone())));
    let deps =
        Deps { store: slow, queue, env: Arc::new(SystemEnv), dispatcher: Arc::new(Scripted::new(&[], Duration::ZERO)) };
    let handled = handle_deliveries(&deps, terms(visibility), &InFlight::default(), w.receive_times(1).await).await;
    assert!(matches!(outcomes(&handled)[..], [DeliveryOutcome::Error(_)]), "{:?}", outcomes(&handled));
    assert_eq!(w.status(), Status::Sent, "the SENT write landed");
    assert_eq!(w.queue.len(), 1, "the message was left on the queue");
    let again = w.queue.receive(10, Duration::from_secs(1)).await.unwrap();
    let fresh = w.deps(Arc::new(Scripted::new(&[], Duration::ZERO)), w.queue.clone());
    let handled = handle_deliveries(&fresh, terms(visibility), &InFlight::default(), again).await;
    assert_eq!(outcomes(&handled), [DeliveryOutcome::Duplicate]);
    assert_eq!(w.queue.len(), 0, "deleted as a duplicate");
}
