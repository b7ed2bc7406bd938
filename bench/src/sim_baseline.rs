//! `gift-bench sim-baseline` (madsim build): the ceiling of the simulation's speed — seeds per
//! second when each seed builds the same madsim runtime as `gift-sim` and runs nothing, on the
//! same number of threads as `gift-sim run` (all cores by default).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::result_line;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 10_000)]
    seeds: u64,
    #[arg(long, default_value_t = 1)]
    start: u64,
    /// Threads (default: all cores, as gift-sim).
    #[arg(long)]
    jobs: Option<usize>,
}

pub fn main(args: Args) -> Result<(), String> {
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let next = AtomicU64::new(args.start);
    let end = args.start + args.seeds;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
                runtime.block_on(async {});
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    result_line(&[
        ("seeds", args.seeds.to_string()),
        ("jobs", jobs.to_string()),
        ("secs", format!("{secs:.3}")),
        ("seeds_per_s", format!("{:.0}", args.seeds as f64 / secs)),
    ]);
    Ok(())
}
