//! `gift-stack`: one seeded run of the real binaries under the nemesis; exit 0 when the
//! checker finds nothing, 1 with the violations and the trace's path otherwise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gift_core::domain::Status;
use gift_stack::run::{run, Broken, Config, Outcome};

#[derive(Parser)]
#[command(name = "gift-stack", about = "The real binaries on PostgreSQL and SQS under a seeded nemesis, checked.")]
struct Args {
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where gift-api and gift-worker are (a cargo target dir's profile directory).
    #[arg(long, default_value = "target/debug")]
    bins: PathBuf,
    #[arg(long, env = "TEST_DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "TEST_SQS_ENDPOINT")]
    sqs_endpoint: String,
    /// Seconds of faults before healing.
    #[arg(long, default_value_t = 30)]
    safety_seconds: u64,
    #[arg(long, default_value_t = 4)]
    clients: usize,
    #[arg(long, default_value_t = 0.3)]
    send_failure_rate: f64,
    /// Run one worker with this MAX_RECEIVES (a deliberate bug the checker must catch).
    #[arg(long)]
    broken_max_receives: Option<u32>,
    /// Shell command that restarts PostgreSQL; enables the restart fault (scripts/stack
    /// passes one for the throwaway server it starts).
    #[arg(long)]
    db_restart: Option<String>,
    /// Logs, effect logs and trace.txt.
    #[arg(long, default_value = "target/stack")]
    dir: PathBuf,
}

/// The lines of every process's stdout in `dir` that mention `needle`, file by file.
fn log_lines_about(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "log")).collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        out.extend(text.lines().filter(|l| l.contains(needle)).map(|l| format!("{name}: {l}")));
    }
    out
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (seed, dir) = (args.seed, args.dir.join(format!("seed-{}", args.seed)));
    match run(&config(args, dir.clone())) {
        Ok(outcome) => {
            print_summary(seed, &outcome);
            if outcome.report.violations.is_empty() {
                println!("seed {seed}: no violation");
                return ExitCode::SUCCESS;
            }
            print_violations(&outcome, &dir);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("gift-stack: the run could not complete: {e}");
            ExitCode::from(2)
        }
    }
}

/// The run the arguments ask for, its files under `dir`.
fn config(a: Args, dir: PathBuf) -> Config {
    Config {
        seed: a.seed,
        bins: a.bins,
        database_url: a.database_url,
        sqs_endpoint: a.sqs_endpoint,
        safety: Duration::from_secs(a.safety_seconds),
        clients: a.clients,
        send_failure_rate: a.send_failure_rate,
        broken: a.broken_max_receives.map(Broken::WorkerMaxReceives),
        db_restart: a.db_restart,
        dir,
    }
}

/// The nemesis timeline, the end state's counts and the checker's figures.
fn print_summary(seed: u64, outcome: &Outcome) {
    let r = &outcome.report;
    println!("seed {seed}: nemesis timeline");
    for line in outcome.timeline() {
        println!("  {line}");
    }
    println!(
        "seed {seed}: {} gifts, {} accepted, {} SENT, {} FAILED, {} QUEUED; {} faults; {} history entries",
        outcome.finals.len(),
        outcome.accepted,
        outcome.count(Status::Sent),
        outcome.count(Status::Failed),
        outcome.count(Status::Queued),
        outcome.faults,
        outcome.entries.len(),
    );
    println!(
        "seed {seed}: extra pseudo-sends {}, failed after lost success {}, failed beside duplicate {}, failed after late renewal {}, quiescent {} ms after healing",
        r.extra_sends,
        r.failed_after_lost_success,
        r.failed_beside_duplicate,
        r.failed_after_late_renewal,
        r.heal_ms.unwrap_or(0)
    );
}

/// Each violation with the history and the services' log lines about its gift, then where
/// the whole trace is.
fn print_violations(outcome: &Outcome, dir: &std::path::Path) {
    for v in &outcome.report.violations {
        println!("VIOLATION {v}");
        let Some(gift) = v.gift else { continue };
        println!("  the history about it:");
        for line in outcome.lines_about(&gift).iter().take(30) {
            println!("    {line}");
        }
        println!("  the services' log lines about it:");
        for line in log_lines_about(dir, &gift.to_string()).iter().take(20) {
            println!("    {line}");
        }
    }
    println!("trace: {}", dir.join("trace.txt").display());
}
