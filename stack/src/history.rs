//! The real stack's history, in the simulation's terms: what the clients heard, what the
//! nemesis did, every process's effect log (`gift_runtime::tap`), and the end state — the
//! send requests the database kept, each gift's final status, the dead-letter queue.
//!
//! Three things the simulation records directly are recovered here:
//! - a send whose transaction committed but whose answer was lost (a backend killed at
//!   the commit) has no tap line; its `send_requests` row stands in for the store's
//!   Queued, stamped with when the send was asked;
//! - a receive SQS counted but no worker got (its answer lost at the proxy) shows as a gap
//!   in the receive counts the workers saw; SQS is the witness of receives here, as the
//!   model's counter is not in the simulation;
//! - lines from different processes are ordered by their clocks (one machine). A line is
//!   stamped after its call returned, and a process paused in between (`SIGSTOP`) stamps it
//!   late; SQS's own order corrects the two cases that matter: a publish line after the
//!   message's first receive moves to just before it, and a receive line after a receive
//!   of the same message with a higher count moves to just before that one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use gift_core::domain::{GiftId, Status};
use gift_runtime::tap::{Decided, Effect, Line};
use gift_sim::history::{Decision, Entry, Event, MsgId, StoreCall};

/// What the run ended with, read after every process stopped.
pub struct EndState {
    /// `send_requests`: (gift, key, created_at µs).
    pub send_requests: Vec<(GiftId, String, i64)>,
    pub finals: BTreeMap<GiftId, Status>,
    /// Messages in the dead-letter queue: (SQS message id, gift).
    pub dead_letters: Vec<(String, GiftId)>,
}

#[derive(Default)]
pub struct Builder {
    ids: HashMap<String, MsgId>,
    attempts: HashMap<(String, u32, u64), u64>,
    events: Vec<(i64, Event)>,
    /// When each receive (by its place in `events`) was asked.
    receive_asked: HashMap<usize, i64>,
}

fn decision(d: Decided) -> Decision {
    match d {
        Decided::Queued => Decision::Queued,
        Decided::Replay => Decision::Replay,
        Decided::Conflict(s) => Decision::Conflict(s),
        Decided::NotFound => Decision::NotFound,
    }
}

impl Builder {
    fn msg(&mut self, id: &str) -> MsgId {
        let next = self.ids.len() as MsgId + 1;
        *self.ids.entry(id.to_owned()).or_insert(next)
    }

    fn attempt(&mut self, node: &str, incarnation: u32, attempt: u64) -> u64 {
        let next = self.attempts.len() as u64 + 1;
        *self.attempts.entry((node.to_owned(), incarnation, attempt)).or_insert(next)
    }

    pub fn add(&mut self, at_us: i64, event: Event) {
        self.events.push((at_us, event));
    }

