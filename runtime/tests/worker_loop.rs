//! The worker loop's batches over the in-memory models: a backlog is gathered from
//! receives that came back full (`WorkerConfig::receives_per_batch`), so each batch's
//! store statements carry more than one receive's messages; a quiet queue is not asked
//! twice; a further receive that fails loses none of the messages already received; the
//! batch's lease runs from its first receive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use gift_core::domain::{Amount, Gift, GiftCode, GiftId, IdempotencyKey, SendMessage, Status, Timestamp};
use gift_core::ports::{Delivery, Dispatcher, Env, Queue, SendCommand, Store};
use gift_core::service::Deps;
use gift_core::worker::{run_worker, WorkerConfig};
use gift_core::{QueueError, StoreError};
use gift_runtime::memory::{MemoryQueue, MemoryStore, QueueSettings};
use gift_runtime::rt::SystemEnv;
use support::wrapped::{Wrap, WrapQueue, Wrapped, WrappedQueue};

mod support;

/// Records how many gifts each batch load asked for.
struct Loads {
    inner: Arc<MemoryStore>,
    sizes: Mutex<Vec<usize>>,
}

#[async_trait]
impl Wrap for Loads {
    fn inner(&self) -> &dyn Store {
        &*self.inner
    }

    async fn get_gifts(&self, ids: &[GiftId]) -> Result<Vec<Option<Gift>>, StoreError> {
        self.sizes.lock().unwrap().push(ids.len());
        self.inner.get_gifts(ids).await
    }
}

/// Records each receive's long-poll wait; with `fail_short_polls`, every receive that
/// does not wait (a batch's further receive) fails before reaching the queue; the first
/// short poll reaches the queue only after `first_short_poll_delay`.
struct Receives {
    inner: Arc<MemoryQueue>,
    waits: Mutex<Vec<Duration>>,
    fail_short_polls: AtomicBool,
    first_short_poll_delay: Mutex<Option<Duration>>,
}

#[async_trait]
impl WrapQueue for Receives {
    fn inner(&self) -> &dyn Queue {
        &*self.inner
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.waits.lock().unwrap().push(wait);
        if wait.is_zero() && self.fail_short_polls.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("refused".into()));
        }
        let delay = if wait.is_zero() { self.first_short_poll_delay.lock().unwrap().take() } else { None };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.inner.receive(max, wait).await
    }
}

/// A pseudo-send that succeeds after `takes`, noting each send that ran to the end: the
/// gift, and when the send began and ended.
#[derive(Default)]
struct AlwaysSent {
    takes: Duration,
    completed: Mutex<Vec<(GiftId, Instant, Instant)>>,
}

#[async_trait]
impl Dispatcher for AlwaysSent {
    async fn dispatch(&self, gift: &Gift, _: &IdempotencyKey, _: u32) -> Result<(), String> {
        let began = Instant::now();
        tokio::time::sleep(self.takes).await;
        self.completed.lock().unwrap().push((gift.id, began, Instant::now()));
        Ok(())
    }
}

/// The wall clock as tokio's (paused) clock moves it, so the lease, the queue's visibility
/// and the test's sleeps keep one time.
struct TokioClock {
    start: tokio::time::Instant,
    base: Timestamp,
}

impl Env for TokioClock {
    fn now(&self) -> Timestamp {
        self.base + chrono::Duration::from_std(self.start.elapsed()).unwrap()
    }
    fn random_u64(&self) -> u64 {
        4
    }
    fn sleep(&self, duration: Duration) -> gift_core::ports::BoxFuture<()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

struct Backlog {
    store: Arc<Wrapped<Loads>>,
    memory: Arc<MemoryStore>,
    queue: Arc<WrappedQueue<Receives>>,
    gifts: Vec<GiftId>,
    env: Arc<dyn Env>,
    dispatcher: Arc<AlwaysSent>,
    visibility: Duration,
}

/// `n` QUEUED gifts, each with its send message on the queue.
async fn backlog(n: u128) -> Backlog {
    backlog_with(n, Arc::new(SystemEnv), Duration::from_secs(30), Duration::ZERO).await
}

/// [`backlog`] on `env`'s clock, with the queue's visibility timeout and the time the first
/// short poll takes.
async fn backlog_with(n: u128, env: Arc<dyn Env>, visibility: Duration, first_short_poll: Duration) -> Backlog {
    let memory = Arc::new(MemoryStore::new());
    let settings = QueueSettings { visibility_timeout: visibility, max_receives: 5 };
    let queue = Arc::new(WrappedQueue(Receives {
        inner: Arc::new(MemoryQueue::new(settings)),
        waits: Mutex::default(),
        fail_short_polls: AtomicBool::new(false),
        first_short_poll_delay: Mutex::new(Some(first_short_poll)),
    }));
    let now: Timestamp = env.now();
    let key = IdempotencyKey::parse("order-1").unwrap();
    let mut gifts = Vec::new();
    for i in 1..=n {
        let gift = Gift::new(
            GiftId::from_random(i),
            GiftCode::from_random(i as u64),
            Amount::try_from(100).unwrap(),
            None,
            now,
        );
        memory.insert_gift(&gift).await.unwrap();
        let cmd = SendCommand { gift_id: gift.id, key: key.clone(), now, outbox_available_at: now, trace: None };
        memory.request_send(&cmd).await.unwrap();
        queue.publish(&SendMessage { gift_id: gift.id, request_id: key.clone() }, None).await.unwrap();
        gifts.push(gift.id);
    }
    let store = Arc::new(Wrapped(Loads { inner: memory.clone(), sizes: Mutex::default() }));
    Backlog { store, memory, queue, gifts, env, dispatcher: Arc::default(), visibility }
}

impl Backlog {
    /// One worker loop's ports and configuration, one batch in hand.
    fn worker(&self, receives_per_batch: u32) -> (Deps, WorkerConfig) {
        let deps = Deps {
            store: self.store.clone(),
            queue: self.queue.clone(),
            env: self.env.clone(),
            dispatcher: self.dispatcher.clone(),
        };
        let config = WorkerConfig {
            receives_per_batch,
            batches_in_hand: 1,
            wait: Duration::from_millis(20),
            visibility_timeout: self.visibility,
            ..WorkerConfig::default()
        };
        (deps, config)
    }

