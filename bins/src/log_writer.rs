//! Stdout for log lines, written in batches.
//!
//! A thread that logs appends its line to a shared buffer — a lock and a copy, no system
//! call and no thread to wake — and one flusher thread writes whatever has gathered every
//! [`FLUSH_EVERY`], or at once when [`HIGH_WATER`] bytes are pending. A writer that hands
//! each line to a thread wakes that thread per line; on the API's hot path that cost about
//! as much CPU as the request's own database round trip (docs/benchmarks.md).
//!
//! Lines are never dropped: past [`CAP`] pending bytes (stdout blocked) loggers wait for the
//! flusher. A `kill -9` loses at most the last [`FLUSH_EVERY`] of lines; dropping the
//! [`FlushGuard`] writes everything still pending.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

const FLUSH_EVERY: Duration = Duration::from_millis(20);
const HIGH_WATER: usize = 256 * 1024;
const CAP: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Buffer {
    pending: Mutex<Pending>,
    /// Wakes the flusher early (high water, shutdown).
    full: Condvar,
    /// Wakes loggers waiting for room.
    drained: Condvar,
}

impl Buffer {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A logger that panicked mid-copy leaves at worst a partial line; keep logging.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `MakeWriter` to give tracing-subscriber.
#[derive(Clone)]
pub struct BatchedStdout {
    shared: Arc<Buffer>,
}

/// Stops the flusher after writing everything pending; keep it alive until the process ends.
pub struct FlushGuard {
    shared: Arc<Buffer>,
    flusher: Option<JoinHandle<()>>,
}

/// Starts the flusher thread.
pub fn start() -> io::Result<(BatchedStdout, FlushGuard)> {
    let shared = Arc::new(Buffer::default());
    let flusher = {
        let shared = shared.clone();
        std::thread::Builder::new().name("log-flusher".into()).spawn(move || flush_until_closed(&shared))?
    };
    Ok((BatchedStdout { shared: shared.clone() }, FlushGuard { shared, flusher: Some(flusher) }))
}

fn flush_until_closed(shared: &Buffer) {
    let mut out = Vec::new();
    loop {
        let closed = {
            let mut pending = shared.lock();
            if pending.bytes.len() < HIGH_WATER && !pending.closed {
                pending = shared.full.wait_timeout(pending, FLUSH_EVERY).unwrap_or_else(|e| e.into_inner()).0;
            }
            // Swap buffers, so the copy to stdout happens outside the lock.
            std::mem::swap(&mut pending.bytes, &mut out);
            pending.closed
        };
        shared.drained.notify_all();
        if !out.is_empty() {
            // Nowhere to report a failed write of the log itself; the next batch tries again.
            let mut stdout = io::stdout().lock();
            let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
            out.clear();
        }
        if closed {
            return;
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.full.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

/// One event's writer; tracing-subscriber formats an event whole and writes it at once.
pub struct Line<'a> {
    shared: &'a Buffer,
}

impl<'a> MakeWriter<'a> for BatchedStdout {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line { shared: &self.shared }
    }
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = self.shared.lock();
        while pending.bytes.len() >= CAP && !pending.closed {
            pending = self.shared.drained.wait(pending).unwrap_or_else(|e| e.into_inner());
        }
        pending.bytes.extend_from_slice(buf);
        if pending.bytes.len() >= HIGH_WATER {
            self.shared.full.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_whole_and_in_order() {
        let shared = Buffer::default();
        let mut line = Line { shared: &shared };
        line.write_all(b"{\"a\":1}\n").unwrap();
        line.write_all(b"{\"b\":2}\n").unwrap();
        assert_eq!(shared.lock().bytes, b"{\"a\":1}\n{\"b\":2}\n");
    }

    #[test]
    fn the_guard_flushes_and_stops_the_flusher() {
        let (writer, guard) = start().unwrap();
        writer.make_writer().write_all(b"{\"test\":\"log_writer flushes on drop\"}\n").unwrap();
        drop(guard);
        assert!(writer.shared.lock().closed);
        assert!(writer.shared.lock().bytes.is_empty(), "pending lines were written before the flusher stopped");
    }
}
