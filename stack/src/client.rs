//! The simulation's client workload, over HTTP to the real APIs: each client creates gifts
//! (amounts and messages of every legal shape), sends each from racing senders (shared or
//! distinct keys of every legal shape), retries an unanswered or 503 send with the same key
//! until it hears a final answer, sometimes replays it, and reads the gift back. Some
//! requests give up after a few milliseconds — a client disconnecting mid-request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gift_core::domain::GiftId;
use gift_sim::history::Event;
use gift_sim::workload;
use rand::{thread_rng, Rng};

/// Microseconds since the Unix epoch: the clock the effect logs use too.
pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// What the clients heard, stamped when they heard it.
#[derive(Clone, Default)]
pub struct Heard(Arc<Mutex<Vec<(i64, Event)>>>);

impl Heard {
    pub fn record(&self, event: Event) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push((now_us(), event));
    }

    pub fn take(&self) -> Vec<(i64, Event)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

pub struct Clients {
    pub apis: Vec<String>,
    pub heard: Heard,
    /// Set: start no new gift.
    pub winding_down: Arc<AtomicBool>,
    /// Past it a sender gives up and says so (a liveness failure).
    pub deadline: Instant,
    pub unfinished: Arc<AtomicBool>,
}

/// One API call as a client makes it: a JSON body if any, the idempotency key if any. An
/// error status is an answer too; the error is the transport's (refused, reset, timed out).
pub fn request(
    agent: &ureq::Agent,
    url: &str,
    method: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Result<ureq::Response, String> {
    let mut req = agent.request(method, url).set("content-type", "application/json");
    if let Some(k) = key {
        req = req.set("idempotency-key", k);
    }
    let res = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    match res {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Ok(r),
        Err(ureq::Error::Transport(t)) => Err(t.to_string()),
    }
}

/// An answer, or `None` when none arrived (refused, reset, timed out).
fn call(apis: &[String], method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Option<(u16, String)> {
    let mut rng = thread_rng();
    let base = &apis[rng.gen_range(0..apis.len())];
    let timeout = if rng.gen_bool(0.05) { rng.gen_range(5..=300) } else { 5_000 };
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_millis(timeout)).build();
    let res = request(&agent, &format!("{base}{path}"), method, key, body).ok()?;
    let status = res.status();
    res.into_string().ok().map(|text| (status, text))
}

fn pause() {
    std::thread::sleep(Duration::from_millis(thread_rng().gen_range(10..=500)));
}

impl Clients {
    /// Runs client `id` until winding down; returns when its last gift is settled.
    pub fn run(&self, id: usize) {
        let mut g = 0;
        while !self.winding_down.load(Ordering::SeqCst) && Instant::now() < self.deadline {
            if let Some(gift) = self.create() {
                self.send_all(id, g, gift);
                self.read_back(gift);
            }
            g += 1;
        }
    }

    fn create(&self) -> Option<GiftId> {
        let (amount, message) = (workload::amount(), workload::message());
        let body = serde_json::json!({ "amount": amount, "message": message }).to_string();
        while Instant::now() < self.deadline {
            match call(&self.apis, "POST", "/gifts", None, Some(&body)) {
                Some((201, answer)) => {
                    let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
                    let gift = GiftId::parse(v["gift_id"].as_str().unwrap_or_default()).ok()?;
                    self.heard.record(Event::Created { gift, amount, message });
                    return Some(gift);
                }
                // Anything but 201 or 503 to a legal create is the API's fault; the
                // checker has no event for it, so it stops the run here.
                Some((code, answer)) if code != 503 => panic!("POST /gifts answered {code}: {answer}"),
                _ => pause(),
            }
        }
        None
    }

    fn send_all(&self, client: usize, g: usize, gift: GiftId) {
        let mut rng = thread_rng();
        let senders = rng.gen_range(1..=3);
        let shared = rng.gen_bool(0.3).then(|| workload::key(client, g, 0));
        std::thread::scope(|scope| {
            for s in 0..senders {
                let key = shared.clone().unwrap_or_else(|| workload::key(client, g, s));
                scope.spawn(move || self.sender(gift, &key));
            }
        });
    }

    fn sender(&self, gift: GiftId, key: &str) {
        let path = format!("/gifts/{gift}/send");
        let mut replays_left = u32::from(thread_rng().gen_bool(0.3));
        loop {
            if Instant::now() >= self.deadline {
                self.unfinished.store(true, Ordering::SeqCst);
                return;
            }
            match call(&self.apis, "POST", &path, Some(key), None) {
                None => self.heard.record(Event::SendLost { gift, key: key.to_owned() }),
                Some((code, body)) => {
                    self.heard.record(Event::SendAnswered { gift, key: key.to_owned(), code, body });
                    let settled = (200..300).contains(&code) || (400..500).contains(&code);
                    if settled && replays_left == 0 {
                        return;
                    }
                    if settled {
                        replays_left -= 1;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(thread_rng().gen_range(10..=1_000)));
        }
    }

    fn read_back(&self, gift: GiftId) {
        while Instant::now() < self.deadline {
            match call(&self.apis, "GET", &format!("/gifts/{gift}"), None, None) {
                Some((503, _)) | None => pause(),
                Some((code, body)) => {
                    self.heard.record(Event::Fetched { gift, code, body });
                    return;
                }
            }
        }
    }
}
