//! A running binary: its collected output, and the signals and waits the suites give it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running binary whose stdout (JSON log lines) is collected.
pub struct Proc {
    child: Child,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `bin` with only `env` (and PATH); stdout lines are collected, stderr passes through.
    pub fn start(bin: &str, env: &[(&str, String)]) -> Self {
        Self::spawn(bin, env, false)
    }

    /// Like [`Proc::start`], but stderr is collected too, into the same `logs` (so a test can
    /// search everything the process printed; `log_lines` still keeps only the JSON lines).
    pub fn start_capturing_stderr(bin: &str, env: &[(&str, String)]) -> Self {
        Self::spawn(bin, env, true)
    }

    fn spawn(bin: &str, env: &[(&str, String)], capture_stderr: bool) -> Self {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(if capture_stderr { Stdio::piped() } else { Stdio::inherit() });
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut streams: Vec<Box<dyn std::io::Read + Send>> = vec![Box::new(child.stdout.take().unwrap())];
        if let Some(err) = child.stderr.take() {
            streams.push(Box::new(err));
        }
        for stream in streams {
            let sink = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Self { child, logs }
    }

    /// SIGKILL: no cleanup, no drain.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().unwrap()
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log_lines(&self) -> Vec<Value> {
        self.logs.lock().unwrap().iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The log lines once `arrived` holds for them, or whatever is there after `within`.
    /// The services write their logs in batches every 20 ms, so the line about a change can
    /// trail the change a test has already seen through the API.
    pub fn log_lines_once(&self, within: Duration, arrived: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let logs = self.log_lines();
            if arrived(&logs) || Instant::now() >= deadline {
                return logs;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a `kill` name such as "TERM") without waiting for the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -{signal} {}", self.child.id());
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Every line the process printed so far, JSON or not.
    pub fn raw_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
