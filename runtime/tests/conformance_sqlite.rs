//! The embedded SQLite store and queue against the conformance suites, plus persistence.

use std::sync::Arc;
use std::time::Duration;

use gift_runtime::conformance::{queue, store};
use gift_runtime::memory::QueueSettings;

fn temp_db() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gift-sqlite-test-{}-{}",
        std::process::id(),
        gift_runtime::rt::random_u64()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("data.sqlite")
}

const SETTINGS: QueueSettings = QueueSettings { visibility_timeout: Duration::from_secs(1), max_receives: 5 };

#[tokio::test]
async fn sqlite_store_conforms() {
    store::run_all(|| async {
        let (s, _) = gift_runtime::sqlite::open(&temp_db(), SETTINGS).await.unwrap();
        s as Arc<dyn gift_core::ports::Store>
    })
    .await;
}

#[tokio::test]
async fn sqlite_gauges_count_the_due_rows_only() {
    let (s, _) = gift_runtime::sqlite::open(&temp_db(), SETTINGS).await.unwrap();
    store::gauges_count_the_due_rows_only(&*s, &*s).await;
}

#[tokio::test]
async fn sqlite_queue_conforms() {
    queue::run_all(|| async {
        let (_, q) = gift_runtime::sqlite::open(&temp_db(), SETTINGS).await.unwrap();
        let dead = q.clone();
        queue::QueueUnderTest {
            queue: q,
            dead_letters: Box::new(move || {
                let dead = dead.clone();
                Box::pin(async move { dead.dead_letters().await.unwrap() })
            }),
        }
    })
    .await;
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    use gift_core::domain::{Amount, Gift, GiftCode, GiftId};
    use gift_core::ports::{Queue, Store};
    let path = temp_db();
    let gift = Gift::new(
        GiftId::from_random(42),
        GiftCode::from_random(42),
        Amount::try_from(5).unwrap(),
        None,
        gift_runtime::rt::now_utc(),
    );
    let message = queue::unique_message("persisted");
    {
        let (s, q) = gift_runtime::sqlite::open(&path, SETTINGS).await.unwrap();
        s.insert_gift(&gift).await.unwrap();
        q.publish(&message, None).await.unwrap();
    }
    let (s, q) = gift_runtime::sqlite::open(&path, SETTINGS).await.unwrap();
    assert_eq!(s.get_gift(gift.id).await.unwrap(), Some(gift));
    let got = q.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, message.to_body());
}