    /// One incarnation's effect log. A last line cut short by `kill -9` is dropped.
    pub fn read_effects(&mut self, path: &Path, incarnation: u32, origin_us: i64) -> Result<(), String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        for raw in text.lines() {
            let Ok(line) = serde_json::from_str::<Line>(raw) else { continue };
            // An accepted send wrote its rows no earlier than it was asked: placed there,
            // nothing that saw them comes before it. Other decisions are observations,
            // placed when answered (the checker knows when they were asked).
            let at = match &line.effect {
                Effect::RequestSend { decided: Decided::Queued, asked_us, .. } => *asked_us,
                _ => line.at_us,
            };
            // A renewal is asked, then answered: the checker wants both.
            if let Effect::Visibility { msg, delay_ms, asked_us, .. } = &line.effect {
                let asked = Event::VisibilityAsked { node: line.node.clone(), msg: self.msg(msg), delay_ms: *delay_ms };
                self.events.push((*asked_us, asked));
            }
            let event = self.event(line.node.clone(), incarnation, line.effect, origin_us);
            self.events.push((at, event));
        }
        Ok(())
    }

    fn event(&mut self, node: String, incarnation: u32, effect: Effect, origin_us: i64) -> Event {
        let store = |node: String, call: StoreCall| Event::Store { node, call, heard: true };
        match effect {
            Effect::Read { gifts, asked_us } => {
                store(node, StoreCall::Read { gifts, asked_ms: Some(ms(asked_us, origin_us)) })
            }
            Effect::RequestSend { gift, key, decided, asked_us } => {
                let asked_ms = ms(asked_us, origin_us);
                store(node, StoreCall::RequestSend { gift, key, decision: decision(decided), asked_ms })
            }
            Effect::MarkSent { gifts } => store(node, StoreCall::MarkSent { gifts }),
            Effect::MarkFailed { gift, applied } => store(node, StoreCall::MarkFailed { gift, applied }),
            Effect::Published { msg, gift, key } => Event::Published { node, msg: self.msg(&msg), gift, key },
            Effect::Received { msg, gift, key, receive_count, asked_us } => {
                let msg = self.msg(&msg);
                self.receive_asked.insert(self.events.len(), asked_us);
                Event::Received { node, msg, gift, key, receive_count, seen: true }
            }
            Effect::Deleted { msg } => Event::Deleted { node, msg: self.msg(&msg) },
            Effect::DeleteFailed { msg } => Event::DeleteFailed { node, msg: self.msg(&msg) },
            Effect::Visibility { msg, delay_ms, applied, .. } => {
                Event::Visibility { node, msg: self.msg(&msg), delay_ms, applied }
            }
            Effect::DispatchStarted { attempt, gift, key, receive_count, status } => {
                let attempt = self.attempt(&node, incarnation, attempt);
                Event::DispatchStarted { node, attempt, gift, key, receive_count, status }
            }
            Effect::Dispatched { attempt, gift, ok } => {
                let attempt = self.attempt(&node, incarnation, attempt);
                Event::Dispatched { node, attempt, gift, ok }
            }
            Effect::Handled { msg, receive_count, gift, outcome: o } => {
                Event::Handled { node, msg: Some(self.msg(&msg)), receive_count, gift, outcome: o }
            }
            Effect::Stopped => Event::Stopped { node },
        }
    }

    /// The history, in time order, with the end state folded in (see the module note);
    /// `end_us` is when the run reached quiescence.
    pub fn into_entries(mut self, end: &EndState, origin_us: i64, end_us: i64) -> Vec<Entry> {
        let told: std::collections::HashSet<(GiftId, String)> = self
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Store { call: StoreCall::RequestSend { gift, key, decision: Decision::Queued, .. }, .. } => {
                    Some((*gift, key.clone()))
                }
                _ => None,
            })
            .collect();
        for (gift, key, created_us) in &end.send_requests {
            if !told.contains(&(*gift, key.clone())) {
                let asked_ms = ms(*created_us, origin_us);
                let call =
                    StoreCall::RequestSend { gift: *gift, key: key.clone(), decision: Decision::Queued, asked_ms };
                self.events.push((*created_us, Event::Store { node: "db".into(), call, heard: false }));
            }
        }
        for (id, gift) in &end.dead_letters {
            let msg = self.msg(id);
            self.events.push((end_us, Event::DeadLettered { msg, gift: *gift }));
        }
        let mut events: Vec<(i64, Event, Option<i64>)> = std::mem::take(&mut self.events)
            .into_iter()
            .enumerate()
            .map(|(i, (at, e))| (at, e, self.receive_asked.get(&i).copied()))
            .collect();
        events.sort_by_key(|(at, _, _)| *at);
        receives_before_deletes(&mut events);
        self.events = events.into_iter().map(|(at, e, _)| (at, e)).collect();
        publish_before_receive(&mut self.events);
        receives_in_count_order(&mut self.events);
        let events = unseen_receives(self.events);
        events.into_iter().map(|(at, event)| Entry { at_ms: ms(at, origin_us), event }).collect()
    }
}

