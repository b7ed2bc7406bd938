//! `gift-bench load`: HTTP/1.1 keep-alive load on the gift API.
//!
//! Closed loop (no `--rate`): each connection sends its next operation as soon as the last
//! one answered, like wrk. Open loop (`--rate R`): operation `k` is scheduled at
//! `start + k / R` whatever happened before, and its latency counts from that schedule when
//! every connection was busy at that moment (so a stall is charged to every operation it
//! delayed, as wrk2 does — no coordinated omission). A connection that was idle starts the
//! operation when its timer fires; the timer's granularity (about 1 ms in tokio) is the
//! generator's, not the server's, so it is not counted. A server that cannot keep up is not
//! waited for beyond two seconds past the end: the operations never sent are reported as
//! `unsent`, and the rate is then not sustained.
//!
//! Operations: `create` (POST /gifts → 201), `read` (GET /gifts/{id} of a pre-filled gift →
//! 200), `pair` (create, then POST /gifts/{id}/send with an Idempotency-Key → 202; the latency
//! is the pair's).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::worker::bench_id;
use crate::{quantile, result_line};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Create,
    Read,
    Pair,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of the same load before the measurement starts, not counted.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Operations per second, open loop; closed loop when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// `read` picks uniformly among the pre-filled gifts `bench_id(1..=read_ids)`.
    #[arg(long, default_value_t = 100_000)]
    read_ids: u64,
    /// Generator threads (1 = a single-threaded runtime, like `wrk -t1`).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

pub fn main(args: Args) -> Result<(), String> {
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    }
    .map_err(|e| e.to_string())?;
    runtime.block_on(run(args))
}

struct Plan {
    scenario: Scenario,
    addr: SocketAddr,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    rate: Option<f64>,
    next_slot: AtomicU64,
    read_ids: u64,
    /// Scheduled operations never sent because the run stopped `OVERLOAD_GRACE` after its end.
    unsent: AtomicU64,
}

/// How long past the end an open-loop run may go on working off its backlog.
const OVERLOAD_GRACE: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn run(args: Args) -> Result<(), String> {
    if args.rate.is_some_and(|r| r <= 0.0) {
        return Err("--rate must be positive".into());
    }
    let mut conns = Vec::with_capacity(args.connections);
    for _ in 0..args.connections.max(1) {
        conns.push(Conn::connect(args.addr).await.map_err(|e| format!("connect {}: {e}", args.addr))?);
    }
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let plan = Arc::new(Plan {
        scenario: args.scenario,
        addr: args.addr,
        start,
        measure_from,
        end: measure_from + Duration::from_secs_f64(args.duration),
        rate: args.rate,
        next_slot: AtomicU64::new(0),
        read_ids: args.read_ids.max(1),
        unsent: AtomicU64::new(0),
    });
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| tokio::spawn(drive(plan.clone(), conn, 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1))))
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        let tally = t.await.map_err(|e| e.to_string())?;
        all.latencies_us.extend(tally.latencies_us);
        all.errors += tally.errors;
        all.first_error = all.first_error.or(tally.first_error);
    }
    all.latencies_us.sort_unstable();
    let ms = |q: f64| format!("{:.3}", quantile(&all.latencies_us, q) as f64 / 1000.0);
    let ops = all.latencies_us.len() as u64;
    result_line(&[
        ("scenario", format!("{:?}", args.scenario).to_lowercase()),
        ("mode", args.rate.map_or("closed".into(), |r| format!("rate:{r:.0}"))),
        ("connections", args.connections.to_string()),
        ("ops", ops.to_string()),
        ("secs", format!("{:.3}", args.duration)),
        ("rate", format!("{:.1}", ops as f64 / args.duration)),
        ("p50_ms", ms(0.50)),
        ("p90_ms", ms(0.90)),
        ("p99_ms", ms(0.99)),
        ("p999_ms", ms(0.999)),
        ("max_ms", ms(1.0)),
        ("errors", all.errors.to_string()),
        ("unsent", plan.unsent.load(Ordering::Relaxed).to_string()),
    ]);
    if let Some(e) = all.first_error {
        eprintln!("first error: {e}");
    }
    Ok(())
}

