//! One seed's run: build the world's nodes on madsim, drive clients through the real
//! router, let the nemesis kill and restart nodes, heal, run to quiescence, check.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use gift_core::domain::{GiftId, Status};
use gift_core::http::ApiConfig;
use gift_core::ports::{Dispatcher, Env};
use gift_core::relay::RelayConfig;
use gift_core::service::{DeliveryOutcome, Deps, PseudoDispatcher, RetryPolicy};
use gift_core::worker::{WorkerConfig, WorkerEvent};
use gift_runtime::memory::{MemoryQueue, MemoryStore, QueueSettings};
use gift_runtime::rt::{self, SystemEnv};
use http_body_util::BodyExt;
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::{Handle, NodeHandle};
use tower::ServiceExt;

use crate::checker::{self, Violation};
use crate::faults::{Ctx, FaultyQueue, FaultyStore, RecordingDispatcher};
use crate::history::{Entry, Event, History};
use crate::world::{Mutant, World};

/// Settings shared by every seed (the world varies the rest).
pub const MAX_RECEIVES: u32 = 5;
const STALE_AFTER: Duration = Duration::from_secs(120);
const LIVENESS_DEADLINE: Duration = Duration::from_secs(3_600);
const PUBLISH_GRACE: Duration = Duration::from_secs(2);

/// What one seed produced.
pub struct RunResult {
    pub world: World,
    pub entries: Vec<Entry>,
    pub counts: BTreeMap<&'static str, u64>,
    pub violations: Vec<Violation>,
    pub sim_ms: u64,
}

struct Node {
    name: String,
    handle: NodeHandle,
    /// Work this node was in the middle of (requests for API nodes, deliveries for workers).
    in_progress: Arc<AtomicU32>,
}

/// Runs the scenario of `seed` on a fresh madsim runtime.
///
/// `history` is filled as the run goes, so a run that panics still leaves its trace.
pub fn run(seed: u64, mutant: Option<Mutant>, history: History) -> RunResult {
    let mut runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.set_time_limit(LIVENESS_DEADLINE * 4);
    runtime.block_on(scenario(seed, mutant, history))
}

