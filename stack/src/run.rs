//! One run, stage by stage, each stage a function of [`run_in`]: proxies in front of
//! PostgreSQL and SQS, 2 × gift-api and 2 × gift-worker (each with its relay), the clients,
//! the nemesis for the safety phase and its healing, quiescence (bounded), a graceful stop
//! of everything, then the history built and judged by `gift_sim::checker::check`. The
//! scratch database and queues are [`crate::scratch`]'s.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gift_core::domain::{GiftId, Status};
use gift_sim::checker::{check, End, Expect, Report};
use gift_sim::history::{render, Event, Phase};
use gift_sim::world::MAX_RECEIVES;
use rand::SeedableRng;

use crate::client::{now_us, Clients, Heard};
use crate::history::{Builder, EndState};
use crate::nemesis::{Nemesis, Targets};
use crate::procs::{Node, Role};
use crate::proxy::Proxy;
use crate::scratch::{end_state, psql, split_url, Queues};

/// The service settings of a run: short timeouts, so five receives fit in seconds.
const VISIBILITY_SECONDS: u64 = 2;
const BACKOFF_SECONDS: u64 = 1;
const STALE_SECONDS: u64 = 20;
const RELAY_INTERVAL_MS: u64 = 200;
const PUBLISH_GRACE_MS: u64 = 1_000;

/// A deliberate bug, to show the run catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// One worker gives up after this many receives instead of five.
    WorkerMaxReceives(u32),
}

pub struct Config {
    pub seed: u64,
    /// Where gift-api and gift-worker are.
    pub bins: PathBuf,
    /// A PostgreSQL URL that may create databases.
    pub database_url: String,
    pub sqs_endpoint: String,
    pub safety: Duration,
    pub clients: usize,
    pub send_failure_rate: f64,
    pub broken: Option<Broken>,
    /// A shell command that restarts the PostgreSQL server (only for a server of the run's
    /// own: the restart cuts every client of it).
    pub db_restart: Option<String>,
    /// Logs, effect logs and the trace go here.
    pub dir: PathBuf,
}

pub struct Outcome {
    pub report: Report,
    pub entries: Vec<gift_sim::history::Entry>,
    pub finals: std::collections::BTreeMap<GiftId, Status>,
    /// Gifts some client heard a 2xx send answer for.
    pub accepted: usize,
    pub faults: usize,
}

impl Outcome {
    /// The nemesis' part of the history, one `time what` per line.
    pub fn timeline(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| {
                matches!(
                    e.event,
                    Event::Fault { .. }
                        | Event::StackFault { .. }
                        | Event::Killed { .. }
                        | Event::Restarted { .. }
                        | Event::Stopping { .. }
                        | Event::Phase { .. }
                )
            })
            .map(|e| e.to_string().trim().to_owned())
            .collect()
    }

    /// The trace lines about `gift`, for a violation's context.
    pub fn lines_about(&self, gift: &GiftId) -> Vec<String> {
        let short = gift.short();
        self.entries.iter().map(|e| e.to_string()).filter(|l| l.contains(&short)).collect()
    }

    pub fn count(&self, status: Status) -> usize {
        self.finals.values().filter(|s| **s == status).count()
    }
}

fn wait_healthy(base: &str, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ureq::get(&format!("{base}/healthz")).timeout(Duration::from_secs(1)).call().is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{base}/healthz did not answer within {within:?}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(0, |a| a.port())
}

/// From healing to quiescence: a message lost before healing is published again at its
/// stale deadline (`STALE_SECONDS` after its last publish) by a relay pass, then takes at most its five receives; plus slack for restarts.
pub fn heal_bound_ms() -> u64 {
    let per_receive = (VISIBILITY_SECONDS.max(BACKOFF_SECONDS) + 1) * 1_000;
    STALE_SECONDS * 1_000 + 2 * RELAY_INTERVAL_MS + u64::from(MAX_RECEIVES + 1) * per_receive + 30_000
}

