//! SQS (through the emulator at `TEST_SQS_ENDPOINT`, e.g. moto) against the queue
//! conformance suite. Each test creates its own queue and dead-letter queue with a redrive
//! after 5 receives, as Terraform configures the real ones.

mod support;

use gift_runtime::conformance::{queue, sqs_emulator};
use gift_runtime::sqs::SqsQueue;
use std::sync::Arc;

async fn fresh_queue(endpoint: &str) -> queue::QueueUnderTest {
    let client = sqs_emulator::client(endpoint);
    let name = format!("gift-test-{:016x}", gift_runtime::rt::random_u64());
    let (url, dlq_url) = sqs_emulator::queue_with_dlq(&client, &name, 1, 5).await;
    let peek = client.clone();
    queue::QueueUnderTest {
        queue: Arc::new(SqsQueue::new(client, url)),
        dead_letters: Box::new(move || {
            let (peek, dlq_url) = (peek.clone(), dlq_url.clone());
            Box::pin(async move { sqs_emulator::peek_bodies(&peek, &dlq_url).await })
        }),
    }
}

#[tokio::test]
async fn sqs_queue_conforms() {
    let Some(endpoint) = support::service("TEST_SQS_ENDPOINT", "SQS") else { return };
    queue::run_all(|| fresh_queue(&endpoint)).await;
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    use gift_core::ports::Queue;
    let q = SqsQueue::new(sqs_emulator::client("http://127.0.0.1:1"), "http://127.0.0.1:1/000000000000/none");
    let err = q.publish(&queue::unique_message("unreachable"), None).await.unwrap_err();
    assert!(matches!(err, gift_core::QueueError::Unavailable(_)), "{err:?}");
}

/// An SQS endpoint that accepts connections and never answers (a hung load balancer, a
/// half-open connection): every call fails as `Unavailable` within its timeouts — a
/// long-poll receive after its wait — instead of hanging the loop that made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_sqs_is_unavailable_not_a_hang() {
    use std::time::{Duration, Instant};

    use gift_core::ports::Queue;
    use gift_core::QueueError;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let queue = SqsQueue::new(sqs_emulator::client(&endpoint), format!("{endpoint}/123456789012/hung"));
    let within = Duration::from_secs(40);
    let started = Instant::now();
    let publish =
        tokio::time::timeout(within, queue.publish(&queue::unique_message("hung"), None)).await.expect("publish hung");
    assert!(matches!(publish, Err(QueueError::Unavailable(_))), "{publish:?}");
    let receive = tokio::time::timeout(within, queue.receive(10, Duration::from_secs(1))).await.expect("receive hung");
    assert!(matches!(receive, Err(QueueError::Unavailable(_))), "{receive:?}");
    eprintln!("two hung calls failed in {:.1?}", started.elapsed());
    held.abort();
}
