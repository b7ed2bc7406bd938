//! Running the real binaries on loopback and talking to them over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gift-{tag}-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running binary whose stdout (JSON log lines) is collected.
pub struct Proc {
    child: Child,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn start(bin: &str, env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
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
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Client {
    pub base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(port: u16) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}"),
            agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build(),
        }
    }

    /// (status, JSON body); error statuses are answers too.
    pub fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> (u16, Value) {
        let mut req =
            self.agent.request(method, &format!("{}{path}", self.base)).set("content-type", "application/json");
        if let Some(k) = key {
            req = req.set("idempotency-key", k);
        }
        let res = match body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        let res = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = res.status();
        let text = res.into_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub fn wait_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(r) = self.agent.get(&format!("{}/healthz", self.base)).call() {
                if r.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} never became healthy", self.base);
    }

    pub fn create(&self) -> String {
        let (status, body) = self.call("POST", "/gifts", None, Some(r#"{"amount": 1000, "message": "thanks"}"#));
        assert_eq!(status, 201, "{body}");
        body["gift_id"].as_str().unwrap().to_owned()
    }

    pub fn send(&self, id: &str, key: &str) -> (u16, Value) {
        self.call("POST", &format!("/gifts/{id}/send"), Some(key), None)
    }

    pub fn status(&self, id: &str) -> Value {
        let (code, body) = self.call("GET", &format!("/gifts/{id}"), None, None);
        assert_eq!(code, 200, "{body}");
        body
    }

    /// Polls until every gift is SENT or FAILED; returns their final bodies.
    pub fn wait_terminal(&self, ids: &[String], within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let all: Vec<Value> = ids.iter().map(|id| self.status(id)).collect();
            if all.iter().all(|g| g["status"] == "SENT" || g["status"] == "FAILED") {
                return all;
            }
            if Instant::now() > deadline {
                let left: Vec<_> = all.iter().filter(|g| g["status"] == "QUEUED" || g["status"] == "CREATED").collect();
                panic!("{} gift(s) not terminal after {within:?}: {left:?}", left.len());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Log lines of `events` for one gift.
pub fn events_for(logs: &[Value], gift: &str, event: &str) -> usize {
    logs.iter().filter(|l| l["gift_id"] == gift && l["event"] == event).count()
}