pub fn run(cfg: &Config) -> Result<Outcome, String> {
    // Effect logs are appended to: a previous run's must not join this one's.
    let _ = std::fs::remove_dir_all(&cfg.dir);
    std::fs::create_dir_all(&cfg.dir).map_err(|e| e.to_string())?;
    let name = format!("gift_stack_{}_{}", cfg.seed, std::process::id());
    psql(&cfg.database_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    psql(&cfg.database_url, &format!("CREATE DATABASE {name}"))?;
    let result = run_in(cfg, &name);
    let _ = psql(&cfg.database_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    result
}

fn run_in(cfg: &Config, name: &str) -> Result<Outcome, String> {
    let (auth, pg_host) = split_url(&cfg.database_url)?;
    let admin_db = format!("{auth}{pg_host}/{name}");
    let queues = Queues::create(&cfg.sqs_endpoint, &name.replace('_', "-"), VISIBILITY_SECONDS as u32)?;
    let (db_proxy, sqs_proxy) = (Proxy::start(&pg_host), Proxy::start(&cfg.sqs_endpoint));
    let wiring = Wiring {
        database_url: format!("{auth}127.0.0.1:{}/{name}", db_proxy.port),
        queue_url: queues.main.clone(),
        sqs_url: sqs_proxy.url(),
    };
    let (mut nodes, apis) = api_nodes(cfg, &wiring);
    nodes.extend(worker_nodes(cfg, &wiring));
    start_nodes(&mut nodes, &apis)?;

    let history = History { origin_us: now_us(), heard: Heard::default(), log: Heard::default() };
    history.log.record(Event::Phase { phase: Phase::Safety });
    let (clients, threads) = start_clients(cfg, apis, &history.heard);
    strike_and_heal(cfg, name, &mut nodes, (&db_proxy, &sqs_proxy), &history.log)?;
    history.log.record(Event::Phase { phase: Phase::Healed });
    let healed = Instant::now();
    stop_clients(&clients, threads, &history.log)?;
    await_quiescence(&admin_db, healed)?;
    let end_us = now_us();
    history.log.record(Event::Phase { phase: Phase::End });
    stop_nodes(&mut nodes);

    let end = end_state(&admin_db, &queues)?;
    queues.delete();
    judge(cfg, &nodes, history, end, end_us)
}

/// What every service process is wired to: the database and SQS behind the proxies.
struct Wiring {
    database_url: String,
    queue_url: String,
    sqs_url: String,
}

impl Wiring {
    /// The environment of a service process: the wiring, the settings every service
    /// shares, and the role's own `extra`.
    fn env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let common = [
            ("DATABASE_URL", self.database_url.clone()),
            ("DB_SSLMODE", "disable".into()),
            ("DB_POOL_MAX", "4".into()),
            ("DB_ACQUIRE_TIMEOUT_MS", "1000".into()),
            ("SQS_QUEUE_URL", self.queue_url.clone()),
            ("AWS_ENDPOINT_URL_SQS", self.sqs_url.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_MAX_ATTEMPTS", "2".into()),
            ("LOG_LEVEL", "info".into()),
            // The API sets the stale deadline after its publishes, the relays after theirs.
            ("STALE_QUEUED_SECONDS", STALE_SECONDS.to_string()),
            ("TOKIO_WORKER_THREADS", "1".into()),
        ];
        common.iter().chain(extra).map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }
}

/// The two gift-api nodes, not started yet, and their base URLs.
fn api_nodes(cfg: &Config, wiring: &Wiring) -> (Vec<Node>, Vec<String>) {
    let mut nodes = Vec::new();
    let mut apis = Vec::new();
    for i in 1..=2 {
        let port = free_port();
        apis.push(format!("http://127.0.0.1:{port}"));
        let env = wiring.env(&[
            ("HOST", "127.0.0.1".into()),
            ("PORT", port.to_string()),
            ("PUBLISH_GRACE_MS", PUBLISH_GRACE_MS.to_string()),
            ("REQUEST_TIMEOUT_MS", "3000".into()),
        ]);
        nodes.push(Node::new(&format!("api-{i}"), Role::Api, &cfg.bins.join("gift-api"), env, &cfg.dir));
    }
    (nodes, apis)
}

/// The two gift-worker nodes, not started yet; with [`Broken`], the first is the broken one.
fn worker_nodes(cfg: &Config, wiring: &Wiring) -> Vec<Node> {
    (1..=2)
        .map(|i| {
            let max_receives = match cfg.broken {
                Some(Broken::WorkerMaxReceives(n)) if i == 1 => n,
                _ => MAX_RECEIVES,
            };
            let env = wiring.env(&[
                ("SEND_FAILURE_RATE", cfg.send_failure_rate.to_string()),
                ("WORKER_WAIT_SECONDS", "1".into()),
                ("RETRY_BACKOFF_SECONDS", BACKOFF_SECONDS.to_string()),
                ("VISIBILITY_TIMEOUT_SECONDS", VISIBILITY_SECONDS.to_string()),
                ("RELAY_INTERVAL_MS", RELAY_INTERVAL_MS.to_string()),
                ("MAX_RECEIVES", max_receives.to_string()),
                ("HEARTBEAT_FILE", cfg.dir.join(format!("worker-{i}.heartbeat")).display().to_string()),
            ]);
            Node::new(&format!("worker-{i}"), Role::Worker, &cfg.bins.join("gift-worker"), env, &cfg.dir)
        })
        .collect()
}

/// Starts every node. The first API runs the migrations alone, so the others start on a
/// ready schema.
fn start_nodes(nodes: &mut [Node], apis: &[String]) -> Result<(), String> {
    nodes[0].start()?;
    wait_healthy(&apis[0], Duration::from_secs(60))?;
    for node in nodes.iter_mut().skip(1) {
        node.start()?;
    }
    wait_healthy(&apis[1], Duration::from_secs(60))
}

/// What the run hears besides the effect logs: the clients' answers and the nemesis' log,
/// both timed from `origin_us`.
struct History {
    origin_us: i64,
    heard: Heard,
    log: Heard,
}

/// The client threads, each sending until wound down or past the safety phase and the
/// heal bound.
fn start_clients(cfg: &Config, apis: Vec<String>, heard: &Heard) -> (Arc<Clients>, Vec<JoinHandle<()>>) {
    let clients = Arc::new(Clients {
        apis,
        heard: heard.clone(),
        winding_down: Arc::new(AtomicBool::new(false)),
        deadline: Instant::now() + cfg.safety + Duration::from_millis(heal_bound_ms()),
        unfinished: Arc::new(AtomicBool::new(false)),
    });
    let threads = (0..cfg.clients)
        .map(|id| {
            let c = clients.clone();
            std::thread::spawn(move || c.run(id))
        })
        .collect();
    (clients, threads)
}

/// The safety phase: the seeded nemesis strikes the nodes, the proxies and the database
/// until `cfg.safety` has passed, then everything it did is undone.
fn strike_and_heal(
    cfg: &Config,
    name: &str,
    nodes: &mut [Node],
    (db, sqs): (&Proxy, &Proxy),
    log: &Heard,
) -> Result<(), String> {
    let kill_backends = || {
        let sql = format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        );
        psql(&cfg.database_url, &sql).map(|_| ())
    };
    let restart = cfg.db_restart.as_deref().map(|cmd| move || restart_db(cmd));
    let mut nemesis = Nemesis::new(rand::rngs::StdRng::seed_from_u64(cfg.seed), log.clone());
    let mut targets = Targets {
        nodes,
        db,
        sqs,
        kill_backends: &kill_backends,
        restart_db: restart.as_ref().map(|r| r as &dyn Fn() -> Result<(), String>),
        visibility: Duration::from_secs(VISIBILITY_SECONDS),
    };
    let struck = nemesis.run(&mut targets, Instant::now() + cfg.safety);
    nemesis.heal(&mut targets)?;
    struck
}

fn restart_db(cmd: &str) -> Result<(), String> {
    let status = Command::new("sh").arg("-c").arg(cmd).status().map_err(|e| format!("sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the PostgreSQL restart failed ({status}): {cmd}"))
    }
}

