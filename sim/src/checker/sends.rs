//! Pseudo-sends and the outcomes workers write for them. A pseudo-send must come from a
//! message its worker received (with that message's own receive count), of a gift its
//! worker read as QUEUED; it must not start once the gift is SENT, nor twice in one batch;
//! a SENT write needs a successful attempt of the writer's own, a FAILED write a failed
//! attempt on a final receive; and no gift may be FAILED alongside a successful send.
//!
//! Three cases of FAILED alongside a success are counted rather than failed, because no
//! worker could have known of the success: it was lost with its killed worker before
//! being recorded; it ran on another message of the gift (a duplicate) at the same time
//! as the failing one (the store has no per-gift claim; docs/simulation.md); or the queue
//! handed its message on while the worker's timely renewal was still in flight.

use std::collections::{BTreeMap, BTreeSet};

use gift_core::domain::{GiftId, Status};

use super::facts::Read;
use super::{Checker, End, Facts, Invariant, Out, Report};
use crate::history::{Entry, Event, MsgId, StoreCall};

struct Started {
    node: String,
    gift: GiftId,
    /// The messages it may have come from: those its worker received with the claimed
    /// receive count (two duplicates received together can share one).
    msgs: BTreeSet<MsgId>,
    /// The index of the read the attempt followed: attempts sharing it share a batch.
    read: Option<usize>,
    after_sent: bool,
    final_receive: bool,
    /// The receive count its worker claimed.
    receive: u32,
}

/// A successful pseudo-send.
struct Success {
    node: String,
    read: Option<usize>,
    msgs: BTreeSet<MsgId>,
    /// Its worker was killed before recording it.
    lost: bool,
    /// The receive it ran on, and when it ended.
    receive: u32,
    ended_ms: u64,
}

/// Why a FAILED alongside a success is not a violation.
enum Excuse {
    LostToCrash,
    DuplicateRaced,
    RenewalLate,
}

/// Who holds a message now, by the queue's history: the node and receive count of its last
/// receive, until when, and the renewals (asks for a full visibility timeout) that node
/// asked for in time and has not had answered.
struct Hold {
    node: String,
    receive: u32,
    until_ms: u64,
    timely_asks: usize,
}

#[derive(Default)]
pub struct Sends {
    started: BTreeMap<u64, Started>,
    ok: BTreeMap<GiftId, Vec<Success>>,
    /// Successes and final failures not yet recorded by a write of their node:
    /// (node, gift) → indices into `ok[gift]`, or the failed attempt's message.
    pending_ok: BTreeMap<(String, GiftId), Vec<usize>>,
    pending_final_failure: BTreeMap<(String, GiftId), Vec<BTreeSet<MsgId>>>,
    /// The node and message whose final failure recorded FAILED, per gift.
    failed_by: BTreeMap<GiftId, (String, BTreeSet<MsgId>)>,
    reported: BTreeSet<GiftId>,
    lost_to_crash: BTreeSet<GiftId>,
    duplicate_raced: BTreeSet<GiftId>,
    late_renewal: BTreeSet<GiftId>,
    holds: BTreeMap<MsgId, Hold>,
    /// (node, message, receive count) handed on by the queue while that receive's timely
    /// renewal was still unanswered → until when the holder had it.
    renewal_outrun: BTreeMap<(String, MsgId, u32), u64>,
    extra_sends: u64,
}

impl Sends {
    fn failed_despite_success(&mut self, gift: GiftId, detail: String, out: &mut Out) {
        if self.reported.insert(gift) {
            out.add(Invariant::FailedDespiteSuccess, Some(gift), detail);
        }
    }

