//! Load: clients creating and sending gifts until told to stop, and what their calls were answered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Answer, Client};

pub struct Call {
    pub op: &'static str,
    pub at: Instant,
    pub key: Option<String>,
    pub gift: Option<String>,
    pub answer: Result<Answer, String>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Call>>>,
}

impl Load {
    /// `threads` clients, each looping create → send (a fresh key) with `pause` in between.
    pub fn start(port: u16, threads: usize, pause: Duration, tag: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|t| {
                let (stop, tag) = (stop.clone(), tag.to_owned());
                std::thread::spawn(move || {
                    let client = Client::new(port);
                    let mut calls = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        let at = Instant::now();
                        let created = client.try_call("POST", "/gifts", None, Some(r#"{"amount": 500}"#));
                        let gift = match &created {
                            Ok(a) if a.status == 201 => a.body["gift_id"].as_str().map(str::to_owned),
                            _ => None,
                        };
                        calls.push(Call { op: "create", at, key: None, gift: gift.clone(), answer: created });
                        if let Some(id) = gift {
                            let key = format!("{tag}-{t}-{i}");
                            let at = Instant::now();
                            let answer = client.try_call("POST", &format!("/gifts/{id}/send"), Some(&key), None);
                            calls.push(Call { op: "send", at, key: Some(key), gift: Some(id), answer });
                        }
                        std::thread::sleep(pause);
                    }
                    calls
                })
            })
            .collect();
        Self { stop, threads }
    }

    pub fn stop(self) -> Vec<Call> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    }
}

/// Gift ids whose send was accepted (202, or 200 for a retry of an accepted key).
pub fn accepted(calls: &[Call]) -> Vec<String> {
    let mut ids: Vec<String> = calls
        .iter()
        .filter(|c| c.op == "send" && matches!(&c.answer, Ok(a) if a.status == 202 || a.status == 200))
        .filter_map(|c| c.gift.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A client that sends each of `gifts` once, retrying the same Idempotency-Key after a 503
/// (as Retry-After asks) until it is accepted or `within` runs out.
pub fn send_retrying(port: u16, gifts: Vec<String>, tag: &str, within: Duration) -> JoinHandle<Vec<Call>> {
    let tag = tag.to_owned();
    std::thread::spawn(move || {
        let client = Client::new(port);
        let deadline = Instant::now() + within;
        let mut calls = Vec::new();
        for (i, id) in gifts.into_iter().enumerate() {
            let key = format!("{tag}-{i}");
            while Instant::now() < deadline {
                let at = Instant::now();
                let answer = client.try_call("POST", &format!("/gifts/{id}/send"), Some(&key), None);
                let retry = matches!(&answer, Ok(a) if a.status == 503);
                let wait = match &answer {
                    Ok(a) => a.retry_after.as_deref().and_then(|s| s.parse().ok()).unwrap_or(1),
                    Err(_) => 1,
                };
                calls.push(Call { op: "send", at, key: Some(key.clone()), gift: Some(id.clone()), answer });
                if !retry {
                    break;
                }
                std::thread::sleep(Duration::from_secs(wait));
            }
        }
        calls
    })
}

pub fn status_histogram(calls: &[&Call]) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for c in calls {
        let k = match &c.answer {
            Ok(a) => format!("{} {}", c.op, a.status),
            Err(_) => format!("{} transport error", c.op),
        };
        *h.entry(k).or_default() += 1;
    }
    h
}

/// A 503 in the one error shape, with Retry-After, and the request's key as request_id.
pub fn assert_unavailable_shape(call: &Call, answer: &Answer) {
    let body = &answer.body;
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{}", answer.text);
    assert!(body["error"]["message"].is_string(), "{}", answer.text);
    let expected = call.key.as_deref().map_or(Value::Null, |k| Value::String(k.to_owned()));
    assert_eq!(body.get("request_id"), Some(&expected), "{}", answer.text);
    assert!(answer.retry_after.is_some(), "503 without Retry-After: {}", answer.text);
}
