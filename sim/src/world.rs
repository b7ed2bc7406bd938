//! The world a seed draws: how many nodes and clients, the pseudo-send failure rate, and
//! each fault's rate. Swarm testing: some seeds have a fault at zero, others very high, so
//! that faults do not mask each other and rare interleavings get their turn.

use std::fmt;
use std::time::Duration;

use gift_core::service::RetryPolicy;
use gift_core::worker::WorkerConfig;
use madsim::rand::{thread_rng, Rng};

use crate::kinds::{FaultKind, RateDraw};

/// The retry budget: SQS `maxReceiveCount`, the same in every world.
pub const MAX_RECEIVES: u32 = gift_core::defaults::MAX_RECEIVES;

/// Messages per receive in half the worlds: SQS's largest.
pub const BATCH_SIZE: u32 = 10;

/// Per-call probabilities of each fault during the safety phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultRates([f64; FaultKind::ALL.len()]);

impl FaultRates {
    pub fn of(&self, kind: FaultKind) -> f64 {
        self.0[kind as usize]
    }

    /// Draws each kind's rate in `FaultKind::ALL` order.
    fn draw(rng: &mut impl Rng) -> Self {
        let mut rates = [0.0; FaultKind::ALL.len()];
        for kind in FaultKind::ALL {
            rates[kind as usize] = match kind.rate_draw() {
                // Zero a third of the time, otherwise anywhere below `max`.
                RateDraw::UpTo(max) => {
                    if rng.gen_bool(1.0 / 3.0) {
                        0.0
                    } else {
                        rng.gen_range(0.0..max)
                    }
                }
                RateDraw::SameAs(other) => rates[other as usize],
            };
        }
        Self(rates)
    }
}

impl fmt::Display for FaultRates {
    /// Six kinds a line, under the world's `faults:` heading.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, kind) in FaultKind::ALL.into_iter().enumerate() {
            let lead = match i {
                0 => "  faults:",
                _ if i % 6 == 0 => "\n         ",
                _ => "",
            };
            write!(f, "{lead} {kind}={:.2}", self.of(kind))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct World {
    pub seed: u64,
    pub api_nodes: usize,
    pub worker_nodes: usize,
    pub relay_nodes: usize,
    pub clients: usize,
    pub gifts_per_client: usize,
    /// Concurrent senders per gift, each with its own key unless `shared_key`.
    pub senders_per_gift: usize,
    pub shared_key_chance: f64,
    pub replay_chance: f64,
    pub send_failure_rate: f64,
    pub visibility_timeout_ms: u64,
    pub retry_backoff_ms: u64,
    pub latency_max_ms: u64,
    pub dispatch_latency_max_ms: u64,
    /// Mean time between node kills; 0 disables the nemesis.
    pub kill_every_ms: u64,
    pub safety_ms: u64,
    pub faults: FaultRates,
    /// Each worker's `WorkerConfig::batches_in_hand`.
    pub batches_in_hand: u32,
    /// Each worker's `WorkerConfig::receives_per_batch`.
    pub receives_per_batch: u32,
    /// Each worker's `WorkerConfig::batch_size`: SQS's largest in half the worlds, fewer in
    /// the others, where receives come back full and batches are gathered far more often.
    pub batch_size: u32,
}

/// Draws kept apart from the simulation's generator, on a stream of their own derived from
/// the seed: a draw added to the world there shifts no random choice of the run, so a
/// pinned seed whose new setting changes nothing keeps its history.
struct Later(u64);

impl Later {
    fn of(seed: u64) -> Self {
        Self(seed ^ 0x6c61_7465_725f_6472) // "later_dr"
    }

    /// One splitmix64 step: a value in `range`, each equally likely to within 2^-60.
    fn pick(&mut self, range: std::ops::RangeInclusive<u32>) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let span = u64::from(range.end() - range.start()) + 1;
        range.start() + (z % span) as u32
    }
}