async fn scenario(seed: u64, mutant: Option<Mutant>, history: History) -> RunResult {
    let world = World::draw(seed, mutant);
    history.set_world(world.to_string());
    let ctx = Ctx::new(&world, history);
    let store = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::new(QueueSettings {
        visibility_timeout: world.visibility_timeout(),
        max_receives: MAX_RECEIVES,
    }));
    let env: Arc<dyn Env> = Arc::new(SystemEnv);
    let faulty_store = Arc::new(FaultyStore::new(store.clone(), ctx.clone(), mutant));
    let faulty_queue = Arc::new(FaultyQueue::new(queue.clone(), ctx.clone()));
    let pseudo: Arc<dyn Dispatcher> = Arc::new(PseudoDispatcher::new(env.clone(), world.send_failure_rate));
    let deps_with = |dispatcher: Arc<dyn Dispatcher>| Deps {
        store: faulty_store.clone(),
        queue: faulty_queue.clone(),
        env: env.clone(),
        dispatcher,
    };
    let handle = Handle::current();
    ctx.record(Event::Phase { name: "safety" });

    let mut api_nodes = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..world.api_nodes {
        let handle = handle.create_node().name(format!("api-{i}")).build();
        let router = gift_core::http::router(
            deps_with(pseudo.clone()),
            ApiConfig { publish_grace: PUBLISH_GRACE, ..ApiConfig::default() },
        );
        let in_progress = Arc::new(AtomicU32::new(0));
        api_nodes.push(Api { id: handle.id(), router, in_progress: in_progress.clone() });
        nodes.push(Node { name: format!("api-{i}"), handle, in_progress });
    }
    let max_receives = if mutant == Some(Mutant::OffByOneReceives) { MAX_RECEIVES - 1 } else { MAX_RECEIVES };
    let worker_config = WorkerConfig {
        batch_size: 10,
        wait: Duration::from_secs(20),
        error_pause: Duration::from_secs(1),
        retry: RetryPolicy { max_receives, backoff: Duration::from_millis(world.retry_backoff_ms) },
    };
    for i in 0..world.worker_nodes {
        let name = format!("worker-{i}");
        let in_progress = Arc::new(AtomicU32::new(0));
        let deps = deps_with(Arc::new(RecordingDispatcher {
            inner: pseudo.clone(),
            ctx: ctx.clone(),
            latency_max_ms: world.dispatch_latency_max_ms,
            in_progress: in_progress.clone(),
        }));
        let (ctx2, name2, progress2) = (ctx.clone(), name.clone(), in_progress.clone());
        let handle = handle
            .create_node()
            .name(&name)
            .init(move || {
                let observe = observer(ctx2.clone(), name2.clone(), progress2.clone());
                gift_core::worker::run_worker(deps.clone(), worker_config, observe, std::future::pending())
            })
            .build();
        nodes.push(Node { name, handle, in_progress });
    }
    let relay_config = RelayConfig { interval: Duration::from_millis(500), batch: 100, stale_after: STALE_AFTER };
    for i in 0..world.relay_nodes {
        let deps = deps_with(pseudo.clone());
        let ctx2 = ctx.clone();
        let handle = handle
            .create_node()
            .name(format!("relay-{i}"))
            .init(move || {
                let ctx3 = ctx2.clone();
                let observe = move |pass: &gift_core::relay::RelayPass| {
                    for _ in 0..pass.published {
                        ctx3.history.count("relay_published");
                    }
                };
                gift_core::relay::run_relay(deps.clone(), relay_config, observe, std::future::pending())
            })
            .build();
        nodes.push(Node { name: format!("relay-{i}"), handle, in_progress: Arc::new(AtomicU32::new(0)) });
    }

    // Clients on the main node, which the nemesis never kills.
    let api_nodes = Arc::new(api_nodes);
    let clients: Vec<_> =
        (0..world.clients).map(|c| rt::spawn(client(c, world.clone(), ctx.clone(), api_nodes.clone()))).collect();

    let nemesis_on = Arc::new(AtomicBool::new(world.kill_every_ms > 0));
    let nemesis_task = rt::spawn(nemesis(
        world.kill_every_ms,
        ctx.clone(),
        nodes.iter().map(NodeRef::from).collect(),
        nemesis_on.clone(),
    ));

    rt::sleep(Duration::from_millis(world.safety_ms)).await;

    // Liveness: heal every fault, bring every node back, and wait for quiescence.
    ctx.heal();
    nemesis_on.store(false, Ordering::SeqCst);
    let _ = nemesis_task.await;
    for node in &nodes {
        handle.restart(node.handle.id());
        node.in_progress.store(0, Ordering::SeqCst);
    }
    ctx.record(Event::Phase { name: "liveness" });
    let deadline = rt::now_instant() + LIVENESS_DEADLINE;
    let clients_done = futures::future::join_all(clients);
    let give_up = rt::sleep(LIVENESS_DEADLINE);
    futures::pin_mut!(clients_done, give_up);
    if let futures::future::Either::Right(_) = futures::future::select(clients_done, give_up).await {
        ctx.record(Event::Phase { name: "clients-unfinished" });
    }
    while rt::now_instant() < deadline {
        let unfinished = store.gifts().iter().any(|g| g.status == Status::Queued);
        if !unfinished {
            break;
        }
        rt::sleep(Duration::from_secs(1)).await;
    }
    ctx.record(Event::Phase { name: "end" });
    let finals: BTreeMap<GiftId, Status> = store.gifts().into_iter().map(|g| (g.id, g.status)).collect();
    let entries = ctx.history.entries();
    let violations = checker::check(&entries, Some(&finals), MAX_RECEIVES);
    let mut counts = ctx.history.counts();
    for e in &entries {
        let what = match &e.event {
            Event::Transition { to: Status::Sent, .. } => "gift_sent",
            Event::Transition { to: Status::Failed, .. } => "gift_failed",
            Event::DeadLettered { .. } => "dead_lettered",
            Event::Handled { outcome, .. } if outcome == "Duplicate" => "duplicate_after_terminal",
            Event::Handled { outcome, .. } if outcome == "LostRace" => "lost_race",
            Event::SendLost { .. } => "send_answer_lost",
            Event::SendAnswered { code: 503, .. } => "send_503",
            Event::SendAnswered { code: 200, .. } => "send_replayed",
            Event::SendAnswered { code: 409, .. } => "send_conflict",
            _ => continue,
        };
        *counts.entry(what).or_default() += 1;
    }
    RunResult { sim_ms: ctx.now_ms(), world, entries, counts, violations }
}

/// The worker observer: records each handled delivery and keeps `in_progress` honest.
fn observer(ctx: Ctx, node: String, in_progress: Arc<AtomicU32>) -> impl Fn(WorkerEvent<'_>) + Send + Sync {
    move |event| {
        if let WorkerEvent::Handled(delivery, outcome) = event {
            let _ = in_progress.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            let gift = gift_core::domain::SendMessage::from_body(&delivery.body).ok().map(|m| m.gift_id);
            let outcome = match outcome {
                DeliveryOutcome::Error(_) => "Error".to_owned(),
                DeliveryOutcome::Poison(_) => "Poison".to_owned(),
                other => format!("{other:?}"),
            };
            ctx.record(Event::Handled { gift, node: node.clone(), outcome });
        }
    }
}

