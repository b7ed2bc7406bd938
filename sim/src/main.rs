//! `gift-sim`: run many seeds, or replay one. Build with `RUSTFLAGS="--cfg madsim"`.

#[cfg(not(madsim))]
fn main() {
    eprintln!("gift-sim must be built with RUSTFLAGS=\"--cfg madsim\" (see docs/simulation.md)");
    std::process::exit(64);
}

#[cfg(madsim)]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(madsim)]
mod cli {
    use clap::{Parser, Subcommand};
    use gift_sim::kinds::{coverage_table, unexercised, Covered};
    use gift_sim::runner::{self, Pinned, Verdict};

    #[derive(Parser)]
    #[command(name = "gift-sim", about = "Deterministic simulation of the gift service")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Run many seeds in parallel and print seeds/s, coverage and failures.
        Run {
            #[arg(long, default_value_t = 10_000)]
            seeds: u64,
            #[arg(long, default_value_t = 1)]
            start: u64,
            /// Worker threads (default: all cores).
            #[arg(long)]
            jobs: Option<usize>,
            /// Re-run this many seeds and compare trace hashes.
            #[arg(long, default_value_t = 20)]
            determinism_sample: u64,
            /// Fail when a fault kind was never exercised.
            #[arg(long)]
            require_coverage: bool,
            /// Also run the pinned regression seeds in this file (one per line, `#` comments).
            #[arg(long)]
            regressions: Option<std::path::PathBuf>,
        },
        /// Print the `sim/regressions.txt` line that pins each seed with the world it draws.
        Pin {
            #[arg(required = true)]
            seeds: Vec<u64>,
        },
        /// Run one seed, print its world, trace and hash.
        Replay {
            seed: u64,
            /// Print only the world, verdict and hash.
            #[arg(long)]
            quiet: bool,
        },
    }

    pub fn main() -> i32 {
        match Cli::parse().command {
            Command::Replay { seed, quiet } => replay(seed, quiet),
            Command::Pin { seeds } => {
                seeds.into_iter().for_each(|seed| println!("{}", Pinned::line(seed)));
                0
            }
            Command::Run { seeds, start, jobs, determinism_sample, require_coverage, regressions } => {
                let mut list: Vec<u64> = (start..start + seeds).collect();
                let mut drifted = Vec::new();
                if let Some(path) = regressions {
                    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    let pinned = runner::pinned_seeds(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    println!("pinned regression seeds: {}", pinned.len());
                    for p in &pinned {
                        if let Some(now) = p.drifted() {
                            drifted.push(p.seed);
                            println!(
                                "DRIFTED pinned seed {}: it draws another world than the one pinned ({:016x}), so it \
                                 no longer replays the case it was pinned for; find a seed that fails without \
                                 the fix it proves and pin it with `gift-sim pin SEED`. It draws now:\n{now}",
                                p.seed, p.world
                            );
                        }
                    }
                    list.extend(pinned.iter().map(|p| p.seed));
                }
                run(&list, jobs, determinism_sample, require_coverage, &drifted)
            }
        }
    }

    fn replay(seed: u64, quiet: bool) -> i32 {
        let r = runner::run_seed(seed);
        println!("{}", r.world);
        println!("pin: {}", Pinned::line(seed));
        if !quiet {
            print!("{}", r.trace);
        }
        println!("verdict: {:?}", r.verdict);
        if let Some(ms) = r.heal_ms {
            println!("healed to quiescence in {ms} simulated ms");
        }
        println!("trace hash: {:016x}", r.hash);
        r.verdict.exit_code()
    }

    fn run(seeds: &[u64], jobs: Option<usize>, sample: u64, require_coverage: bool, drifted: &[u64]) -> i32 {
        let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        println!("running {} seeds on {jobs} threads", seeds.len());
        let summary = runner::run_many(seeds, jobs, 10);
        let rate = summary.seeds as f64 / summary.wall_secs.max(1e-9);
        let sim_secs = summary.sim_ms as f64 / 1000.0;
        print!("{}", coverage_table(&summary.counts));
        println!(
            "{} seeds in {:.1} s: {:.0} seeds/s, {:.0} simulated s per wall s",
            summary.seeds,
            summary.wall_secs,
            rate,
            sim_secs / summary.wall_secs.max(1e-9)
        );
        let q = |q: f64| summary.heal_quantile(q).map_or("-".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
        println!("healing to quiescence (simulated): p50 {} p99 {} max {}", q(0.5), q(0.99), q(1.0));
        let mut code = 0;
        if let Some(first) = summary.first_failure() {
            for f in &summary.failures {
                let path = runner::save_failure(f).map(|p| p.display().to_string()).unwrap_or_default();
                println!("FAILED seed {}: {:?} (report: {path})", f.seed, f.verdict);
                println!("  replay: {}", runner::replay_command(f.seed));
            }
            println!("\n{}", first.world);
            let tail: Vec<&str> = first.trace.lines().collect();
            println!("last trace lines of seed {}:", first.seed);
            for l in &tail[tail.len().saturating_sub(40)..] {
                println!("{l}");
            }
            code = first.verdict.exit_code();
        }
        // Determinism: the same seed must give the same trace, bit for bit.
        let check: Vec<u64> = seeds.iter().copied().take(sample as usize).collect();
        for seed in &check {
            let a = runner::run_seed(*seed);
            let b = runner::run_seed(*seed);
            if a.hash != b.hash || a.verdict != b.verdict {
                println!("NONDETERMINISTIC seed {seed}: {:016x} vs {:016x}", a.hash, b.hash);
                code = 4;
            }
        }
        println!(
            "determinism: {} seeds replayed twice, {}",
            check.len(),
            if code == 4 { "MISMATCH" } else { "identical" }
        );
        let missing: Vec<&str> = unexercised(&summary.counts).into_iter().map(Covered::name).collect();
        if require_coverage && !missing.is_empty() && code == 0 {
            println!("coverage: never exercised: {}", missing.join(", "));
            code = 5;
        }
        if code == 0 && !drifted.is_empty() {
            println!("result: pinned seeds {drifted:?} draw other worlds than pinned (DRIFTED above)");
            code = 6;
        }
        if code == 0 {
            println!("result: all {} seeds passed", summary.seeds);
        }
        if matches!(summary.first_failure().map(|f| &f.verdict), Some(Verdict::Crash(_))) {
            code = 3;
        }
        code
    }
}
