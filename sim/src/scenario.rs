//! One seed's run: start the world's cluster on madsim, drive clients through the real
//! router while faults fire and the nemesis kills and restarts nodes, heal, run to
//! quiescence, check.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gift_core::domain::{GiftId, Status};
use gift_core::http::ApiConfig;
use gift_core::relay::RelayConfig;
use gift_core::service::OutboxTiming;
use gift_runtime::rt::{self, JoinHandle};

use crate::checker::{self, End, Expect, Report, Violation};
use crate::clients::spawn_clients;
use crate::cluster::{Cluster, Settings};
use crate::faults::Ctx;
use crate::history::{Entry, Event, History, Outcome, Phase, StoreCall};
use crate::kinds::{Counter, Counts};
use crate::nemesis::Nemesis;
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
    pub counts: Counts,
    pub violations: Vec<Violation>,
    pub sim_ms: u64,
    /// Simulated time from healing to quiescence.
    pub heal_ms: Option<u64>,
}

/// Runs the scenario of `seed` on a fresh madsim runtime.
///
/// `history` is filled as the run goes, so a run that panics still leaves its trace.
pub fn run(seed: u64, history: History) -> RunResult {
    let mut runtime = seeded(seed);
    runtime.set_time_limit(LIVENESS_DEADLINE * 4);
    runtime.block_on(scenario(seed, history))
}

/// The world `run(seed, …)` draws, without running it: the runtime is seeded the same way
/// and the world is its first draw.
pub fn world_of(seed: u64) -> World {
    seeded(seed).block_on(async { World::draw(seed) })
}

/// The runtime of `seed`, for the run and for its world alike.
fn seeded(seed: u64) -> madsim::runtime::Runtime {
    madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default())
}

async fn scenario(seed: u64, history: History) -> RunResult {
    let world = World::draw(seed);
    history.set_world(world.to_string());
    let ctx = Ctx::new(&world, history);
    ctx.record(Event::Phase { phase: Phase::Safety });
    let settings = Settings {
        api: ApiConfig {
            outbox: OutboxTiming { publish_grace: PUBLISH_GRACE, stale_after: STALE_AFTER },
            ..ApiConfig::default()
        },
        relay: RELAY,
    };
    let cluster = Arc::new(Cluster::start(&world, &ctx, settings));
    let clients = spawn_clients(&world, &ctx, cluster.apis());
    let nemesis = Nemesis::start(world.kill_every_ms, &ctx, cluster.clone());
    rt::sleep(Duration::from_millis(world.safety_ms)).await;

    // Liveness: heal every fault, bring every node back, and wait for quiescence.
    ctx.heal();
    nemesis.stop().await;
    cluster.restart_all();
    ctx.record(Event::Phase { phase: Phase::Healed });
    let deadline = rt::now_instant() + LIVENESS_DEADLINE;
    if !all_finish_within(clients, LIVENESS_DEADLINE).await {
        ctx.record(Event::Phase { phase: Phase::ClientsUnfinished });
    }
    while rt::now_instant() < deadline && cluster.has_queued_gifts() {
        rt::sleep(Duration::from_secs(1)).await;
    }
    ctx.record(Event::Phase { phase: Phase::End });
    judge(world, &ctx, &cluster.final_statuses())
}

/// Whether every task finished within `bound`.
async fn all_finish_within(tasks: Vec<JoinHandle<()>>, bound: Duration) -> bool {
    let all_done = futures::future::join_all(tasks);
    let give_up = rt::sleep(bound);
    futures::pin_mut!(all_done, give_up);
    matches!(futures::future::select(all_done, give_up).await, futures::future::Either::Left(_))
}

/// Checks the history against the final statuses, and counts the run for coverage.
fn judge(world: World, ctx: &Ctx, finals: &BTreeMap<GiftId, Status>) -> RunResult {
    let entries = ctx.history.entries();
    let expect = Expect {
        max_receives: MAX_RECEIVES,
        heal_bound_ms: world.heal_bound_ms(STALE_AFTER, RELAY.interval),
        send_failure_rate: world.send_failure_rate,
        publish_grace_ms: PUBLISH_GRACE.as_millis() as u64,
        visibility_timeout_ms: world.visibility_timeout_ms,
    };
    let report = checker::check(&entries, &End { finals: Some(finals), expect });
    let mut counts = ctx.history.counts();
    count_events(&entries, world.batch_size, &mut counts);
    count_figures(&report, &mut counts);
    RunResult { sim_ms: ctx.now_ms(), world, entries, counts, violations: report.violations, heal_ms: report.heal_ms }
}

/// The checker's figures that are not violations.
fn count_figures(report: &Report, counts: &mut Counts) {
    counts.insert(Counter::ExtraPseudoSends.into(), report.extra_sends);
    counts.insert(Counter::FailedAfterLostSuccess.into(), report.failed_after_lost_success);
    counts.insert(Counter::FailedBesideDuplicate.into(), report.failed_beside_duplicate);
    counts.insert(Counter::FailedAfterLateRenewal.into(), report.failed_after_late_renewal);
}

/// Counts the interesting events of a run for the coverage table; `batch_size` is the
/// world's messages per receive.
fn count_events(entries: &[Entry], batch_size: u32, counts: &mut Counts) {
    for e in entries {
        let what = match &e.event {
            Event::Store { call: StoreCall::MarkSent { gifts }, .. } => {
                *counts.entry(Counter::GiftSent.into()).or_default() +=
                    gifts.iter().filter(|(_, won)| *won).count() as u64;
                continue;
            }
            Event::Store { call: StoreCall::Read { gifts, .. }, .. } if gifts.len() > batch_size as usize => {
                Counter::GatheredBatch
            }
            Event::Store { call: StoreCall::MarkFailed { applied: true, .. }, .. } => Counter::GiftFailed,
            Event::DeadLettered { .. } => Counter::DeadLettered,
            Event::Handled { outcome: Outcome::Duplicate, .. } => Counter::DuplicateAfterTerminal,
            Event::Handled { outcome: Outcome::LostRace, .. } => Counter::LostRace,
            Event::SendLost { .. } => Counter::SendAnswerLost,
            Event::SendAnswered { code: 503, .. } => Counter::Send503,
            Event::SendAnswered { code: 200, .. } => Counter::SendReplayed,
            Event::SendAnswered { code: 409, .. } => Counter::SendConflict,
            _ => continue,
        };
        *counts.entry(what.into()).or_default() += 1;
    }
}