impl World {
    /// Draws a world from the simulation's seeded generator.
    pub fn draw(seed: u64) -> Self {
        let mut rng = thread_rng();
        let mut later = Later::of(seed);
        let faults = FaultRates::draw(&mut rng);
        let failure_rates = [0.0, 0.2, 0.2, 0.5, 0.9, 1.0];
        Self {
            seed,
            api_nodes: rng.gen_range(1..=3),
            worker_nodes: rng.gen_range(1..=3),
            relay_nodes: rng.gen_range(1..=2),
            clients: rng.gen_range(1..=6),
            gifts_per_client: rng.gen_range(1..=4),
            senders_per_gift: rng.gen_range(1..=3),
            shared_key_chance: rng.gen_range(0.0..0.5),
            replay_chance: rng.gen_range(0.0..0.5),
            send_failure_rate: failure_rates[rng.gen_range(0..failure_rates.len())],
            visibility_timeout_ms: rng.gen_range(1_000..=30_000),
            retry_backoff_ms: rng.gen_range(200..=5_000),
            latency_max_ms: rng.gen_range(1..=2_000),
            dispatch_latency_max_ms: if rng.gen_bool(0.5) { rng.gen_range(1..=5_000) } else { 0 },
            kill_every_ms: if rng.gen_bool(0.25) { 0 } else { rng.gen_range(2_000..=30_000) },
            safety_ms: rng.gen_range(10_000..=60_000),
            faults,
            // Drawn last: it does not shift the world's other draws.
            batches_in_hand: rng.gen_range(1..=4),
            receives_per_batch: later.pick(1..=3),
            batch_size: if later.pick(0..=1) == 0 { BATCH_SIZE } else { later.pick(1..=BATCH_SIZE - 1) },
        }
    }

    /// FNV-1a over every drawn value (`Debug`: all fields, rates at full precision): what
    /// `sim/regressions.txt` pins beside each seed, so that a change to the draws, which
    /// gives the seed another world and another history, fails the pinned run instead of
    /// leaving a seed that no longer replays the case it was pinned for.
    pub fn fingerprint(&self) -> u64 {
        crate::history::fnv1a(&format!("{self:?}"))
    }

    pub fn visibility_timeout(&self) -> Duration {
        Duration::from_millis(self.visibility_timeout_ms)
    }

    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            batch_size: self.batch_size,
            receives_per_batch: self.receives_per_batch,
            batches_in_hand: self.batches_in_hand,
            wait: Duration::from_secs(20),
            error_pause: Duration::from_secs(1),
            retry: RetryPolicy { max_receives: MAX_RECEIVES, backoff: Duration::from_millis(self.retry_backoff_ms) },
            visibility_timeout: self.visibility_timeout(),
        }
    }

    /// The longest this world may take from healing to quiescence: a message lost just
    /// before healing is published again `stale_after` after its last publish, at the next
    /// relay pass; every message then
    /// takes at most its five receives, each a backoff or a visibility timeout apart; plus
    /// one more visibility timeout for a message a killed worker held, and a minute of slack.
    pub fn heal_bound_ms(&self, stale_after: Duration, relay_interval: Duration) -> u64 {
        let per_receive = self.visibility_timeout_ms.max(self.retry_backoff_ms) + 1_000;
        let relay = 2 * relay_interval.as_millis() as u64;
        stale_after.as_millis() as u64 + relay + u64::from(MAX_RECEIVES + 1) * per_receive + 60_000
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "world of seed {}:", self.seed)?;
        writeln!(
            f,
            "  nodes: api={} worker={} relay={}  clients={} gifts/client={} senders/gift={}",
            self.api_nodes,
            self.worker_nodes,
            self.relay_nodes,
            self.clients,
            self.gifts_per_client,
            self.senders_per_gift
        )?;
        writeln!(
            f,
            "  send_failure_rate={} visibility_timeout_ms={} retry_backoff_ms={} safety_ms={} kill_every_ms={}",
            self.send_failure_rate,
            self.visibility_timeout_ms,
            self.retry_backoff_ms,
            self.safety_ms,
            self.kill_every_ms
        )?;
        writeln!(
            f,
            "  latency_max_ms={} dispatch_latency_max_ms={} shared_key_chance={:.2} replay_chance={:.2}",
            self.latency_max_ms, self.dispatch_latency_max_ms, self.shared_key_chance, self.replay_chance,
        )?;
        writeln!(
            f,
            "  batches_in_hand={} receives_per_batch={} batch_size={}",
            self.batches_in_hand, self.receives_per_batch, self.batch_size
        )?;
        write!(f, "{}", self.faults)
    }
}