fn ms(at_us: i64, origin_us: i64) -> u64 {
    u64::try_from((at_us - origin_us) / 1_000).unwrap_or(0)
}

/// A message's publish line moved to just before its first receive when it came later.
fn publish_before_receive(events: &mut Vec<(i64, Event)>) {
    let mut first_receive: HashMap<MsgId, usize> = HashMap::new();
    let mut late: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, (_, e)) in events.iter().enumerate() {
        match e {
            Event::Received { msg, .. } => {
                first_receive.entry(*msg).or_insert(i);
            }
            Event::Published { msg, .. } => {
                if let Some(&r) = first_receive.get(msg) {
                    late.entry(r).or_default().push(i);
                }
            }
            _ => {}
        }
    }
    if late.is_empty() {
        return;
    }
    let moved: std::collections::HashSet<usize> = late.values().flatten().copied().collect();
    let mut slots: Vec<Option<(i64, Event)>> = std::mem::take(events).into_iter().map(Some).collect();
    for i in 0..slots.len() {
        if let Some(publishes) = late.get(&i) {
            let at = slots[i].as_ref().map_or(0, |(at, _)| *at);
            for &p in publishes {
                if let Some((_, e)) = slots[p].take() {
                    events.push((at, e));
                }
            }
        }
        if !moved.contains(&i) {
            if let Some(entry) = slots[i].take() {
                events.push(entry);
            }
        }
    }
}

