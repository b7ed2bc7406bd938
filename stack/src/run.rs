//! One run: a scratch database and queue pair, proxies in front of PostgreSQL and SQS,
//! 2 × gift-api and 2 × gift-worker (each with its relay), the clients, the nemesis for
//! the safety phase, heal, quiescence (bounded), a graceful stop of everything, then the
//! history built and judged by `gift_sim::checker::check`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::MessageSystemAttributeName;
use gift_core::domain::{GiftId, SendMessage, Status};
use gift_runtime::conformance::sqs_emulator;
use gift_sim::checker::{check, End, Expect, Report};
use gift_sim::history::{render, Event, Phase};
use gift_sim::world::MAX_RECEIVES;
use rand::SeedableRng;

use crate::client::{now_us, Clients, Heard};
use crate::history::{Builder, EndState};
use crate::nemesis::{Nemesis, Targets};
use crate::procs::{Node, Role};
use crate::proxy::Proxy;

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
        let short = &gift.to_string()[..8];
        self.entries.iter().map(|e| e.to_string()).filter(|l| l.contains(short)).collect()
    }

    pub fn count(&self, status: Status) -> usize {
        self.finals.values().filter(|s| **s == status).count()
    }
}

fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out =
        Command::new("psql").args([url, "-qtAX", "-F", "\t", "-c", sql]).output().map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(format!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `postgres://user@host:port/db` → (`postgres://user@`, `host:port`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest =
        url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")).ok_or("not a postgres URL")?;
    let (auth, after) = rest.rsplit_once('@').map_or(("", rest), |(a, h)| (a, h));
    let host = after.split('/').next().unwrap_or_default();
    Ok((format!("postgres://{auth}{}", if auth.is_empty() { "" } else { "@" }), host.to_owned()))
}

struct Queues {
    client: aws_sdk_sqs::Client,
    rt: tokio::runtime::Runtime,
    main: String,
    dead: String,
}

impl Queues {
    /// A queue and its dead-letter queue, configured as Terraform configures them.
    fn create(endpoint: &str, name: &str) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let client = sqs_emulator::client(endpoint);
        let secs = VISIBILITY_SECONDS as u32;
        let (main, dead) = rt.block_on(sqs_emulator::queue_with_dlq(&client, name, secs, MAX_RECEIVES));
        Ok(Self { client, rt, main, dead })
    }

    /// Every message in the dead-letter queue, by SQS message id.
    fn dead_letters(&self) -> Result<Vec<(String, GiftId)>, String> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            let got = self
                .rt
                .block_on(
                    self.client
                        .receive_message()
                        .queue_url(&self.dead)
                        .max_number_of_messages(10)
                        .visibility_timeout(600)
                        .message_system_attribute_names(MessageSystemAttributeName::All)
                        .send(),
                )
                .map_err(|e| format!("SQS: {e:?}"))?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let id = m.message_id.unwrap_or_default();
                if let Ok(body) = SendMessage::from_body(m.body.as_deref().unwrap_or_default()) {
                    if seen.insert(id.clone()) {
                        out.push((id, body.gift_id));
                    }
                }
            }
        }
        Ok(out)
    }

    fn delete(&self) {
        for url in [&self.main, &self.dead] {
            let _ = self.rt.block_on(self.client.delete_queue().queue_url(url).send());
        }
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

/// From healing to quiescence: a message lost before healing is re-armed after the stale
/// delay and a relay pass, then takes at most its five receives; plus slack for restarts.
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
    let queues = Queues::create(&cfg.sqs_endpoint, &name.replace('_', "-"))?;
    let (db_proxy, sqs_proxy) = (Proxy::start(&pg_host), Proxy::start(&cfg.sqs_endpoint));
    let common = |extra: &[(&str, String)]| {
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", format!("{auth}127.0.0.1:{}/{name}", db_proxy.port)),
            ("DB_SSLMODE", "disable".into()),
            ("DB_POOL_MAX", "4".into()),
            ("DB_ACQUIRE_TIMEOUT_MS", "1000".into()),
            ("SQS_QUEUE_URL", queues.main.clone()),
            ("AWS_ENDPOINT_URL_SQS", sqs_proxy.url()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_MAX_ATTEMPTS", "2".into()),
            ("LOG_LEVEL", "info".into()),
            ("TOKIO_WORKER_THREADS", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env
    };
    let mut nodes = Vec::new();
    let mut apis = Vec::new();
    for i in 1..=2 {
        let port = free_port();
        apis.push(format!("http://127.0.0.1:{port}"));
        let env = common(&[
            ("HOST", "127.0.0.1".into()),
            ("PORT", port.to_string()),
            ("PUBLISH_GRACE_MS", PUBLISH_GRACE_MS.to_string()),
            ("REQUEST_TIMEOUT_MS", "3000".into()),
        ]);
        nodes.push(Node::new(&format!("api-{i}"), Role::Api, &cfg.bins.join("gift-api"), env, &cfg.dir));
    }
    for i in 1..=2 {
        let max_receives = match cfg.broken {
            Some(Broken::WorkerMaxReceives(n)) if i == 1 => n,
            _ => MAX_RECEIVES,
        };
        let env = common(&[
            ("SEND_FAILURE_RATE", cfg.send_failure_rate.to_string()),
            ("WORKER_WAIT_SECONDS", "1".into()),
            ("RETRY_BACKOFF_SECONDS", BACKOFF_SECONDS.to_string()),
            ("VISIBILITY_TIMEOUT_SECONDS", VISIBILITY_SECONDS.to_string()),
            ("STALE_QUEUED_SECONDS", STALE_SECONDS.to_string()),
            ("RELAY_INTERVAL_MS", RELAY_INTERVAL_MS.to_string()),
            ("MAX_RECEIVES", max_receives.to_string()),
            ("HEARTBEAT_FILE", cfg.dir.join(format!("worker-{i}.heartbeat")).display().to_string()),
        ]);
        nodes.push(Node::new(&format!("worker-{i}"), Role::Worker, &cfg.bins.join("gift-worker"), env, &cfg.dir));
    }
    // The first API runs the migrations alone, so the others start on a ready schema.
    nodes[0].start()?;
    wait_healthy(&apis[0], Duration::from_secs(60))?;
    for node in nodes.iter_mut().skip(1) {
        node.start()?;
    }
    wait_healthy(&apis[1], Duration::from_secs(60))?;

    let origin_us = now_us();
    let (heard, log) = (Heard::default(), Heard::default());
    log.record(Event::Phase { phase: Phase::Safety });
    let heal_bound = Duration::from_millis(heal_bound_ms());
    let clients = Arc::new(Clients {
        apis,
        heard: heard.clone(),
        winding_down: Arc::new(AtomicBool::new(false)),
        deadline: Instant::now() + cfg.safety + heal_bound,
        unfinished: Arc::new(AtomicBool::new(false)),
    });
    let threads: Vec<_> = (0..cfg.clients)
        .map(|id| {
            let c = clients.clone();
            std::thread::spawn(move || c.run(id))
        })
        .collect();

    let kill_backends = || {
        let sql = format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        );
        psql(&cfg.database_url, &sql).map(|_| ())
    };
    let restart_db = |cmd: &str| {
        let status = Command::new("sh").arg("-c").arg(cmd).status().map_err(|e| format!("sh: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the PostgreSQL restart failed ({status}): {cmd}"))
        }
    };
    let restart = cfg.db_restart.as_deref().map(|cmd| move || restart_db(cmd));
    let mut nemesis = Nemesis::new(rand::rngs::StdRng::seed_from_u64(cfg.seed), log.clone());
    let mut targets = Targets {
        nodes: &mut nodes,
        db: &db_proxy,
        sqs: &sqs_proxy,
        kill_backends: &kill_backends,
        restart_db: restart.as_ref().map(|r| r as &dyn Fn() -> Result<(), String>),
        visibility: Duration::from_secs(VISIBILITY_SECONDS),
    };
    let struck = nemesis.run(&mut targets, Instant::now() + cfg.safety);
    nemesis.heal(&mut targets)?;
    struck?;
    log.record(Event::Phase { phase: Phase::Healed });
    let healed = Instant::now();
    clients.winding_down.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().map_err(|p| format!("a client failed: {}", panic_text(&p)))?;
    }
    if clients.unfinished.load(Ordering::SeqCst) {
        log.record(Event::Phase { phase: Phase::ClientsUnfinished });
    }
    while healed.elapsed() < heal_bound {
        let queued = psql(&admin_db, "SELECT count(*) FROM gifts WHERE status = 'QUEUED'")?;
        if queued.trim() == "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let end_us = now_us();
    log.record(Event::Phase { phase: Phase::End });
    for node in nodes.iter_mut() {
        if !node.terminate(Duration::from_secs(30)) {
            node.kill9();
        }
    }

    let end = end_state(&admin_db, &queues)?;
    queues.delete();
    let mut builder = Builder::default();
    for node in &nodes {
        for n in 1..=node.incarnations() {
            builder.read_effects(&node.effect_log(n), n, origin_us)?;
        }
    }
    let faults = log.take();
    let fault_count = faults.iter().filter(|(_, e)| !matches!(e, Event::Phase { .. })).count();
    for (at, event) in heard.take().into_iter().chain(faults) {
        builder.add(at, event);
    }
    let entries = builder.finish(&end, origin_us, end_us);
    let expect = Expect {
        max_receives: MAX_RECEIVES,
        heal_bound_ms: heal_bound_ms(),
        send_failure_rate: cfg.send_failure_rate,
        publish_grace_ms: PUBLISH_GRACE_MS,
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

fn end_state(db: &str, queues: &Queues) -> Result<EndState, String> {
    let mut finals = std::collections::BTreeMap::new();
    for line in psql(db, "SELECT id, status FROM gifts")?.lines() {
        let Some((id, status)) = line.split_once('\t') else { continue };
        let (Ok(id), Ok(status)) = (GiftId::parse(id), Status::parse(status)) else {
            return Err(format!("unreadable gifts row {line:?}"));
        };
        finals.insert(id, status);
    }
    let mut send_requests = Vec::new();
    let sql = "SELECT gift_id, (extract(epoch FROM created_at) * 1000000)::bigint, request_id FROM send_requests";
    for line in psql(db, sql)?.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(id), Some(at), Some(key)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let (Ok(id), Ok(at)) = (GiftId::parse(id), at.parse::<i64>()) else {
            return Err(format!("unreadable send_requests row {line:?}"));
        };
        send_requests.push((id, key.to_owned(), at));
    }
    Ok(EndState { send_requests, finals, dead_letters: queues.dead_letters()? })
}