    /// Why `success` beside a FAILED decided by `failed_by` (node, message) is excused:
    /// lost with its worker; on another message in another worker (the worker holding
    /// both, in one batch or several, can and must keep them apart); or on a message the queue
    /// handed to the deciding worker while the succeeding receive's renewal of it, asked with
    /// a third of the visibility still to run, was unanswered, the send having ended inside
    /// the lease (a queue slower than any lease allows for). A heartbeat that never asks, or
    /// asks too late, earns no excuse; nor does another receive's renewal.
    fn excuse(&self, success: &Success, failed_by: &(String, BTreeSet<MsgId>)) -> Option<Excuse> {
        if success.lost {
            Some(Excuse::LostToCrash)
        } else if success.node == failed_by.0 {
            None
        } else if success.msgs.is_disjoint(&failed_by.1) {
            Some(Excuse::DuplicateRaced)
        } else if success.msgs.iter().any(|m| {
            // The send must have ended inside the lease: one ending after it is the lease's bug.
            let held = self.renewal_outrun.get(&(success.node.clone(), *m, success.receive));
            held.is_some_and(|&until| success.ended_ms <= until)
        }) {
            Some(Excuse::RenewalLate)
        } else {
            None
        }
    }

    /// Follows each message's holder and its renewals, from the queue's side.
    fn track_hold(&mut self, entry: &Entry, facts: &Facts) {
        let visibility = facts.expect.visibility_timeout_ms;
        match &entry.event {
            Event::Received { node, msg, receive_count, .. } => {
                if let Some(old) = self.holds.get(msg).filter(|h| h.node != *node && h.timely_asks > 0) {
                    self.renewal_outrun.insert((old.node.clone(), *msg, old.receive), old.until_ms);
                }
                let hold = Hold {
                    node: node.clone(),
                    receive: *receive_count,
                    until_ms: entry.at_ms + visibility,
                    timely_asks: 0,
                };
                self.holds.insert(*msg, hold);
            }
            Event::VisibilityAsked { node, msg, delay_ms } if *delay_ms == visibility => {
                if let Some(h) = self.holds.get_mut(msg).filter(|h| h.node == *node) {
                    if entry.at_ms + visibility / 3 <= h.until_ms {
                        h.timely_asks += 1;
                    }
                }
            }
            // A killed node's calls in flight are gone with it.
            Event::Killed { node } => {
                for h in self.holds.values_mut().filter(|h| h.node == *node) {
                    h.timely_asks = 0;
                }
            }
            Event::Visibility { node, msg, delay_ms, applied } => {
                if let Some(h) = self.holds.get_mut(msg).filter(|h| h.node == *node) {
                    h.timely_asks = h.timely_asks.saturating_sub(1);
                    if *applied {
                        h.until_ms = entry.at_ms + delay_ms;
                    }
                }
            }
            _ => {}
        }
    }

    fn excused(&mut self, gift: GiftId, excuse: Excuse) {
        match excuse {
            Excuse::LostToCrash => self.lost_to_crash.insert(gift),
            Excuse::DuplicateRaced => self.duplicate_raced.insert(gift),
            Excuse::RenewalLate => self.late_renewal.insert(gift),
        };
    }