async fn drive(plan: Arc<Plan>, mut conn: Conn, mut rng: u64) -> Tally {
    let mut tally = Tally::default();
    loop {
        let began = match plan.rate {
            None => {
                let now = Instant::now();
                if now < plan.start {
                    tokio::time::sleep_until(plan.start.into()).await;
                }
                Instant::now()
            }
            Some(rate) => {
                let k = plan.next_slot.fetch_add(1, Ordering::Relaxed);
                let scheduled = plan.start + Duration::from_secs_f64(k as f64 / rate);
                if scheduled >= plan.end {
                    break;
                }
                if Instant::now() >= plan.end + OVERLOAD_GRACE {
                    // The server cannot keep up: stop instead of draining an endless backlog,
                    // and count what was never sent.
                    let last = ((plan.end - plan.start).as_secs_f64() * rate).ceil() as u64;
                    plan.unsent.fetch_max(last.saturating_sub(k), Ordering::Relaxed);
                    break;
                }
                if scheduled <= Instant::now() {
                    // Every connection was busy when this operation was due: the wait counts.
                    scheduled
                } else {
                    tokio::time::sleep_until(scheduled.into()).await;
                    Instant::now()
                }
            }
        };
        if began >= plan.end {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let outcome = operation(&plan, &mut conn, rng).await;
        let took = began.elapsed();
        let counted = began >= plan.measure_from;
        match outcome {
            Ok(()) if counted => tally.latencies_us.push(took.as_micros() as u64),
            Ok(()) => {}
            Err(e) if counted => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
            Err(_) => {}
        }
        if conn.broken {
            match Conn::connect(plan.addr).await {
                Ok(c) => conn = c,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
    tally
}

const CREATE_BODY: &str = r#"{"amount": 1000, "message": "thank you"}"#;

async fn operation(plan: &Plan, conn: &mut Conn, random: u64) -> Result<(), String> {
    match plan.scenario {
        Scenario::Create => create(conn).await.map(|_| ()),
        Scenario::Read => {
            let id = bench_id(1 + random % plan.read_ids);
            let request = format!("GET /gifts/{id} HTTP/1.1\r\nHost: bench\r\n\r\n");
            conn.expect(request.as_bytes(), 200).await.map(|_| ())
        }
        Scenario::Pair => {
            let gift_id = create(conn).await?;
            let request = format!(
                "POST /gifts/{gift_id}/send HTTP/1.1\r\nHost: bench\r\nIdempotency-Key: bench-key\r\nContent-Length: 0\r\n\r\n"
            );
            conn.expect(request.as_bytes(), 202).await.map(|_| ())
        }
    }
}

/// POST /gifts; returns the new gift's id.
async fn create(conn: &mut Conn) -> Result<String, String> {
    let request = format!(
        "POST /gifts HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{CREATE_BODY}",
        CREATE_BODY.len()
    );
    let body = conn.expect(request.as_bytes(), 201).await?;
    let text = std::str::from_utf8(&body).map_err(|e| e.to_string())?;
    let start = text.find(r#""gift_id":""#).ok_or_else(|| format!("no gift_id in {text}"))? + 11;
    let len = text[start..].find('"').ok_or_else(|| format!("bad gift_id in {text}"))?;
    Ok(text[start..start + len].to_owned())
}

/// One keep-alive connection; requests are not pipelined.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    broken: bool,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::with_capacity(4096), broken: false })
    }

    /// Sends `request` and returns the body if the status is `want`.
    async fn expect(&mut self, request: &[u8], want: u16) -> Result<Vec<u8>, String> {
        let (status, body) = match self.round_trip(request).await {
            Ok(r) => r,
            Err(e) => {
                self.broken = true;
                return Err(e);
            }
        };
        if status == want {
            Ok(body)
        } else {
            Err(format!("status {status} (wanted {want}): {}", String::from_utf8_lossy(&body)))
        }
    }

    async fn round_trip(&mut self, request: &[u8]) -> Result<(u16, Vec<u8>), String> {
        self.stream.write_all(request).await.map_err(|e| e.to_string())?;
        self.buf.clear();
        let header_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..header_end]).map_err(|e| e.to_string())?;
        let status: u16 =
            head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad status line: {head:?}"))?;
        let mut length = None;
        for line in head.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err("chunked responses are not supported by this generator".into());
                } else if name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close") {
                    self.broken = true;
                }
            }
        }
        let length = length.ok_or("response without Content-Length")?;
        while self.buf.len() < header_end + length {
            self.fill().await?;
        }
        Ok((status, self.buf[header_end..header_end + length].to_vec()))
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            self.broken = true;
            return Err("connection closed by the server".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
