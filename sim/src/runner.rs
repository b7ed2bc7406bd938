//! Running many seeds: in parallel on all cores, with coverage, determinism checks,
//! failure reports and the command that replays each failure.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::history::{render, trace_hash, History};
use crate::kinds::Counts;
use crate::scenario::{self, RunResult};

/// How one seed ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Safety(String),
    Liveness(String),
    Crash(String),
}

impl Verdict {
    /// Exit codes: 1 safety, 2 liveness, 3 crash.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Safety(_) => 1,
            Verdict::Liveness(_) => 2,
            Verdict::Crash(_) => 3,
        }
    }
}

pub struct SeedReport {
    pub seed: u64,
    pub verdict: Verdict,
    pub hash: u64,
    pub world: String,
    pub trace: String,
    pub counts: Counts,
    pub sim_ms: u64,
    pub heal_ms: Option<u64>,
}

/// Runs one seed, turning a panic into a crash verdict.
pub fn run_seed(seed: u64) -> SeedReport {
    quiet_panics_in_runs();
    let history = History::default();
    let recorded = history.clone();
    IN_RUN.with(|f| f.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(|| scenario::run(seed, recorded)));
    IN_RUN.with(|f| f.set(false));
    match outcome {
        Ok(r) => report(seed, r),
        Err(panic) => {
            let entries = history.entries();
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            SeedReport {
                seed,
                verdict: Verdict::Crash(msg),
                hash: trace_hash(&entries),
                world: history.world(),
                trace: render(&entries),
                counts: history.counts(),
                sim_ms: 0,
                heal_ms: None,
            }
        }
    }
}

thread_local! {
    static IN_RUN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A panic inside a run becomes a verdict that carries its message, so the default hook's
/// output would only be noise; panics elsewhere still print as usual.
fn quiet_panics_in_runs() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_RUN.with(|f| f.get()) {
                default(info);
            }
        }));
    });
}

fn report(seed: u64, r: RunResult) -> SeedReport {
    let verdict = if let Some(v) = r.violations.iter().find(|v| !v.invariant.is_liveness()) {
        Verdict::Safety(v.to_string())
    } else if let Some(v) = r.violations.first() {
        Verdict::Liveness(v.to_string())
    } else {
        Verdict::Pass
    };
    let mut all = String::new();
    for v in &r.violations {
        let _ = writeln!(all, "  violated: {v}");
    }
    SeedReport {
        seed,
        verdict,
        hash: trace_hash(&r.entries),
        world: format!("{}\n{all}", r.world),
        trace: render(&r.entries),
        counts: r.counts,
        sim_ms: r.sim_ms,
        heal_ms: r.heal_ms,
    }
}

/// A seed pinned in a regressions file, with the fingerprint of the world it drew when it
/// was pinned ([`World::fingerprint`](crate::world::World::fingerprint)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinned {
    pub seed: u64,
    pub world: u64,
}

impl Pinned {
    /// The line to pin `seed` with, as it draws its world today.
    pub fn line(seed: u64) -> String {
        format!("{seed} world={:016x}", scenario::world_of(seed).fingerprint())
    }

    /// The world `seed` draws now, when it is not the pinned one.
    pub fn drifted(&self) -> Option<crate::world::World> {
        let now = scenario::world_of(self.seed);
        (now.fingerprint() != self.world).then_some(now)
    }
}

/// The seeds pinned in a regressions file: one per line as `SEED world=FINGERPRINT`, `#`
/// starts a comment. A line without its world is refused: such a pin would go on passing
/// after a change to the draws had taken its case away.
pub fn pinned_seeds(text: &str) -> Result<Vec<Pinned>, String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut words = l.split_whitespace();
            let seed = words.next().and_then(|w| w.parse().ok()).ok_or_else(|| format!("bad seed in {l:?}"))?;
            let world = words
                .next()
                .and_then(|w| w.strip_prefix("world="))
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                .ok_or_else(|| {
                    format!("{l:?}: no world=FINGERPRINT after the seed (`gift-sim pin {seed}` prints it)")
                })?;
            match words.next() {
                None => Ok(Pinned { seed, world }),
                Some(extra) => Err(format!("{l:?}: unexpected {extra:?}")),
            }
        })
        .collect()
}

pub fn replay_command(seed: u64) -> String {
    format!("RUSTFLAGS=\"--cfg madsim\" cargo run --release -p gift-sim --target-dir target/sim -- replay {seed}")
}

/// Totals of a multi-seed run.
pub struct Summary {
    pub seeds: u64,
    pub failures: Vec<SeedReport>,
    pub counts: Counts,
    pub wall_secs: f64,
    pub sim_ms: u64,
    /// Each seed's simulated time from healing to quiescence, sorted.
    pub heal_ms: Vec<u64>,
}

impl Summary {
    pub fn first_failure(&self) -> Option<&SeedReport> {
        self.failures.iter().min_by_key(|r| r.seed)
    }

    /// The healing time at quantile `q` (0.5 for the median), in simulated milliseconds.
    pub fn heal_quantile(&self, q: f64) -> Option<u64> {
        let n = self.heal_ms.len();
        (n > 0).then(|| self.heal_ms[((n as f64 * q).ceil() as usize).clamp(1, n) - 1])
    }
}

/// Runs `seeds` on `jobs` threads; stops handing out seeds after `max_failures` failures.
pub fn run_many(seeds: &[u64], jobs: usize, max_failures: usize) -> Summary {
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let counts = Mutex::new(Counts::new());
    let sim_ms = AtomicU64::new(0);
    let heal_ms = Mutex::new(Vec::new());
    let done = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                if i >= seeds.len() || failures.lock().unwrap().len() >= max_failures {
                    break;
                }
                let r = run_seed(seeds[i]);
                done.fetch_add(1, Ordering::SeqCst);
                sim_ms.fetch_add(r.sim_ms, Ordering::SeqCst);
                heal_ms.lock().unwrap().extend(r.heal_ms);
                {
                    let mut c = counts.lock().unwrap();
                    for (k, v) in &r.counts {
                        *c.entry(*k).or_default() += v;
                    }
                }
                if r.verdict != Verdict::Pass {
                    failures.lock().unwrap().push(r);
                }
            });
        }
    });
    Summary {
        seeds: done.into_inner(),
        failures: failures.into_inner().unwrap(),
        counts: counts.into_inner().unwrap(),
        wall_secs: started.elapsed().as_secs_f64(),
        sim_ms: sim_ms.into_inner(),
        heal_ms: {
            let mut h = heal_ms.into_inner().unwrap();
            h.sort_unstable();
            h
        },
    }
}

/// Writes a failing seed's full report where CI keeps artifacts.
pub fn save_failure(r: &SeedReport) -> std::io::Result<PathBuf> {
    let dir = PathBuf::from("target/sim-failures");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("seed-{}.txt", r.seed));
    let text = format!(
        "seed {}\nverdict {:?}\ntrace hash {:016x}\nreplay: {}\n\n{}\n{}",
        r.seed,
        r.verdict,
        r.hash,
        replay_command(r.seed),
        r.world,
        r.trace
    );
    std::fs::write(&path, text)?;
    Ok(path)
}
