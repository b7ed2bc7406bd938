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
use gift_core::service::{Deps, PseudoDispatcher};
use gift_core::worker::WorkerEvent;
use gift_runtime::memory::{MemoryQueue, MemoryStore, QueueSettings};
use gift_runtime::rt::{self, SystemEnv};
use http_body_util::BodyExt;
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::Handle;
use tower::ServiceExt;

use crate::checker::{self, End, Expect, Violation};
use crate::faults::{Ctx, FaultyQueue, FaultyStore, RecordingDispatcher};
use crate::history::{Entry, Event, History, Outcome, Phase, StoreCall};
use crate::nemesis::{nemesis, Node, NodeKind, NodeRef, Stopper};
use crate::workload;
use crate::world::{World, MAX_RECEIVES};

/// Settings shared by every seed (the world varies the rest).
const STALE_AFTER: Duration = Duration::from_secs(120);
const RELAY: RelayConfig = RelayConfig {
    interval: Duration::from_millis(500),
    batch: 100,
    claim: Duration::from_secs(30),
    stale_after: STALE_AFTER,
};
const LIVENESS_DEADLINE: Duration = Duration::from_secs(3_600);
const PUBLISH_GRACE: Duration = Duration::from_secs(2);

/// What one seed produced.
pub struct RunResult {
    pub world: World,
    pub entries: Vec<Entry>,
    pub counts: BTreeMap<&'static str, u64>,
    pub violations: Vec<Violation>,
    pub sim_ms: u64,
    /// Simulated time from healing to quiescence.
    pub heal_ms: Option<u64>,
}

/// Runs the scenario of `seed` on a fresh madsim runtime.
///
/// `history` is filled as the run goes, so a run that panics still leaves its trace.
pub fn run(seed: u64, history: History) -> RunResult {
    let mut runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.set_time_limit(LIVENESS_DEADLINE * 4);
    runtime.block_on(scenario(seed, history))
}