/// A receive asked before a delete of its message was acknowledged, but answered after,
/// moved to just before that delete: SQS may have served it first.
fn receives_before_deletes(events: &mut Vec<(i64, Event, Option<i64>)>) {
    loop {
        let mut deletes: HashMap<MsgId, Vec<(usize, i64)>> = HashMap::new();
        let mut late = None;
        for (i, (at, e, asked)) in events.iter().enumerate() {
            match e {
                Event::Deleted { msg, .. } => deletes.entry(*msg).or_default().push((i, *at)),
                Event::Received { msg, .. } => {
                    let Some(asked) = asked else { continue };
                    let first = deletes.get(msg).and_then(|d| d.iter().find(|(_, acked)| acked > asked));
                    if let Some(&(j, _)) = first {
                        late = Some((i, j));
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some((from, to)) = late else { return };
        let (_, event, asked) = events.remove(from);
        let at = events[to].0;
        events.insert(to, (at, event, asked));
    }
}

/// A receive written after a receive of its message with a higher count moved to just
/// before the first such (its worker was paused between SQS's answer and the line).
fn receives_in_count_order(events: &mut Vec<(i64, Event)>) {
    loop {
        let mut highest: HashMap<MsgId, (u32, usize)> = HashMap::new();
        let mut late = None;
        for (i, (_, e)) in events.iter().enumerate() {
            let Event::Received { msg, receive_count, seen: true, .. } = e else { continue };
            match highest.get(msg) {
                Some(&(count, first)) if count > *receive_count => {
                    late = Some((i, first));
                    break;
                }
                Some(&(count, _)) if count == *receive_count => {}
                _ => {
                    highest.insert(*msg, (*receive_count, i));
                }
            }
        }
        let Some((from, to)) = late else { return };
        let (_, event) = events.remove(from);
        let at = events[to].0;
        events.insert(to, (at, event));
    }
}

/// Receives SQS counted but no worker saw, inserted before the receive that shows them.
fn unseen_receives(events: Vec<(i64, Event)>) -> Vec<(i64, Event)> {
    let mut counted: HashMap<MsgId, u32> = HashMap::new();
    let mut out = Vec::with_capacity(events.len());
    for (at, event) in events {
        if let Event::Received { msg, gift, key, receive_count, seen: true, .. } = &event {
            let before = counted.entry(*msg).or_default();
            while *before + 1 < *receive_count {
                *before += 1;
                let unseen = Event::Received {
                    node: "sqs".into(),
                    msg: *msg,
                    gift: *gift,
                    key: key.clone(),
                    receive_count: *before,
                    seen: false,
                };
                out.push((at, unseen));
            }
            *before = (*before).max(*receive_count);
        }
        out.push((at, event));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(msg: MsgId, count: u32) -> Event {
        let gift = GiftId::from_random(1);
        Event::Received { node: "worker-1".into(), msg, gift, key: "k".into(), receive_count: count, seen: true }
    }

    #[test]
    fn a_receive_count_gap_becomes_unseen_receives() {
        let out = unseen_receives(vec![(1, received(1, 1)), (2, received(1, 4))]);
        let seen: Vec<(u32, bool)> = out
            .iter()
            .map(|(_, e)| match e {
                Event::Received { receive_count, seen, .. } => (*receive_count, *seen),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(seen, vec![(1, true), (2, false), (3, false), (4, true)]);
    }

    #[test]
    fn a_receive_written_late_moves_before_the_higher_count() {
        let late = Event::Received {
            node: "worker-2".into(),
            msg: 1,
            gift: GiftId::from_random(1),
            key: "k".into(),
            receive_count: 1,
            seen: true,
        };
        let mut events = vec![(1, received(1, 2)), (2, received(1, 3)), (3, late.clone())];
        receives_in_count_order(&mut events);
        assert_eq!(events[0], (1, late));
        assert_eq!(events[1], (1, received(1, 2)));
    }

    #[test]
    fn a_receive_asked_before_a_delete_was_acknowledged_moves_before_it() {
        let deleted = Event::Deleted { node: "worker-2".into(), msg: 1 };
        let mut events = vec![(10, deleted.clone(), None), (11, received(1, 2), Some(5))];
        receives_before_deletes(&mut events);
        assert_eq!(events[0].1, received(1, 2));
        // Asked after the acknowledgement: it stays after, for the checker to judge.
        let mut events = vec![(10, deleted.clone(), None), (12, received(1, 2), Some(11))];
        receives_before_deletes(&mut events);
        assert_eq!(events[0].1, deleted);
    }

    #[test]
    fn a_late_publish_line_moves_before_the_first_receive() {
        let gift = GiftId::from_random(1);
        let publish = Event::Published { node: "api-1".into(), msg: 1, gift, key: "k".into() };
        let other = Event::Published { node: "api-1".into(), msg: 2, gift, key: "j".into() };
        let mut events = vec![
            (1, received(2, 1)),
            (2, received(1, 1)),
            (3, received(1, 2)),
            (4, publish.clone()),
            (5, other.clone()),
        ];
        publish_before_receive(&mut events);
        let expected = vec![(1, other), (1, received(2, 1)), (2, publish), (2, received(1, 1)), (3, received(1, 2))];
        assert_eq!(events, expected);
    }

    #[test]
    fn a_renewal_line_gives_the_ask_and_the_answer() {
        let path = std::env::temp_dir().join(format!("gift-stack-renewal-{}.jsonl", std::process::id()));
        let effect = Effect::Visibility { msg: "sqs-1".into(), delay_ms: 30_000, applied: true, asked_us: 1_000 };
        let line = Line { at_us: 9_000, node: "worker-1".into(), effect };
        std::fs::write(&path, serde_json::to_string(&line).unwrap()).unwrap();
        let mut b = Builder::default();
        b.read_effects(&path, 0, 0).unwrap();
        std::fs::remove_file(&path).unwrap();
        let node = "worker-1".to_owned();
        let asked = Event::VisibilityAsked { node: node.clone(), msg: 1, delay_ms: 30_000 };
        let answered = Event::Visibility { node, msg: 1, delay_ms: 30_000, applied: true };
        assert_eq!(b.events, vec![(1_000, asked), (9_000, answered)]);
    }
}
