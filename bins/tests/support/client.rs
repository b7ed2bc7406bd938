//! An HTTP client of the API: the calls the suites make, and each answer with its headers and latency.

use std::time::{Duration, Instant};

use serde_json::Value;

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

    /// Like [`Client::call`], but a transport failure (reset, refused, timeout) is returned
    /// rather than a panic, and headers and latency are kept.
    pub fn try_call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Result<Answer, String> {
        let started = Instant::now();
        let url = format!("{}{path}", self.base);
        let res = gift_stack::client::request(&self.agent, &url, method, key, body)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = res.status();
        let retry_after = res.header("retry-after").map(str::to_owned);
        let headers =
            res.headers_names().iter().map(|n| format!("{n}: {}", res.header(n).unwrap_or_default())).collect();
        let text = res.into_string().map_err(|e| format!("{method} {path}: reading the body: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, retry_after, headers, text, body, elapsed: started.elapsed() })
    }
}