async fn scenario(seed: u64, history: History) -> RunResult {
    let world = World::draw(seed);
    history.set_world(world.to_string());
    let ctx = Ctx::new(&world, history);
    let store = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::new(QueueSettings {
        visibility_timeout: world.visibility_timeout(),
        max_receives: MAX_RECEIVES,
    }));
    let env: Arc<dyn Env> = Arc::new(SystemEnv);
    let faulty_queue = FaultyQueue::new(queue.clone(), ctx.clone());
    let pseudo: Arc<dyn Dispatcher> = Arc::new(PseudoDispatcher::new(env.clone(), world.send_failure_rate));
    // Each node calls the shared models through wrappers of its own, so the history says
    // which node asked what.
    let deps_for = |node: &str, dispatcher: Arc<dyn Dispatcher>| Deps {
        store: Arc::new(FaultyStore::new(store.clone(), ctx.on(node))),
        queue: Arc::new(faulty_queue.on(node)),
        env: env.clone(),
        dispatcher,
    };
    let handle = Handle::current();
    ctx.record(Event::Phase { phase: Phase::Safety });

    let mut api_nodes = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..world.api_nodes {
        let name = format!("api-{i}");
        let handle = handle.create_node().name(&name).build();
        let router = gift_core::http::router(
            deps_for(&name, pseudo.clone()),
            ApiConfig { publish_grace: PUBLISH_GRACE, ..ApiConfig::default() },
        );
        let in_progress = Arc::new(AtomicU32::new(0));
        api_nodes.push(Api { id: handle.id(), router, in_progress: in_progress.clone() });
        nodes.push(Node { name, kind: NodeKind::Api, handle, in_progress, stopper: None });
    }
    let worker_config = world.worker_config();
    for i in 0..world.worker_nodes {
        let name = format!("worker-{i}");
        let in_progress = Arc::new(AtomicU32::new(0));
        let deps = deps_for(
            &name,
            Arc::new(RecordingDispatcher {
                inner: pseudo.clone(),
                ctx: ctx.on(&name),
                latency_max_ms: world.dispatch_latency_max_ms,
                in_progress: in_progress.clone(),
            }),
        );
        let (ctx2, name2, progress2) = (ctx.clone(), name.clone(), in_progress.clone());
        let stopper = Arc::new(Stopper::default());
        let stopper2 = stopper.clone();
        let handle = handle
            .create_node()
            .name(&name)
            .init(move || {
                let observe = observer(ctx2.clone(), name2.clone(), progress2.clone());
                let (ctx, name, deps) = (ctx2.clone(), name2.clone(), deps.clone());
                let stop = stopper2.arm();
                let stopper = stopper2.clone();
                async move {
                    gift_core::worker::run_worker(deps, worker_config, observe, stop).await;
                    stopper.stopped();
                    ctx.record(Event::Stopped { node: name });
                }
            })
            .build();
        nodes.push(Node { name, kind: NodeKind::Worker, handle, in_progress, stopper: Some(stopper) });
    }
    for i in 0..world.relay_nodes {
        let name = format!("relay-{i}");
        let deps = deps_for(&name, pseudo.clone());
        let ctx2 = ctx.clone();
        let handle = handle
            .create_node()
            .name(&name)
            .init(move || {
                let ctx3 = ctx2.clone();
                let observe = move |pass: Result<&gift_core::relay::RelayPass, &gift_core::AppError>| {
                    if let Ok(pass) = pass {
                        ctx3.history.count_n("relay_published", u64::from(pass.published));
                    }
                };
                gift_core::relay::run_relay(deps.clone(), RELAY, observe, std::future::pending())
            })
            .build();
        nodes.push(Node {
            name,
            kind: NodeKind::Relay,
            handle,
            in_progress: Arc::new(AtomicU32::new(0)),
            stopper: None,
        });
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
        // A restart kills whatever the node was doing, as the nemesis does.
        ctx.record(Event::Killed { node: node.name.clone() });
        handle.restart(node.handle.id());
        ctx.record(Event::Restarted { node: node.name.clone() });
        node.in_progress.store(0, Ordering::SeqCst);
    }
    ctx.record(Event::Phase { phase: Phase::Healed });
    let deadline = rt::now_instant() + LIVENESS_DEADLINE;
    let clients_done = futures::future::join_all(clients);
    let give_up = rt::sleep(LIVENESS_DEADLINE);
    futures::pin_mut!(clients_done, give_up);
    if let futures::future::Either::Right(_) = futures::future::select(clients_done, give_up).await {
        ctx.record(Event::Phase { phase: Phase::ClientsUnfinished });
    }
    while rt::now_instant() < deadline {
        let unfinished = store.gifts().iter().any(|g| g.status == Status::Queued);
        if !unfinished {
            break;
        }
        rt::sleep(Duration::from_secs(1)).await;
    }
    ctx.record(Event::Phase { phase: Phase::End });
    let finals: BTreeMap<GiftId, Status> = store.gifts().into_iter().map(|g| (g.id, g.status)).collect();
    let entries = ctx.history.entries();
    let expect = Expect {
        max_receives: MAX_RECEIVES,
        heal_bound_ms: world.heal_bound_ms(STALE_AFTER, RELAY.interval),
        send_failure_rate: world.send_failure_rate,
        publish_grace_ms: PUBLISH_GRACE.as_millis() as u64,
    };
    let report = checker::check(&entries, &End { finals: Some(&finals), expect });
    let mut counts = ctx.history.counts();
    count_events(&entries, &mut counts);
    counts.insert("extra_pseudo_sends", report.extra_sends);
    counts.insert("failed_after_lost_success", report.failed_after_lost_success);
    counts.insert("failed_beside_duplicate", report.failed_beside_duplicate);
    RunResult { sim_ms: ctx.now_ms(), world, entries, counts, violations: report.violations, heal_ms: report.heal_ms }
}

