//! `gift-bench startup`: milliseconds from exec of a command to its first 200 on `/healthz`.
//!
//! The command inherits the environment; its output goes to `--log`. Polls every
//! millisecond with a fresh connection. The process is left running (its pid is printed) for
//! the benchmarks that follow, unless `--stop` asks for it to be killed.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::result_line;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    port: u16,
    /// Where the command's stdout and stderr go.
    #[arg(long)]
    log: std::path::PathBuf,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Kill the process once it answered.
    #[arg(long)]
    stop: bool,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn main(args: Args) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    if healthz(addr) {
        return Err(format!("something already answers on {addr}"));
    }
    let log = File::create(&args.log).map_err(|e| format!("{}: {e}", args.log.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{}: {e}", args.command[0]))?;
    let deadline = started + Duration::from_millis(args.timeout_ms);
    let ms = loop {
        if healthz(addr) {
            break started.elapsed().as_secs_f64() * 1e3;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{} exited with {status} before answering; see {}",
                args.command[0],
                args.log.display()
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("no 200 on /healthz within {} ms", args.timeout_ms));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if args.stop {
        let _ = child.kill();
        let _ = child.wait();
    }
    result_line(&[("startup_ms", format!("{ms:.1}")), ("pid", child.id().to_string())]);
    Ok(())
}

fn healthz(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