    /// Runs one worker loop until the queue is empty.
    async fn drain(&self, receives_per_batch: u32) {
        let (deps, config) = self.worker(receives_per_batch);
        let inner = self.queue.inner.clone();
        let drained = async move {
            while !inner.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), run_worker(deps, config, |_| {}, drained))
            .await
            .expect("the backlog drains");
    }

    fn loads(&self) -> Vec<usize> {
        self.store.sizes.lock().unwrap().clone()
    }

    fn all_sent(&self) -> bool {
        self.gifts.iter().all(|g| self.memory.gift(*g).unwrap().status == Status::Sent)
    }
}

#[tokio::test]
async fn a_backlog_is_loaded_two_full_receives_per_batch() {
    let b = backlog(25).await;
    b.drain(2).await;
    assert_eq!(b.loads(), vec![20, 5], "a full receive is followed by another for the same batch");
    assert!(b.all_sent());
    let waits = b.queue.waits.lock().unwrap().clone();
    assert_eq!(waits.iter().filter(|w| w.is_zero()).count(), 1, "the further receive does not long-poll: {waits:?}");
}

#[tokio::test]
async fn one_receive_per_batch_loads_one_receive_at_a_time() {
    let b = backlog(25).await;
    b.drain(1).await;
    assert_eq!(b.loads(), vec![10, 10, 5]);
    assert!(b.all_sent());
    assert!(b.queue.waits.lock().unwrap().iter().all(|w| !w.is_zero()), "every receive long-polls");
}

#[tokio::test]
async fn a_receive_that_comes_back_short_ends_the_batch_without_asking_again() {
    let b = backlog(7).await;
    b.drain(3).await;
    assert_eq!(b.loads(), vec![7]);
    assert!(b.queue.waits.lock().unwrap().iter().all(|w| !w.is_zero()), "a quiet queue is not asked twice");
}

/// A stop asked while the first receive is in progress: that receive is awaited and its
/// messages handled, but no further receive adds to what the stop has to finish.
#[tokio::test]
async fn a_stopping_worker_gathers_no_further_receive() {
    let b = backlog(25).await;
    let (deps, config) = b.worker(2);
    run_worker(deps, config, |_| {}, std::future::ready(())).await;
    assert_eq!(b.loads(), vec![10]);
    assert!(b.queue.waits.lock().unwrap().iter().all(|w| !w.is_zero()), "no short poll after the stop");
}

#[tokio::test]
async fn a_further_receive_that_fails_loses_none_of_the_batch() {
    let b = backlog(25).await;
    b.queue.fail_short_polls.store(true, Ordering::SeqCst);
    b.drain(2).await;
    assert_eq!(b.loads(), vec![10, 10, 5], "each batch goes on with its first receive's messages");
    assert!(b.all_sent());
}

/// A further receive can take most of the visibility timeout. The first receive's messages
/// were hidden from when it returned, so the batch's lease, and its heartbeat's schedule,
/// run from there: counted from the last receive, the heartbeat would first renew after
/// those messages were visible again, and another worker could take a gift whose
/// pseudo-send is still running here.
#[tokio::test(start_paused = true)]
async fn the_lease_of_a_gathered_batch_runs_from_its_first_receive() {
    let visibility = Duration::from_secs(3);
    let env = Arc::new(TokioClock { start: tokio::time::Instant::now(), base: SystemEnv.now() });
    let mut b = backlog_with(15, env, visibility, Duration::from_millis(2_500)).await;
    b.dispatcher = Arc::new(AlwaysSent { takes: Duration::from_millis(1_500), ..AlwaysSent::default() });
    // Another worker, which receives once, after the gathered batch's first receive took
    // ten and its further receive the other five, and never deletes.
    let other = async {
        tokio::time::sleep(Duration::from_millis(2_900)).await;
        let taken = b.queue.inner.receive(10, Duration::from_millis(4_000)).await.unwrap();
        (taken, Instant::now())
    };
    // Which of the two receives the first ten once they are visible again is a matter of
    // scheduling when this worker has let them go; the check is that none is received
    // elsewhere while its send runs here.
    let ((taken, taken_at), ()) = tokio::join!(other, b.drain(2));
    let sends = b.dispatcher.completed.lock().unwrap().clone();
    let during: Vec<GiftId> = sends
        .iter()
        .filter(|(gift, began, ended)| {
            *began <= taken_at && taken_at < *ended && taken.iter().any(|d| d.body.contains(&gift.to_string()))
        })
        .map(|(gift, ..)| *gift)
        .collect();
    assert!(during.is_empty(), "another worker received {} gifts whose pseudo-send was running here", during.len());
    assert!(b.all_sent());
}