#[derive(Clone)]
struct NodeRef {
    name: String,
    id: madsim::task::NodeId,
    in_progress: Arc<AtomicU32>,
}

impl From<&Node> for NodeRef {
    fn from(n: &Node) -> Self {
        Self { name: n.name.clone(), id: n.handle.id(), in_progress: n.in_progress.clone() }
    }
}

/// Kills a random node every `kill_every_ms` on average and restarts it a little later.
async fn nemesis(kill_every_ms: u64, ctx: Ctx, nodes: Vec<NodeRef>, on: Arc<AtomicBool>) {
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
        let kind = if node.name.starts_with("api") {
            "kill_api"
        } else if node.name.starts_with("worker") {
            "kill_worker"
        } else {
            "kill_relay"
        };
        ctx.history.count(kind);
        if node.in_progress.load(Ordering::SeqCst) > 0 {
            ctx.history.count(if kind == "kill_api" { "kill_api_mid_request" } else { "kill_worker_mid_delivery" });
        }
        ctx.record(Event::Killed { node: node.name.clone() });
        handle.kill(node.id);
        rt::sleep(Duration::from_millis(thread_rng().gen_range(0..=5_000))).await;
        node.in_progress.store(0, Ordering::SeqCst);
        handle.restart(node.id);
        ctx.record(Event::Restarted { node: node.name.clone() });
    }
}

struct Api {
    id: madsim::task::NodeId,
    router: Router,
    in_progress: Arc<AtomicU32>,
}

/// Sends one request to a random API node; `None` when the node died before answering.
async fn call(apis: &[Api], method: Method, uri: String, key: Option<&str>, body: &str) -> Option<(u16, String)> {
    let api = &apis[thread_rng().gen_range(0..apis.len())];
    let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let req = req.body(Body::from(body.to_owned())).expect("valid request");
    let router = api.router.clone();
    api.in_progress.fetch_add(1, Ordering::SeqCst);
    // A fresh handle each time: a handle taken before a restart spawns onto the dead node.
    let node = Handle::current().get_node(api.id).expect("api node exists");
    let answer = node
        .spawn(async move {
            let res = router.oneshot(req).await.expect("the router is infallible");
            let status = res.status().as_u16();
            let bytes = res.into_body().collect().await.expect("body").to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        })
        .await
        .ok();
    let _ = api.in_progress.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    answer
}

/// One client: creates gifts, then sends each from several racing senders, retrying
/// unanswered or 503 requests with the same key until it hears a final answer.
async fn client(id: usize, world: World, ctx: Ctx, apis: Arc<Vec<Api>>) {
    for g in 0..world.gifts_per_client {
        let amount = thread_rng().gen_range(1..=10_000);
        let gift = loop {
            match call(&apis, Method::POST, "/gifts".into(), None, &format!("{{\"amount\":{amount}}}")).await {
                Some((201, body)) => {
                    let v: serde_json::Value = serde_json::from_str(&body).expect("201 body is JSON");
                    let id = GiftId::parse(v["gift_id"].as_str().expect("gift_id")).expect("gift_id is a UUID");
                    ctx.record(Event::Created { gift: id });
                    break id;
                }
                Some((code, body)) if code != 503 => panic!("POST /gifts answered {code}: {body}"),
                _ => rt::sleep(Duration::from_millis(thread_rng().gen_range(10..=500))).await,
            }
        };
        let shared = thread_rng().gen_bool(world.shared_key_chance);
        let senders: Vec<_> = (0..world.senders_per_gift)
            .map(|s| {
                let key = if shared { format!("c{id}-g{g}") } else { format!("c{id}-g{g}-s{s}") };
                rt::spawn(sender(gift, key, world.replay_chance, ctx.clone(), apis.clone()))
            })
            .collect();
        for s in senders {
            let _ = s.await;
        }
    }
}

async fn sender(gift: GiftId, key: String, replay_chance: f64, ctx: Ctx, apis: Arc<Vec<Api>>) {
    let uri = format!("/gifts/{gift}/send");
    let mut replays_left = u32::from(thread_rng().gen_bool(replay_chance));
    loop {
        match call(&apis, Method::POST, uri.clone(), Some(&key), "").await {
            None => ctx.record(Event::SendLost { gift, key: key.clone() }),
            Some((code, body)) => {
                ctx.record(Event::SendAnswered { gift, key: key.clone(), code, body });
                let settled = (200..300).contains(&code) || (400..500).contains(&code);
                if settled && replays_left == 0 {
                    return;
                }
                if settled {
                    replays_left -= 1;
                }
            }
        }
        rt::sleep(Duration::from_millis(thread_rng().gen_range(10..=1_000))).await;
    }
}
