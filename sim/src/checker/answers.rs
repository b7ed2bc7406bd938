//! What clients heard: no 5xx but 503, the key echoed byte for byte, a replay answered with
//! the first body, one accepted key per gift, nothing accepted that the store did not
//! commit, and a gift read back with the amount and message it was created with.

use std::collections::{BTreeMap, BTreeSet};

use gift_core::domain::GiftId;

use super::{Checker, End, Facts, Invariant, Out, Report};
use crate::history::{Entry, Event};

#[derive(Default)]
pub struct Answers {
    created: BTreeMap<GiftId, (i64, Option<String>)>,
    bodies: BTreeMap<(GiftId, String), String>,
    accepted_keys: BTreeMap<GiftId, BTreeSet<String>>,
}

impl Checker for Answers {
    fn observe(&mut self, _: usize, entry: &Entry, facts: &Facts, out: &mut Out) {
        match &entry.event {
            Event::Created { gift, amount, message } => {
                self.created.insert(*gift, (*amount, message.clone()));
            }
            Event::Fetched { gift, code, body } => self.fetched(*gift, *code, body, out),
            Event::SendAnswered { .. } => self.send_answered(entry, facts, out),
            _ => {}
        }
    }

    fn finish(&mut self, _: &End<'_>, _: &Facts, out: &mut Out, _: &mut Report) {
        for (gift, keys) in &self.accepted_keys {
            if keys.len() > 1 {
                out.add(Invariant::QueuedTwice, Some(*gift), format!("accepted under {} keys: {keys:?}", keys.len()));
            }
        }
    }
}

impl Answers {
    fn fetched(&mut self, gift: GiftId, code: u16, body: &str, out: &mut Out) {
        let Some((amount, message)) = self.created.get(&gift) else { return };
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let same = code == 200
            && v["gift_id"].as_str() == Some(gift.to_string().as_str())
            && v["amount"].as_i64() == Some(*amount)
            && v["message"].as_str() == message.as_deref();
        if !same {
            out.add(
                Invariant::GiftAltered,
                Some(gift),
                format!("created with amount={amount} message={message:?}, read {code} {body}"),
            );
        }
    }

    fn send_answered(&mut self, entry: &Entry, facts: &Facts, out: &mut Out) {
        let Event::SendAnswered { gift, key, code, body } = &entry.event else { return };
        let (gift, code) = (*gift, *code);
        if code >= 500 && code != 503 {
            out.add(Invariant::ServerError, Some(gift), format!("send key={key} answered {code}: {body}"));
        }
        let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let echoed = json.as_ref().and_then(|v| v.get("request_id")).and_then(|v| v.as_str());
        if echoed != Some(key.as_str()) {
            out.add(Invariant::KeyNotEchoed, Some(gift), format!("sent key {key:?}, answered {code} {body}"));
        }
        let queued_elsewhere = facts.queued.keys().any(|(g, k)| *g == gift && k != key);
        if code == 409 && !queued_elsewhere {
            out.add(
                Invariant::RefusedWithoutCause,
                Some(gift),
                format!("key={key} answered 409; no other key was queued"),
            );
        }
        if !(200..300).contains(&code) {
            return;
        }
        let answered_gift = json.as_ref().and_then(|v| v.get("gift_id")).and_then(|v| v.as_str());
        if answered_gift != Some(gift.to_string().as_str()) {
            out.add(Invariant::KeyNotEchoed, Some(gift), format!("asked for gift {gift}, answered {body}"));
        }
        if !facts.committed.contains(&(gift, key.clone())) {
            out.add(Invariant::AcceptedWithoutCommit, Some(gift), format!("key={key} answered {code}"));
        }
        self.accepted_keys.entry(gift).or_default().insert(key.clone());
        let first = self.bodies.entry((gift, key.clone())).or_insert_with(|| body.clone());
        if first != body {
            out.add(Invariant::ReplayChangedBody, Some(gift), format!("key={key}: {first} then {body}"));
        }
    }
}