/// Lets the clients finish the gifts they started; notes whether any gave up.
fn stop_clients(clients: &Clients, threads: Vec<JoinHandle<()>>, log: &Heard) -> Result<(), String> {
    clients.winding_down.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().map_err(|p| format!("a client failed: {}", panic_text(&p)))?;
    }
    if clients.unfinished.load(Ordering::SeqCst) {
        log.record(Event::Phase { phase: Phase::ClientsUnfinished });
    }
    Ok(())
}

/// Waits until no gift is QUEUED, or the heal bound has passed since `healed` (the
/// checker then finds the gifts left).
fn await_quiescence(admin_db: &str, healed: Instant) -> Result<(), String> {
    while healed.elapsed() < Duration::from_millis(heal_bound_ms()) {
        let queued = psql(admin_db, "SELECT count(*) FROM gifts WHERE status = 'QUEUED'")?;
        if queued.trim() == "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// A graceful stop of every node, kill -9 for one that does not stop within 30 s.
fn stop_nodes(nodes: &mut [Node]) {
    for node in nodes.iter_mut() {
        if !node.terminate(Duration::from_secs(30)) {
            node.kill9();
        }
    }
}

/// The history from the effect logs, the clients and the nemesis, judged by the checker;
/// the trace written to `trace.txt`.
fn judge(cfg: &Config, nodes: &[Node], history: History, end: EndState, end_us: i64) -> Result<Outcome, String> {
    let History { origin_us, heard, log } = history;
    let mut builder = Builder::default();
    for node in nodes {
        for n in 1..=node.incarnations() {
            builder.read_effects(&node.effect_log(n), n, origin_us)?;
        }
    }
    let faults = log.take();
    let fault_count = faults.iter().filter(|(_, e)| !matches!(e, Event::Phase { .. })).count();
    for (at, event) in heard.take().into_iter().chain(faults) {
        builder.add(at, event);
    }
    let entries = builder.into_entries(&end, origin_us, end_us);
    let expect = Expect {
        max_receives: MAX_RECEIVES,
        heal_bound_ms: heal_bound_ms(),
        send_failure_rate: cfg.send_failure_rate,
        publish_grace_ms: PUBLISH_GRACE_MS,
        visibility_timeout_ms: VISIBILITY_SECONDS * 1_000,
    };
    let report = check(&entries, &End { finals: Some(&end.finals), expect });
    std::fs::write(cfg.dir.join("trace.txt"), render(&entries)).map_err(|e| e.to_string())?;
    let accepted: std::collections::BTreeSet<GiftId> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::SendAnswered { gift, code, .. } if (200..300).contains(code) => Some(*gift),
            _ => None,
        })
        .collect();
    Ok(Outcome { report, entries, finals: end.finals, accepted: accepted.len(), faults: fault_count })
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}