    fn started(&mut self, entry: &Entry, facts: &Facts, out: &mut Out) {
        let Event::DispatchStarted { node, attempt, gift, key, receive_count, status } = &entry.event else { return };
        let gift = *gift;
        let msgs = facts.seen.get(&(node.clone(), gift, key.clone(), *receive_count)).cloned().unwrap_or_default();
        if msgs.is_empty() {
            out.add(
                Invariant::PseudoSendWithoutMessage,
                Some(gift),
                format!(
                    "{node} at {} ms: no message with key={key} on receive {receive_count} reached it",
                    entry.at_ms
                ),
            );
        }
        let read = facts.reads.get(&(node.clone(), gift)).copied();
        if *status != Status::Queued || read.map(|r| r.status) != Some(Some(Status::Queued)) {
            out.add(
                Invariant::PseudoSendOfFinishedGift,
                Some(gift),
                format!("{node} at {} ms: handed {status}, its last read said {read:?}", entry.at_ms),
            );
        }
        // A pseudo-send is a second send when the gift was SENT before the read it followed:
        // a SENT landing between that read and the start is the at-least-once race (counted
        // in `extra_sends`), which real processes hit and no worker can close. A read older
        // than the message it acts on did not consult the store for it, and earns nothing.
        // A real read is an interval: SENT before it was asked is what counts.
        let fresh_read = read.filter(|r| {
            msgs.iter().all(|m| facts.received_at.get(&(node.clone(), *m)).is_some_and(|&got| got < r.index))
        });
        let after_sent = match (facts.sent_at.get(&gift), fresh_read) {
            (Some(&(_, sent_ms)), Some(Read { asked_ms: Some(asked), .. })) => sent_ms < asked,
            (Some(&(sent, _)), Some(read)) => sent < read.index,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let started = Started {
            node: node.clone(),
            gift,
            msgs,
            read: read.map(|r| r.index),
            after_sent,
            final_receive: *receive_count >= facts.expect.max_receives,
            receive: *receive_count,
        };
        self.started.insert(*attempt, started);
    }

    fn finished(&mut self, entry: &Entry, facts: &Facts, out: &mut Out) {
        let Event::Dispatched { attempt, ok, .. } = &entry.event else { return };
        let Some(s) = self.started.remove(attempt) else { return };
        let (node, gift) = (s.node.clone(), s.gift);
        let rate = facts.expect.send_failure_rate;
        if (rate >= 1.0 && *ok) || (rate <= 0.0 && !ok) {
            out.add(Invariant::RateIgnored, Some(gift), format!("{node}: pseudo-send ok={ok} at failure rate {rate}"));
        }
        if !ok {
            if s.final_receive {
                self.pending_final_failure.entry((node, gift)).or_default().push(s.msgs);
            }
            return;
        }
        let earlier = self.ok.entry(gift).or_default();
        if s.after_sent {
            out.add(
                Invariant::SentTwice,
                Some(gift),
                format!("{node} pseudo-sent at {} ms a gift already SENT", entry.at_ms),
            );
        } else if earlier.iter().any(|e| e.node == node && e.read == s.read && s.read.is_some()) {
            out.add(Invariant::SentTwice, Some(gift), format!("{node} pseudo-sent it twice in one batch"));
        } else if !earlier.is_empty() {
            self.extra_sends += 1;
        }
        let (receive, ended_ms) = (s.receive, entry.at_ms);
        earlier.push(Success {
            node: node.clone(),
            read: s.read,
            msgs: s.msgs.clone(),
            lost: false,
            receive,
            ended_ms,
        });
        let index = earlier.len() - 1;
        self.pending_ok.entry((node, gift)).or_default().push(index);
        if facts.failed.contains(&gift) {
            let failed_by = self.failed_by.get(&gift).cloned().unwrap_or_default();
            let success = Success { node: s.node.clone(), read: None, msgs: s.msgs, lost: false, receive, ended_ms };
            match self.excuse(&success, &failed_by) {
                Some(excuse) => self.excused(gift, excuse),
                None => self.failed_despite_success(
                    gift,
                    format!("a pseudo-send succeeded at {} ms after FAILED", entry.at_ms),
                    out,
                ),
            }
        }
    }

    /// A SENT write whose answer was lost leaves its success pending: the worker asks again.
    fn wrote(&mut self, entry: &Entry, facts: &Facts, node: &str, call: &StoreCall, heard: bool, out: &mut Out) {
        match call {
            StoreCall::MarkSent { gifts } => {
                for (gift, _) in gifts {
                    let pending = self.pending_ok.get_mut(&(node.to_owned(), *gift)).filter(|p| !p.is_empty());
                    match pending {
                        Some(p) if heard => {
                            p.remove(0);
                        }
                        Some(_) => {}
                        None => out.add(
                            Invariant::SentWithoutSuccess,
                            Some(*gift),
                            format!("{node} asked for SENT at {} ms with no successful attempt", entry.at_ms),
                        ),
                    }
                }
            }
            StoreCall::MarkFailed { gift, applied } => {
                let decider = self.pending_final_failure.get_mut(&(node.to_owned(), *gift)).filter(|p| !p.is_empty());
                let Some(decider) = decider.map(|p| p.remove(0)) else {
                    out.add(
                        Invariant::FailedTooEarly,
                        Some(*gift),
                        format!(
                            "{node} asked for FAILED at {} ms without a failed attempt on a final receive",
                            entry.at_ms
                        ),
                    );
                    return;
                };
                let receives = decider.iter().map(|m| facts.receives.get(m).copied().unwrap_or(0)).max().unwrap_or(0);
                if receives < facts.expect.max_receives {
                    out.add(
                        Invariant::FailedTooEarly,
                        Some(*gift),
                        format!(
                            "{node} asked for FAILED at {} ms; its message was received {receives} times",
                            entry.at_ms
                        ),
                    );
                }
                if *applied {
                    let decider = (node.to_owned(), decider);
                    self.check_failed(*gift, &decider, entry.at_ms, out);
                    self.failed_by.insert(*gift, decider);
                }
            }
            _ => {}
        }
    }

    fn check_failed(&mut self, gift: GiftId, decider: &(String, BTreeSet<MsgId>), at_ms: u64, out: &mut Out) {
        let successes = self.ok.remove(&gift).unwrap_or_default();
        let mut excuses = Vec::new();
        for success in &successes {
            match self.excuse(success, decider) {
                Some(excuse) => excuses.push(excuse),
                None => self.failed_despite_success(
                    gift,
                    format!("FAILED at {at_ms} ms after a successful pseudo-send"),
                    out,
                ),
            }
        }
        for excuse in excuses {
            self.excused(gift, excuse);
        }
        self.ok.insert(gift, successes);
    }
}

impl Checker for Sends {
    fn observe(&mut self, _: usize, entry: &Entry, facts: &Facts, out: &mut Out) {
        self.track_hold(entry, facts);
        match &entry.event {
            Event::DispatchStarted { .. } => self.started(entry, facts, out),
            Event::Dispatched { .. } => self.finished(entry, facts, out),
            Event::Store { node, call, heard } => self.wrote(entry, facts, node, call, *heard, out),
            // The message whose final failure recorded FAILED is left for the dead-letter
            // queue; when two duplicates shared that receive count, one of them must be.
            Event::Deleted { node, msg } => {
                let mut emptied = None;
                for (gift, (_, msgs)) in self.failed_by.iter_mut() {
                    if msgs.remove(msg) && msgs.is_empty() {
                        emptied = Some(*gift);
                    }
                }
                if let Some(gift) = emptied {
                    out.add(
                        Invariant::FailedMessageDeleted,
                        Some(gift),
                        format!("{node} deleted m{msg}, whose final failure recorded FAILED, at {} ms", entry.at_ms),
                    );
                }
            }
            // A killed node's attempts are never recorded; a restarted one starts afresh.
            Event::Killed { node } => {
                for ((n, gift), pending) in &self.pending_ok {
                    if n == node {
                        for &i in pending {
                            if let Some(s) = self.ok.get_mut(gift).and_then(|v| v.get_mut(i)) {
                                s.lost = true;
                            }
                        }
                    }
                }
                self.pending_ok.retain(|(n, _), _| n != node);
                self.pending_final_failure.retain(|(n, _), _| n != node);
            }
            _ => {}
        }
    }

    fn finish(&mut self, end: &End<'_>, _: &Facts, out: &mut Out, report: &mut Report) {
        for (gift, status) in end.finals.into_iter().flatten() {
            let succeeded = self.ok.get(gift).is_some_and(|v| !v.is_empty());
            match status {
                Status::Sent if !succeeded => {
                    out.add(Invariant::SentWithoutSuccess, Some(*gift), "SENT at the end, never pseudo-sent".into())
                }
                Status::Failed if succeeded && !self.failed_by.contains_key(gift) => {
                    self.failed_despite_success(*gift, "FAILED at the end after a successful pseudo-send".into(), out)
                }
                _ => {}
            }
        }
        report.extra_sends = self.extra_sends;
        report.failed_after_lost_success = self.lost_to_crash.len() as u64;
        report.failed_beside_duplicate = self.duplicate_raced.len() as u64;
        report.failed_after_late_renewal = self.late_renewal.len() as u64;
    }
}
