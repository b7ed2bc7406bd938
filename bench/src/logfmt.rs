//! `log-format`: the service's JSON log formatter against tracing-subscriber's own JSON
//! layer, on the lines one create+send request logs, into a writer that only counts bytes.
//! Alternating rounds, because this machine's speed drifts over minutes; under callgrind
//! (`--rounds 1`) the instruction counts of one formatter or the other come out exactly.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gift_core::domain::TraceParent;
use tracing::subscriber::with_default;
use tracing_subscriber::fmt::MakeWriter;

#[derive(clap::Args)]
pub struct Args {
    /// Requests' worth of lines per round and formatter.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Rounds, each running both formatters (ours first in odd rounds).
    #[arg(long, default_value_t = 6)]
    rounds: u32,
    /// Run only one formatter (`ours` or `json`), for a profiler.
    #[arg(long)]
    only: Option<String>,
    /// Print one request's lines from each formatter (stderr) before measuring.
    #[arg(long)]
    show: bool,
    /// Log the request's lines outside any span: what the request span (its request id and
    /// trace ids on every line) costs is the difference.
    #[arg(long)]
    no_span: bool,
}

/// A writer that counts bytes and keeps none (or, to show them, writes them to stderr).
#[derive(Clone, Default)]
struct Counting(Arc<AtomicU64>, bool);

impl io::Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        if self.1 {
            io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Counting {
    type Writer = Counting;
    fn make_writer(&'w self) -> Counting {
        self.clone()
    }
}

/// What one send logs on the API: its request span (request id and trace ids) around the
/// QUEUED and PUBLISHED events and the request line.
fn one_request(n: u64, in_span: bool) {
    if !in_span {
        return request_lines(n);
    }
    // The service's own span macro, as gift-api's request span is made.
    let trace =
        TraceParent::new(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736, 0x00f0_67aa_0ba9_02b7, 0).expect("non-zero ids");
    let span = gift_core::traced_span!(
        "request",
        &trace,
        0x00f0_67aa_0ba9_02b7,
        http.request_id = "0b7a1c94-3f2e-4d51-9a8e-6c2d2e7f1a03"
    );
    let _entered = span.enter();
    request_lines(n);
}

fn request_lines(n: u64) {
    let gift_id = "7d4c1e2a-0f6b-4a8e-9c3d-5b2a1e0f9c87";
    tracing::info!(gift_id, request_id = "order-1", event = "QUEUED", "send accepted");
    tracing::info!(gift_id, request_id = "order-1", message_id = n, event = "PUBLISHED", "send message published");
    tracing::info!(
        event = "HTTP",
        method = "POST",
        route = "/gifts/{gift_id}/send",
        http_status = 202u16,
        latency_ms = 1.25,
        request_id = "order-1",
        "request served"
    );
}

const LINES_PER_REQUEST: u64 = 3;

/// ns per line and bytes per line of `requests` requests under `subscriber`.
fn run(
    subscriber: impl tracing::Subscriber + Send + Sync + 'static,
    bytes: &Counting,
    requests: u64,
    in_span: bool,
) -> (f64, f64) {
    let before = bytes.0.load(Ordering::Relaxed);
    let started = Instant::now();
    with_default(subscriber, || (0..requests).for_each(|n| one_request(n, in_span)));
    let lines = (requests * LINES_PER_REQUEST) as f64;
    let ns = started.elapsed().as_nanos() as f64 / lines;
    (ns, (bytes.0.load(Ordering::Relaxed) - before) as f64 / lines)
}

fn ours(bytes: &Counting) -> impl tracing::Subscriber + Send + Sync + 'static {
    gift_bins::telemetry::subscriber("api", bytes.clone())
}

/// tracing-subscriber's JSON layer as close to ours as it goes: event fields at the top
/// level, the current span's fields under `span` (it cannot put them at the top level).
fn theirs(bytes: &Counting) -> impl tracing::Subscriber + Send + Sync + 'static {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(bytes.clone())
        .finish()
}

pub fn main(args: Args) -> Result<(), String> {
    if args.show {
        let shown = Counting(Arc::default(), true);
        run(ours(&shown), &shown, 1, !args.no_span);
        run(theirs(&shown), &shown, 1, !args.no_span);
    }
    let bytes = Counting::default();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut a_bytes, mut b_bytes) = (0.0, 0.0);
    for round in 0..args.rounds {
        let order: [bool; 2] = if round % 2 == 0 { [true, false] } else { [false, true] };
        for is_ours in order {
            let wanted = args.only.as_deref().is_none_or(|o| (o == "ours") == is_ours);
            if !wanted {
                continue;
            }
            if is_ours {
                let (ns, per) = run(ours(&bytes), &bytes, args.requests, !args.no_span);
                a.push(ns);
                a_bytes = per;
            } else {
                let (ns, per) = run(theirs(&bytes), &bytes, args.requests, !args.no_span);
                b.push(ns);
                b_bytes = per;
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let (ours_ns, json_ns) = (median(&mut a), median(&mut b));
    eprintln!(
        "RESULT log_format ours_ns_per_line={ours_ns:.0} json_ns_per_line={json_ns:.0} json_over_ours={:.2} ours_bytes_per_line={a_bytes:.0} json_bytes_per_line={b_bytes:.0} rounds={} requests={}",
        json_ns / ours_ns,
        args.rounds,
        args.requests
    );
    Ok(())
}
