//! The simulated cluster (after RisingWave's): the shared store and queue models, and the
//! api, worker and relay nodes running the real router and loops, each node named
//! `<kind>-<index>` and calling the models through wrappers of its own. The cluster kills,
//! restarts and heals nodes and tells what the store holds at the end.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use futures::channel::oneshot;
use gift_core::domain::{GiftId, SendMessage, Status};
use gift_core::http::ApiConfig;
use gift_core::ports::{Dispatcher, Env};
use gift_core::relay::{RelayConfig, RelayPass};
use gift_core::service::{Deps, PseudoDispatcher};
use gift_core::worker::WorkerEvent;
use gift_core::AppError;
use gift_runtime::memory::{MemoryQueue, MemoryStore, QueueSettings};
use gift_runtime::rt::SystemEnv;
use madsim::runtime::Handle;
use madsim::task::NodeId;

use crate::faults::{Ctx, FaultyQueue, FaultyStore, RecordingDispatcher};
use crate::history::Event;
use crate::kinds::{Counter, NodeKind};
use crate::world::{World, MAX_RECEIVES};

/// What a cluster's nodes are configured with besides the world.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub api: ApiConfig,
    pub relay: RelayConfig,
}

/// One simulated node.
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    id: NodeId,
    /// Work this node is in the middle of (requests for API nodes, deliveries for workers).
    pub in_progress: Arc<AtomicU32>,
    /// The shutdown signal of a worker node.
    pub stopper: Option<Arc<Stopper>>,
}

/// An API node as clients reach it.
pub struct Api {
    pub id: NodeId,
    pub router: Router,
    pub in_progress: Arc<AtomicU32>,
}

pub struct Cluster {
    handle: Handle,
    ctx: Ctx,
    store: Arc<MemoryStore>,
    /// In creation order: api, worker, relay nodes.
    nodes: Vec<Node>,
    apis: Arc<Vec<Api>>,
}

/// What building a node needs: the models, the world, and the context to record into.
struct Builder<'a> {
    world: &'a World,
    ctx: &'a Ctx,
    settings: Settings,
    handle: Handle,
    store: Arc<MemoryStore>,
    queue: FaultyQueue,
    env: Arc<dyn Env>,
    pseudo: Arc<dyn Dispatcher>,
}

impl Builder<'_> {
    /// A node's ports: the shared models through wrappers that record `node` as the caller.
    fn deps(&self, node: &str, dispatcher: Arc<dyn Dispatcher>) -> Deps {
        Deps {
            store: Arc::new(FaultyStore::new(self.store.clone(), self.ctx.on(node))),
            queue: Arc::new(self.queue.on(node)),
            env: self.env.clone(),
            dispatcher,
        }
    }

    fn api(&self, name: String) -> (Node, Api) {
        let id = self.handle.create_node().name(&name).build().id();
        let router = gift_core::http::router(self.deps(&name, self.pseudo.clone()), self.settings.api);
        let in_progress = Arc::new(AtomicU32::new(0));
        let api = Api { id, router, in_progress: in_progress.clone() };
        (Node { name, kind: NodeKind::Api, id, in_progress, stopper: None }, api)
    }

    /// A worker node; each (re)start runs the worker loop afresh with a new shutdown signal.
    fn worker(&self, name: String) -> Node {
        let in_progress = Arc::new(AtomicU32::new(0));
        let dispatcher = Arc::new(RecordingDispatcher {
            inner: self.pseudo.clone(),
            ctx: self.ctx.on(&name),
            latency_max_ms: self.world.dispatch_latency_max_ms,
            in_progress: in_progress.clone(),
        });
        let deps = self.deps(&name, dispatcher);
        let config = self.world.worker_config();
        let (ctx, node, progress) = (self.ctx.clone(), name.clone(), in_progress.clone());
        let stopper = Arc::new(Stopper::default());
        let signal = stopper.clone();
        let init = move || {
            let observe = observer(ctx.clone(), node.clone(), progress.clone());
            let (ctx, node, deps, stopper) = (ctx.clone(), node.clone(), deps.clone(), signal.clone());
            let stop = stopper.arm();
            async move {
                gift_core::worker::run_worker(deps, config, observe, stop).await;
                stopper.stopped();
                ctx.record(Event::Stopped { node });
            }
        };
        let id = self.handle.create_node().name(&name).init(init).build().id();
        Node { name, kind: NodeKind::Worker, id, in_progress, stopper: Some(stopper) }
    }

    fn relay(&self, name: String) -> Node {
        let deps = self.deps(&name, self.pseudo.clone());
        let (ctx, relay) = (self.ctx.clone(), self.settings.relay);
        let init = move || {
            let ctx = ctx.clone();
            let observe = move |pass: Result<&RelayPass, &AppError>| {
                if let Ok(pass) = pass {
                    ctx.history.count_n(Counter::RelayPublished, u64::from(pass.published));
                }
            };
            gift_core::relay::run_relay(deps.clone(), relay, observe, std::future::pending())
        };
        let id = self.handle.create_node().name(&name).init(init).build().id();
        Node { name, kind: NodeKind::Relay, id, in_progress: Arc::new(AtomicU32::new(0)), stopper: None }
    }
}

