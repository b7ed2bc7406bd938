//! The nemesis: kills a random node now and then and restarts it a little later, or stops a
//! worker gracefully (its SIGTERM path: no new receive, the one in progress awaited, the
//! batches in hand finished) and restarts it once it has stopped.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use gift_runtime::rt;
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::{Handle, NodeHandle};

use crate::faults::Ctx;
use crate::history::Event;

/// How long a graceful stop may take: the long poll in progress (20 s) and the batches in
/// hand, with room for slow store calls.
const STOP_BOUND: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Api,
    Worker,
    Relay,
}

impl NodeKind {
    /// The coverage counters of a kill, and of a kill that interrupted work.
    fn kill_counters(self) -> (&'static str, &'static str) {
        match self {
            NodeKind::Api => ("kill_api", "kill_api_mid_request"),
            NodeKind::Worker => ("kill_worker", "kill_worker_mid_delivery"),
            NodeKind::Relay => ("kill_relay", "kill_relay"),
        }
    }
}

pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    pub handle: NodeHandle,
    /// Work this node was in the middle of (requests for API nodes, deliveries for workers).
    pub in_progress: Arc<AtomicU32>,
    /// The shutdown signal of a worker node.
    pub stopper: Option<Arc<Stopper>>,
}

/// A worker's shutdown signal, armed afresh at each (re)start of its node.
#[derive(Default)]
pub struct Stopper {
    signal: Mutex<Option<oneshot::Sender<()>>>,
    stopped: AtomicBool,
}

impl Stopper {
    /// A new shutdown future for the worker starting now.
    pub fn arm(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        *self.signal.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        self.stopped.store(false, Ordering::SeqCst);
        async move {
            // A dropped sender (the node restarted) is no signal.
            if rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    fn signal(&self) {
        if let Some(tx) = self.signal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }

    /// Called when the worker's loop has returned.
    pub fn stopped(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    fn has_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
pub struct NodeRef {
    name: String,
    kind: NodeKind,
    id: madsim::task::NodeId,
    in_progress: Arc<AtomicU32>,
    stopper: Option<Arc<Stopper>>,
}

impl From<&Node> for NodeRef {
    fn from(n: &Node) -> Self {
        Self {
            name: n.name.clone(),
            kind: n.kind,
            id: n.handle.id(),
            in_progress: n.in_progress.clone(),
            stopper: n.stopper.clone(),
        }
    }
}

/// Every `kill_every_ms` on average, kills a random node and restarts it a little later —
/// or, a third of the time for a worker, stops it gracefully first.
pub async fn nemesis(kill_every_ms: u64, ctx: Ctx, nodes: Vec<NodeRef>, on: Arc<AtomicBool>) {
    if nodes.is_empty() {
        return;
    }
    let handle = Handle::current();
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
        let (killed, mid_work) = node.kind.kill_counters();
        ctx.history.count(killed);
        if node.in_progress.load(Ordering::SeqCst) > 0 {
            ctx.history.count(mid_work);
        }
        ctx.record(Event::Killed { node: node.name.clone() });
        handle.kill(node.id);
        rt::sleep(Duration::from_millis(thread_rng().gen_range(0..=5_000))).await;
        node.in_progress.store(0, Ordering::SeqCst);
        handle.restart(node.id);
        ctx.record(Event::Restarted { node: node.name.clone() });
    }
}

/// Signals the worker's shutdown and waits for its loop to return (recorded as `Stopped`),
/// at most [`STOP_BOUND`]; the kill that follows ends a stop that hung.
async fn stop_gracefully(ctx: &Ctx, node: &NodeRef, stopper: &Stopper) {
    ctx.history.count("stop_worker");
    ctx.record(Event::Stopping { node: node.name.clone() });
    stopper.signal();
    let deadline = rt::now_instant() + STOP_BOUND;
    while !stopper.has_stopped() && rt::now_instant() < deadline {
        rt::sleep(Duration::from_millis(100)).await;
    }
}
