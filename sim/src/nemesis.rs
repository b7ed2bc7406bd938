//! The nemesis: kills a random node now and then and restarts it a little later, or stops a
//! worker gracefully (its SIGTERM path: no new receive, the one in progress awaited, the
//! batches in hand finished) and restarts it once it has stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gift_runtime::rt::{self, JoinHandle};
use madsim::rand::{thread_rng, Rng};

use crate::cluster::{Cluster, Node, Stopper};
use crate::faults::Ctx;
use crate::history::Event;
use crate::kinds::Counter;

/// How long a graceful stop may take: the long poll in progress (20 s) and the batches in
/// hand, with room for slow store calls.
const STOP_BOUND: Duration = Duration::from_secs(120);

/// The running nemesis, until [`Nemesis::stop`].
pub struct Nemesis {
    on: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Nemesis {
    /// Starts killing `cluster`'s nodes every `kill_every_ms` on average (never, at 0).
    pub fn start(kill_every_ms: u64, ctx: &Ctx, cluster: Arc<Cluster>) -> Self {
        let on = Arc::new(AtomicBool::new(kill_every_ms > 0));
        let task = rt::spawn(run(kill_every_ms, ctx.clone(), cluster, on.clone()));
        Self { on, task }
    }

    /// Stops picking nodes, and waits for the node in hand to be restarted.
    pub async fn stop(self) {
        self.on.store(false, Ordering::SeqCst);
        let _ = self.task.await;
    }
}

/// Every `kill_every_ms` on average, kills a random node and restarts it a little later —
/// or, a third of the time for a worker, stops it gracefully first.
async fn run(kill_every_ms: u64, ctx: Ctx, cluster: Arc<Cluster>, on: Arc<AtomicBool>) {
    let nodes = cluster.nodes();
    if nodes.is_empty() {
        return;
    }
    while on.load(Ordering::SeqCst) {
        let pause = thread_rng().gen_range(0..=2 * kill_every_ms);
        rt::sleep(Duration::from_millis(pause)).await;
        if !on.load(Ordering::SeqCst) {
            break;
        }
        let node = &nodes[thread_rng().gen_range(0..nodes.len())];
        if let Some(stopper) = node.stopper.as_ref().filter(|_| thread_rng().gen_bool(1.0 / 3.0)) {
            stop_gracefully(&ctx, node, stopper).await;
        }
        cluster.kill(node);
        rt::sleep(Duration::from_millis(thread_rng().gen_range(0..=5_000))).await;
        cluster.restart(node);
    }
}

/// Signals the worker's shutdown and waits for its loop to return (recorded as `Stopped`),
/// at most [`STOP_BOUND`]; the kill that follows ends a stop that hung.
async fn stop_gracefully(ctx: &Ctx, node: &Node, stopper: &Stopper) {
    ctx.history.count(Counter::StopWorker);
    ctx.record(Event::Stopping { node: node.name.clone() });
    stopper.signal();
    let deadline = rt::now_instant() + STOP_BOUND;
    while !stopper.has_stopped() && rt::now_instant() < deadline {
        rt::sleep(Duration::from_millis(100)).await;
    }
}