impl Cluster {
    /// Starts the world's nodes: its api, then worker, then relay nodes.
    pub fn start(world: &World, ctx: &Ctx, settings: Settings) -> Self {
        let store = Arc::new(MemoryStore::new());
        let queue = Arc::new(MemoryQueue::new(QueueSettings {
            visibility_timeout: world.visibility_timeout(),
            max_receives: MAX_RECEIVES,
        }));
        let env: Arc<dyn Env> = Arc::new(SystemEnv);
        let builder = Builder {
            world,
            ctx,
            settings,
            handle: Handle::current(),
            store: store.clone(),
            queue: FaultyQueue::new(queue, ctx.clone()),
            pseudo: Arc::new(PseudoDispatcher::new(env.clone(), world.send_failure_rate)),
            env,
        };
        let (mut nodes, mut apis) = (Vec::new(), Vec::new());
        for i in 0..world.api_nodes {
            let (node, api) = builder.api(NodeKind::Api.node_name(i));
            nodes.push(node);
            apis.push(api);
        }
        nodes.extend((0..world.worker_nodes).map(|i| builder.worker(NodeKind::Worker.node_name(i))));
        nodes.extend((0..world.relay_nodes).map(|i| builder.relay(NodeKind::Relay.node_name(i))));
        Self { handle: builder.handle, ctx: ctx.clone(), store, nodes, apis: Arc::new(apis) }
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The API nodes, for the clients.
    pub fn apis(&self) -> Arc<Vec<Api>> {
        self.apis.clone()
    }

    /// Kills `node`: its tasks are dropped at whatever await they were in. Counted by kind,
    /// and as a kill mid-work when the node was in the middle of something.
    pub fn kill(&self, node: &Node) {
        self.ctx.history.count(node.kind.kill_counter());
        if node.in_progress.load(Ordering::SeqCst) > 0 {
            if let Some(mid_work) = node.kind.kill_mid_work_counter() {
                self.ctx.history.count(mid_work);
            }
        }
        self.ctx.record(Event::Killed { node: node.name.clone() });
        self.handle.kill(node.id);
    }

    /// Starts a killed node again, from its entry point.
    pub fn restart(&self, node: &Node) {
        node.in_progress.store(0, Ordering::SeqCst);
        self.handle.restart(node.id);
        self.ctx.record(Event::Restarted { node: node.name.clone() });
    }

    /// Restarts every node, recorded as a kill and a restart: whatever a node was doing is
    /// lost, as when the nemesis kills it, but nothing is counted.
    pub fn restart_all(&self) {
        for node in &self.nodes {
            self.ctx.record(Event::Killed { node: node.name.clone() });
            self.handle.restart(node.id);
            self.ctx.record(Event::Restarted { node: node.name.clone() });
            node.in_progress.store(0, Ordering::SeqCst);
        }
    }

    /// Whether some gift is still QUEUED: the run has not quiesced.
    pub fn has_queued_gifts(&self) -> bool {
        self.store.gifts().iter().any(|g| g.status == Status::Queued)
    }

    /// Each gift's status in the store.
    pub fn final_statuses(&self) -> BTreeMap<GiftId, Status> {
        self.store.gifts().into_iter().map(|g| (g.id, g.status)).collect()
    }
}

/// The worker observer: records each handled delivery and keeps `in_progress` honest.
fn observer(ctx: Ctx, node: String, in_progress: Arc<AtomicU32>) -> impl Fn(WorkerEvent<'_>) + Send + Sync {
    move |event| {
        if let WorkerEvent::Handled(delivery, outcome) = event {
            let _ = in_progress.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            let gift = SendMessage::from_body(&delivery.body).ok().map(|m| m.gift_id);
            let msg = MemoryQueue::message_of(&delivery.receipt);
            let (node, receive_count) = (node.clone(), delivery.receive_count);
            ctx.record(Event::Handled { node, msg, receive_count, gift, outcome: outcome.into() });
        }
    }
}

/// A worker's shutdown signal, armed afresh at each (re)start of its node.
#[derive(Default)]
pub struct Stopper {
    signal: Mutex<Option<oneshot::Sender<()>>>,
    stopped: AtomicBool,
}

impl Stopper {
    /// A new shutdown future for the worker starting now.
    pub fn arm(&self) -> impl Future<Output = ()> + Send + 'static {
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

    /// Signals the worker's shutdown (its SIGTERM).
    pub fn signal(&self) {
        if let Some(tx) = self.signal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }

    /// Called when the worker's loop has returned.
    pub fn stopped(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    pub fn has_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}
