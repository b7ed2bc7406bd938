//! Each invariant on a hand-made history that breaks it (a check that cannot fail proves
//! nothing), and a clean history that passes them all.

use std::collections::BTreeMap;

use gift_core::domain::{GiftId, Status};

mod answers;
mod deliveries;
mod liveness;
mod messages;
mod sends;
mod statuses;

use super::*;
use crate::history::{Decision, Entry, Event, Phase, StoreCall};

const W: &str = "worker-0";
const EXPECT: Expect = Expect {
    max_receives: 5,
    heal_bound_ms: 1_000,
    send_failure_rate: 0.5,
    publish_grace_ms: 0,
    visibility_timeout_ms: 30_000,
};

fn g(n: u128) -> GiftId {
    GiftId::from_random(n)
}

/// A history under construction: each event one millisecond after the last.
#[derive(Default)]
struct H {
    entries: Vec<Entry>,
    attempt: u64,
}

impl H {
    fn push(&mut self, event: Event) -> &mut Self {
        let at_ms = self.entries.len() as u64;
        self.entries.push(Entry { at_ms, event });
        self
    }

    /// Filler events until the history holds `len` entries: the next one is at `len` ms.
    fn pad_to(&mut self, len: usize) -> &mut Self {
        while self.entries.len() < len {
            self.push(Event::Fault { kind: crate::kinds::FaultKind::Latency });
        }
        self
    }

    fn store(&mut self, node: &str, call: StoreCall) -> &mut Self {
        self.push(Event::Store { node: node.into(), call, heard: true })
    }

    fn answer(&mut self, gift: GiftId, key: &str, code: u16) -> &mut Self {
        let body = answer_body(gift, key, code);
        self.push(Event::SendAnswered { gift, key: key.into(), code, body })
    }

    /// The API's accepted send: the store's Queued, the publish of `msg`, the 202.
    fn accept(&mut self, gift: GiftId, key: &str, msg: u64) -> &mut Self {
        let asked_ms = self.entries.len() as u64;
        self.store("api-0", StoreCall::RequestSend { gift, key: key.into(), decision: Decision::Queued, asked_ms })
            .push(Event::Published { node: "api-0".into(), msg, gift, key: key.into() })
            .answer(gift, key, 202)
    }

    fn receive(&mut self, node: &str, msg: u64, gift: GiftId, key: &str, n: u32) -> &mut Self {
        let (node, key) = (node.into(), key.into());
        self.push(Event::Received { node, msg, gift, key, receive_count: n, seen: true })
    }

    /// `times` receives of `msg` no worker saw (as a message's earlier receives).
    fn worn(&mut self, msg: u64, gift: GiftId, key: &str, times: u32) -> &mut Self {
        for n in 1..=times {
            let (node, key) = ("queue".into(), key.into());
            self.push(Event::Received { node, msg, gift, key, receive_count: n, seen: false });
        }
        self
    }

    fn read(&mut self, node: &str, gift: GiftId, status: Status) -> &mut Self {
        self.store(node, StoreCall::Read { gifts: vec![(gift, Some(status))], asked_ms: None })
    }

    fn start(&mut self, node: &str, gift: GiftId, key: &str, n: u32) -> u64 {
        self.attempt += 1;
        let attempt = self.attempt;
        let (node, key) = (node.into(), key.into());
        self.push(Event::DispatchStarted { node, attempt, gift, key, receive_count: n, status: Status::Queued });
        attempt
    }

    fn outcome(&mut self, node: &str, attempt: u64, gift: GiftId, ok: bool) -> &mut Self {
        self.push(Event::Dispatched { node: node.into(), attempt, gift, ok })
    }

    /// One worker turn on `msg`: receive, read QUEUED, pseudo-send with outcome `ok`.
    fn attempt(&mut self, node: &str, msg: u64, gift: GiftId, key: &str, n: u32, ok: bool) -> &mut Self {
        self.receive(node, msg, gift, key, n).read(node, gift, Status::Queued);
        let a = self.start(node, gift, key, n);
        self.outcome(node, a, gift, ok)
    }

    fn sent(&mut self, node: &str, gift: GiftId, won: bool) -> &mut Self {
        self.store(node, StoreCall::MarkSent { gifts: vec![(gift, won)] })
    }

    fn failed(&mut self, node: &str, gift: GiftId, applied: bool) -> &mut Self {
        self.store(node, StoreCall::MarkFailed { gift, applied })
    }

    fn delete(&mut self, node: &str, msg: u64) -> &mut Self {
        self.push(Event::Deleted { node: node.into(), msg })
    }

    fn check(&self, finals: &[(GiftId, Status)]) -> Report {
        let finals: BTreeMap<GiftId, Status> = finals.iter().copied().collect();
        check(&self.entries, &End { finals: (!finals.is_empty()).then_some(&finals), expect: EXPECT })
    }

    fn kinds(&self, finals: &[(GiftId, Status)]) -> Vec<Invariant> {
        let mut k: Vec<Invariant> = self.check(finals).violations.iter().map(|v| v.invariant).collect();
        k.sort();
        k.dedup();
        k
    }
}

fn answer_body(gift: GiftId, key: &str, code: u16) -> String {
    let key = serde_json::Value::String(key.into());
    if (200..300).contains(&code) {
        format!(r#"{{"gift_id":"{gift}","status":"QUEUED","request_id":{key}}}"#)
    } else {
        format!(r#"{{"error":{{"code":"X","message":"x"}},"request_id":{key}}}"#)
    }
}

/// Queued, failed four times, sent on the fifth receive, replayed.
fn good(gift: GiftId) -> H {
    let mut h = H::default();
    h.push(Event::Phase { phase: Phase::Safety }).accept(gift, "K-1~!", 1);
    for n in 1..=4 {
        h.attempt(W, 1, gift, "K-1~!", n, false);
    }
    h.attempt(W, 1, gift, "K-1~!", 5, true).sent(W, gift, true).delete(W, 1);
    h.store("api-1", StoreCall::RequestSend { gift, key: "K-1~!".into(), decision: Decision::Replay, asked_ms: 0 });
    h.answer(gift, "K-1~!", 200);
    h
}

/// Queued, failed on all five receives, FAILED.
fn exhausted(gift: GiftId) -> H {
    let mut h = H::default();
    h.accept(gift, "k", 1);
    for n in 1..=5 {
        h.attempt(W, 1, gift, "k", n, false);
    }
    h.failed(W, gift, true);
    h
}

#[test]
fn clean_histories_pass() {
    let gift = g(1);
    assert_eq!(good(gift).check(&[(gift, Status::Sent)]).violations, vec![]);
    assert_eq!(exhausted(gift).check(&[(gift, Status::Failed)]).violations, vec![]);
}
