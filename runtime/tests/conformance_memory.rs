//! The in-memory models against the conformance suites (simulated time: `start_paused`).

use std::sync::Arc;
use std::time::Duration;

use gift_runtime::conformance::{queue, store};
use gift_runtime::memory::{MemoryQueue, MemoryStore, QueueSettings};

#[tokio::test(start_paused = true)]
async fn memory_store_conforms() {
    store::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn gift_core::ports::Store> }).await;
}

#[tokio::test(start_paused = true)]
async fn memory_queue_conforms() {
    queue::run_all(|| async {
        let q =
            Arc::new(MemoryQueue::new(QueueSettings { visibility_timeout: Duration::from_secs(1), max_receives: 5 }));
        let dead = q.clone();
        queue::QueueUnderTest {
            queue: q,
            dead_letters: Box::new(move || {
                let d = dead.dead_letters();
                Box::pin(async move { d })
            }),
        }
    })
    .await;
}