/// Counts the interesting events of a run for the coverage table.
fn count_events(entries: &[Entry], counts: &mut BTreeMap<&'static str, u64>) {
    for e in entries {
        let what = match &e.event {
            Event::Store { call: StoreCall::MarkSent { gifts }, .. } => {
                *counts.entry("gift_sent").or_default() += gifts.iter().filter(|(_, won)| *won).count() as u64;
                continue;
            }
            Event::Store { call: StoreCall::MarkFailed { applied: true, .. }, .. } => "gift_failed",
            Event::DeadLettered { .. } => "dead_lettered",
            Event::Handled { outcome: Outcome::Duplicate, .. } => "duplicate_after_terminal",
            Event::Handled { outcome: Outcome::LostRace, .. } => "lost_race",
            Event::SendLost { .. } => "send_answer_lost",
            Event::SendAnswered { code: 503, .. } => "send_503",
            Event::SendAnswered { code: 200, .. } => "send_replayed",
            Event::SendAnswered { code: 409, .. } => "send_conflict",
            _ => continue,
        };
        *counts.entry(what).or_default() += 1;
    }
}

/// The worker observer: records each handled delivery and keeps `in_progress` honest.
fn observer(ctx: Ctx, node: String, in_progress: Arc<AtomicU32>) -> impl Fn(WorkerEvent<'_>) + Send + Sync {
    move |event| {
        if let WorkerEvent::Handled(delivery, outcome) = event {
            let _ = in_progress.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            let gift = gift_core::domain::SendMessage::from_body(&delivery.body).ok().map(|m| m.gift_id);
            let msg = MemoryQueue::message_of(&delivery.receipt);
            let (node, receive_count) = (node.clone(), delivery.receive_count);
            ctx.record(Event::Handled { node, msg, receive_count, gift, outcome: outcome.into() });
        }
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

/// One client: creates gifts (amounts and messages of every legal shape), then sends each
/// from several racing senders (keys of every legal shape), retrying unanswered or 503
/// requests with the same key until it hears a final answer, and finally reads it back.
async fn client(id: usize, world: World, ctx: Ctx, apis: Arc<Vec<Api>>) {
    for g in 0..world.gifts_per_client {
        let (amount, message) = (workload::amount(), workload::message());
        let body = serde_json::json!({ "amount": amount, "message": message }).to_string();
        let gift = loop {
            match call(&apis, Method::POST, "/gifts".into(), None, &body).await {
                Some((201, answer)) => {
                    let v: serde_json::Value = serde_json::from_str(&answer).expect("201 body is JSON");
                    let gift = GiftId::parse(v["gift_id"].as_str().expect("gift_id")).expect("gift_id is a UUID");
                    ctx.record(Event::Created { gift, amount, message: message.clone() });
                    break gift;
                }
                Some((code, answer)) if code != 503 => panic!("POST /gifts answered {code}: {answer}"),
                _ => rt::sleep(Duration::from_millis(thread_rng().gen_range(10..=500))).await,
            }
        };
        let shared = thread_rng().gen_bool(world.shared_key_chance).then(|| workload::key(id, g, 0));
        let senders: Vec<_> = (0..world.senders_per_gift)
            .map(|s| {
                let key = shared.clone().unwrap_or_else(|| workload::key(id, g, s));
                rt::spawn(sender(gift, key, world.replay_chance, ctx.clone(), apis.clone()))
            })
            .collect();
        for s in senders {
            let _ = s.await;
        }
        loop {
            match call(&apis, Method::GET, format!("/gifts/{gift}"), None, "").await {
                Some((503, _)) | None => rt::sleep(Duration::from_millis(thread_rng().gen_range(10..=500))).await,
                Some((code, body)) => {
                    ctx.record(Event::Fetched { gift, code, body });
                    break;
                }
            }
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
