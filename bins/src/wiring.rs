//! Building ports and background loops from configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gift_core::ports::Env;
use gift_core::service::{Deps, PseudoDispatcher};
use gift_core::worker::WorkerEvent;
#[cfg(feature = "aws")]
use gift_runtime::postgres::PgStore;
use gift_runtime::rt::SystemEnv;
#[cfg(feature = "aws")]
use gift_runtime::sqs::SqsQueue;
use gift_runtime::tap::Tap;

use crate::config::TapArgs;
#[cfg(feature = "aws")]
use crate::config::{DbArgs, SqsArgs};

#[cfg(feature = "aws")]
/// Connects the production store (lazily) and runs migrations if asked. Each connection
/// names its process (`application_name`: `gift-api`, `gift-worker`), so `pg_stat_activity`
/// and the RDS logs tell whose connection is whose.
pub async fn postgres_store(db: &DbArgs, application_name: &str) -> Result<Arc<PgStore>, String> {
    let store = PgStore::new(db.connect_options()?.application_name(application_name), db.pool_settings());
    if db.run_migrations {
        store.migrate().await.map_err(|e| e.to_string())?;
    }
    Ok(Arc::new(store))
}

#[cfg(feature = "aws")]
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

/// The effect tap, when `EFFECT_LOG` is set.
pub fn open_tap(args: &TapArgs) -> Result<Option<Arc<Tap>>, String> {
    let Some(path) = &args.effect_log else { return Ok(None) };
    Tap::open(path, &args.node_name).map(Some).map_err(|e| format!("cannot open {} (EFFECT_LOG): {e}", path.display()))
}

/// The worker's relay's tap: the same file, named `relay-N` for `worker-N`.
pub fn relay_tap(tap: &Tap, args: &TapArgs) -> Result<Arc<Tap>, String> {
    let number = args.node_name.strip_prefix("worker-").unwrap_or(&args.node_name);
    tap.renamed(&format!("relay-{number}")).map_err(|e| format!("cannot share the effect log: {e}"))
}

/// `deps` with every port call written to `tap`.
pub fn tapped(deps: &Deps, tap: &Arc<Tap>) -> Deps {
    Deps {
        store: tap.store(deps.store.clone()),
        queue: tap.queue(deps.queue.clone()),
        dispatcher: tap.dispatcher(deps.dispatcher.clone()),
        env: deps.env.clone(),
    }
}

/// A worker observer that touches `path` on every loop turn (for the container health check).
/// When a tap is given, each handled delivery is also written to it.
pub fn heartbeat(path: &Path, tap: Option<Arc<Tap>>) -> impl Fn(WorkerEvent<'_>) + Send + Sync + 'static {
    let path = path.to_owned();
    move |event| {
        if let (WorkerEvent::Handled(delivery, outcome), Some(tap)) = (&event, &tap) {
            tap.handled(delivery, outcome);
        }
        if matches!(event, WorkerEvent::Turn) {
            touch(&path);
        }
    }
}

/// The relay's heartbeat: `HEARTBEAT_FILE` with `.relay` appended, touched after every
/// relay pass, failed or not. The health check wants both fresh.
pub fn relay_heartbeat_path(worker_heartbeat: &Path) -> PathBuf {
    let mut path = worker_heartbeat.as_os_str().to_owned();
    path.push(".relay");
    path.into()
}

pub fn relay_heartbeat<T, E>(path: &Path) -> impl Fn(Result<&T, &E>) + Send + Sync + 'static {
    let path = relay_heartbeat_path(path);
    move |_pass| touch(&path)
}

fn touch(path: &Path) {
    if let Err(e) = std::fs::write(path, b"") {
        tracing::warn!(error_code = "HEARTBEAT_FAILED", error_message = %e, path = %path.display(), "could not touch a heartbeat file");
    }
}

/// Whether the worker loop and the relay both turned within `max_age`.
pub fn worker_is_live(worker_heartbeat: &Path, max_age: Duration) -> bool {
    heartbeat_is_fresh(worker_heartbeat, max_age)
        && heartbeat_is_fresh(&relay_heartbeat_path(worker_heartbeat), max_age)
}

/// Whether `path` was touched within `max_age`.
fn heartbeat_is_fresh(path: &Path, max_age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age <= max_age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_is_live_only_while_both_heartbeats_are_fresh() {
        let dir = std::env::temp_dir().join(format!("gift-heartbeat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let worker = dir.join("worker.heartbeat");
        let minute = Duration::from_secs(60);
        assert!(!worker_is_live(&worker, minute), "no heartbeat at all");
        touch(&worker);
        assert!(!worker_is_live(&worker, minute), "the relay has not turned");
        touch(&relay_heartbeat_path(&worker));
        assert!(worker_is_live(&worker, minute));
        std::thread::sleep(Duration::from_millis(1_100));
        assert!(!worker_is_live(&worker, Duration::from_secs(1)), "both went stale");
        std::fs::remove_dir_all(&dir).ok();
    }
}
