//! Building ports and background loops from configuration.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gift_core::ports::Env;
use gift_core::service::{Deps, PseudoDispatcher};
use gift_core::worker::WorkerEvent;
use gift_runtime::postgres::PgStore;
use gift_runtime::rt::SystemEnv;
use gift_runtime::sqs::SqsQueue;

use crate::config::{DbArgs, SqsArgs};

/// Connects the production store (lazily) and runs migrations if asked.
pub async fn postgres_store(db: &DbArgs) -> Result<Arc<PgStore>, String> {
    let store = PgStore::new(db.connect_options()?, db.pool_settings());
    if db.run_migrations {
        store.migrate().await.map_err(|e| e.to_string())?;
    }
    Ok(Arc::new(store))
}

pub async fn sqs_queue(sqs: &SqsArgs) -> Arc<SqsQueue> {
    let client = SqsQueue::client_from_env(sqs.aws_region.clone()).await;
    Arc::new(SqsQueue::new(client, sqs.sqs_queue_url.clone()))
}

/// Production dependencies with the pseudo-send at `failure_rate`.
pub fn deps(
    store: Arc<dyn gift_core::ports::Store>,
    queue: Arc<dyn gift_core::ports::Queue>,
    failure_rate: f64,
) -> Deps {
    let env: Arc<dyn Env> = Arc::new(SystemEnv);
    Deps { store, queue, dispatcher: Arc::new(PseudoDispatcher::new(env.clone(), failure_rate)), env }
}

/// A worker observer that touches `path` on every loop turn (for the container health check).
pub fn heartbeat(path: &Path) -> impl Fn(WorkerEvent<'_>) + Send + Sync + 'static {
    let path = path.to_owned();
    move |event| {
        if !matches!(event, WorkerEvent::Turn) {
            return;
        }
        if let Err(e) = std::fs::write(&path, b"") {
            tracing::warn!(error_code = "HEARTBEAT_FAILED", error_message = %e, "could not touch the heartbeat file");
        }
    }
}

/// Whether `path` was touched within `max_age`.
pub fn heartbeat_is_fresh(path: &Path, max_age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age <= max_age)
}
