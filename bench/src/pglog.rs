//! `gift-bench pgbench-log`: latency percentiles from `pgbench -l` transaction logs.
//!
//! A log line is `client_id transaction_no time script_no time_epoch time_us [schedule_lag]`
//! with `time` the transaction's latency in microseconds and, under `--rate`, `schedule_lag`
//! how late it started. Latency here is `time + schedule_lag`: counted from the scheduled
//! start, as `gift-bench load --rate` counts it. Lines of transactions skipped or failed are
//! counted as errors.

use std::path::PathBuf;

use crate::{quantile, result_line};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only transactions that ended at or after this Unix time (seconds) count: the warm-up is dropped.
    #[arg(long, default_value_t = 0.0)]
    from_epoch: f64,
    files: Vec<PathBuf>,
}

pub fn main(args: Args) -> Result<(), String> {
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 {
                continue;
            }
            let ended = f[4].parse::<f64>().unwrap_or(0.0) + f[5].parse::<f64>().unwrap_or(0.0) / 1e6;
            if ended < args.from_epoch {
                continue;
            }
            match (f[2].parse::<u64>(), f.get(6).map_or(Ok(0), |l| l.parse::<u64>())) {
                (Ok(time), Ok(lag)) => latencies.push(time + lag),
                _ => errors += 1,
            }
        }
    }
    latencies.sort_unstable();
    let ms = |q: f64| format!("{:.3}", quantile(&latencies, q) as f64 / 1000.0);
    result_line(&[
        ("transactions", latencies.len().to_string()),
        ("p50_ms", ms(0.50)),
        ("p90_ms", ms(0.90)),
        ("p99_ms", ms(0.99)),
        ("p999_ms", ms(0.999)),
        ("max_ms", ms(1.0)),
        ("errors", errors.to_string()),
    ]);
    Ok(())
}
