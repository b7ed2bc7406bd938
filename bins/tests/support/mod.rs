//! Running the real binaries on loopback and talking to them over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The variable's value; without it, a panic under `GIFT_TEST_SERVICES=required` (how
/// scripts/test and CI run) and a printed skip otherwise.
pub fn required(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("GIFT_TEST_SERVICES").as_deref() == Ok("required") => {
            panic!("{var} is required (scripts/test)")
        }
        _ => {
            eprintln!("SKIPPED: needs {var} (scripts/test provisions it)");
            None
        }
    }
}

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
    /// Starts `bin` with only `env` (and PATH); stdout lines are collected, stderr passes through.
    pub fn start(bin: &str, env: &[(&str, String)]) -> Self {
        Self::spawn(bin, env, false)
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

    /// (status, JSON body, or the text when it is not JSON); error statuses are answers
    /// too, a transport failure panics.
    pub fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> (u16, Value) {
        let answer = self.try_call(method, path, key, body).unwrap_or_else(|e| panic!("{e}"));
        let body = serde_json::from_str(&answer.text).unwrap_or(Value::String(answer.text));
        (answer.status, body)
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

/// Creates database `name` (owned by `owner` if given) on the server `admin_url` points
/// at, and returns the URL of the new database.
pub fn create_database(rt: &tokio::runtime::Runtime, admin_url: &str, name: &str, owner: Option<&str>) -> String {
    use sqlx::Connection;
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(admin_url).await.unwrap();
        let owner = owner.map(|o| format!(" OWNER {o}")).unwrap_or_default();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}{owner}"))).execute(&mut c).await.unwrap();
    });
    let mut url = url::Url::parse(admin_url).expect("a PostgreSQL URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// What both binaries get in the suites: the URL form of the database settings, the queue,
/// and the SQS emulator (or a proxy in front of it) with dummy credentials.
pub fn service_env(database_url: &str, queue_url: &str, sqs_endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("SQS_QUEUE_URL", queue_url.to_owned()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_ENDPOINT_URL_SQS", sqs_endpoint.to_owned()),
        ("DB_SSLMODE", "disable".into()),
    ]
}

/// Log lines of `events` for one gift.
pub fn events_for(logs: &[Value], gift: &str, event: &str) -> usize {
    logs.iter().filter(|l| l["gift_id"] == gift && l["event"] == event).count()
}

// ---- Added for the fault suite (bins/tests/faults.rs) -------------------------------------

impl Proc {
    /// Like [`Proc::start`], but stderr is collected too, into the same `logs` (so a test can
    /// search everything the process printed; `log_lines` still keeps only the JSON lines).
    pub fn start_capturing_stderr(bin: &str, env: &[(&str, String)]) -> Self {
        Self::spawn(bin, env, true)
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

/// One HTTP answer, with what the fault tests look at besides the body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    /// Every response header as `name: value`, for tests that search them.
    pub headers: Vec<String>,
    pub text: String,
    pub body: Value,
    pub elapsed: Duration,
}

impl Client {
    /// Like [`Client::call`], but a transport failure (reset, refused, timeout) is returned
    /// rather than a panic, and headers and latency are kept.
    /// POSTs a body the API refuses for its size. The API answers 413 from the headers and
    /// closes without reading the rest, so a client still writing the body may see that write
    /// fail (EPIPE) before it reads the answer — which ureq then reports instead of the 413.
    /// A careful HTTP/1.1 client reads the answer the server sent before it closed; so does
    /// this one.
    pub fn post_too_large(&self, path: &str, body: &str) -> Result<Answer, String> {
        use std::io::{ErrorKind, Read, Write};
        let started = Instant::now();
        let addr = self.base.trim_start_matches("http://");
        let fail = |e: std::io::Error| format!("POST {path}: {e}");
        let mut stream = std::net::TcpStream::connect(addr).map_err(fail)?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(fail)?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        // Cut short when the server closes first; its answer is already in our receive buffer.
        let _ = stream.write_all(request.as_bytes());
        let mut raw = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
                // The close that follows unread request bytes is a reset, after the answer.
                Err(e) if e.kind() == ErrorKind::ConnectionReset && !raw.is_empty() => break,
                Err(e) => return Err(format!("POST {path}: reading the answer: {e}")),
            }
        }
        let raw = String::from_utf8(raw).map_err(|e| format!("POST {path}: {e}"))?;
        let (head, text) =
            raw.split_once("\r\n\r\n").ok_or_else(|| format!("POST {path}: no end of headers in {raw:?}"))?;
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("POST {path}: no status line in {raw:?}"))?;
        let headers: Vec<String> = lines.map(str::to_owned).collect();
        let retry_after = headers
            .iter()
            .find_map(|h| h.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("retry-after")))
            .map(|(_, value)| value.trim().to_owned());
        let body = serde_json::from_str(text).unwrap_or(Value::Null);
        Ok(Answer { status, retry_after, headers, text: text.to_owned(), body, elapsed: started.elapsed() })
    }

    pub fn try_call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Result<Answer, String> {
        let started = Instant::now();
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
            Err(e) => return Err(format!("{method} {path}: {e}")),
        };
        let status = res.status();
        let retry_after = res.header("retry-after").map(str::to_owned);
        let headers =
            res.headers_names().iter().map(|n| format!("{n}: {}", res.header(n).unwrap_or_default())).collect();
        let text = res.into_string().map_err(|e| format!("{method} {path}: reading the body: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, retry_after, headers, text, body, elapsed: started.elapsed() })
    }
}

/// The switchable TCP forwarder of the real-stack run (off, stalled, slowed).
#[allow(unused_imports)]
pub use gift_stack::proxy::Proxy;
