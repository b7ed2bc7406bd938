//! The outbox relay over the in-memory models: how a backlog larger than one batch drains.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gift_core::domain::{Amount, Gift, GiftCode, GiftId, IdempotencyKey, Timestamp};
use gift_core::ports::{BoxFuture, Env, SendCommand, Store};
use gift_core::relay::{run_relay, RelayConfig};
use gift_core::service::{Deps, PseudoDispatcher};
use gift_runtime::memory::{MemoryQueue, MemoryStore, QueueSettings};
use gift_runtime::rt::{self, SystemEnv};
use tokio::sync::Notify;

/// The system's clock and randomness; a pause is counted, announced, and never ends.
struct Pauses {
    taken: AtomicU32,
    first: Notify,
}

impl Env for Pauses {
    fn now(&self) -> Timestamp {
        SystemEnv.now()
    }

    fn random_u64(&self) -> u64 {
        SystemEnv.random_u64()
    }

    fn sleep(&self, _: Duration) -> BoxFuture<()> {
        self.taken.fetch_add(1, Ordering::SeqCst);
        self.first.notify_one();
        Box::pin(std::future::pending())
    }
}

/// 250 sends whose publish never happened (the queue was down) and a relay publishing 100
/// per pass: it publishes all 250 before its first pause, instead of one batch per interval
/// (100 messages a second per relay at the defaults, so a long outage's backlog took
/// minutes to drain and its gifts missed the SLO).
#[tokio::test]
async fn a_backlog_larger_than_a_batch_is_published_before_the_first_pause() {
    let store = Arc::new(MemoryStore::new());
    let now = rt::now_utc();
    let key = IdempotencyKey::parse("k").unwrap();
    for _ in 0..250 {
        let id = GiftId::from_random(SystemEnv.random_u128());
        let gift =
            Gift::new(id, GiftCode::from_random(SystemEnv.random_u64()), Amount::try_from(100).unwrap(), None, now);
        store.insert_gift(&gift).await.unwrap();
        let cmd = SendCommand { gift_id: id, key: key.clone(), now, outbox_available_at: now, trace: None };
        store.request_send(&cmd).await.unwrap();
    }
    let queue = Arc::new(MemoryQueue::new(QueueSettings::default()));
    let env = Arc::new(Pauses { taken: AtomicU32::new(0), first: Notify::new() });
    let deps = Deps {
        store: store.clone(),
        queue: queue.clone(),
        dispatcher: Arc::new(PseudoDispatcher::new(env.clone(), 0.0)),
        env: env.clone(),
    };
    let config = RelayConfig { interval: Duration::from_secs(3600), batch: 100, ..RelayConfig::default() };
    let passes = AtomicU32::new(0);
    let first_pause = env.first.notified();
    run_relay(
        deps,
        config,
        |_| {
            passes.fetch_add(1, Ordering::SeqCst);
        },
        first_pause,
    )
    .await;

    assert_eq!(queue.len(), 250, "every row of the backlog is published before the relay pauses");
    assert_eq!(env.taken.load(Ordering::SeqCst), 1, "one pause: after the pass that found the backlog drained");
    assert_eq!(passes.load(Ordering::SeqCst), 3, "two full passes of 100, then one of 50");
}

/// A clock the test moves; pauses end at once.
struct Clock(std::sync::Mutex<Timestamp>);

impl Env for Clock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }

    fn random_u64(&self) -> u64 {
        SystemEnv.random_u64()
    }

    fn sleep(&self, _: Duration) -> BoxFuture<()> {
        Box::pin(std::future::ready(()))
    }
}

/// A published row is due again at its stale deadline, counted from the publish: the relay
/// publishes it once, not again before the deadline, again at the deadline (its message
/// presumed lost, the pass counts it stale), and never once the gift is SENT.
#[tokio::test]
async fn a_published_row_is_published_again_at_its_stale_deadline_until_the_gift_settles() {
    let store = Arc::new(MemoryStore::new());
    let t0 = rt::now_utc();
    let id = GiftId::from_random(SystemEnv.random_u128());
    let gift = Gift::new(id, GiftCode::from_random(SystemEnv.random_u64()), Amount::try_from(100).unwrap(), None, t0);
    store.insert_gift(&gift).await.unwrap();
    let key = IdempotencyKey::parse("k").unwrap();
    store.request_send(&SendCommand { gift_id: id, key, now: t0, outbox_available_at: t0, trace: None }).await.unwrap();
    let queue = Arc::new(MemoryQueue::new(QueueSettings::default()));
    let clock = Arc::new(Clock(std::sync::Mutex::new(t0)));
    let deps = Deps {
        store: store.clone(),
        queue: queue.clone(),
        dispatcher: Arc::new(PseudoDispatcher::new(clock.clone(), 0.0)),
        env: clock.clone(),
    };
    let config = RelayConfig { stale_after: Duration::from_secs(900), ..RelayConfig::default() };
    let pass_at = |secs: i64| {
        *clock.0.lock().unwrap() = t0 + chrono::Duration::seconds(secs);
        gift_core::relay::relay_once(&deps, config)
    };
    let counts = |p: gift_core::relay::RelayPass| (p.published, p.stale);

    assert_eq!(counts(pass_at(0).await.unwrap()), (1, 0), "the unpublished row");
    assert_eq!(counts(pass_at(899).await.unwrap()), (0, 0), "due again before its deadline");
    assert_eq!(counts(pass_at(900).await.unwrap()), (1, 1), "the deadline: the message is presumed lost");
    assert_eq!(counts(pass_at(1_799).await.unwrap()), (0, 0), "the deadline counts from the last publish");
    assert_eq!(queue.len(), 2);
    assert!(store.mark_sent(id, t0).await.unwrap());
    assert_eq!(counts(pass_at(100_000).await.unwrap()), (0, 0), "a SENT gift's row went with the update");
}
