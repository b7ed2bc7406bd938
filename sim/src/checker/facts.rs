//! What the history has established so far, shared by every checker: the store's answers
//! (which sends it accepted, which gifts it finished), each node's latest read of each
//! gift, the receives each node saw, and which messages are still on the queue.

use std::collections::{BTreeMap, BTreeSet};

use gift_core::domain::{GiftId, Status};

use super::Expect;
use crate::history::{Decision, Entry, Event, MsgId, StoreCall};

/// A node's read of a gift.
#[derive(Debug, Clone, Copy)]
pub struct Read {
    pub index: usize,
    pub status: Option<Status>,
    /// When it was asked, for a read that is not an instant.
    pub asked_ms: Option<u64>,
}

pub struct Facts {
    pub expect: Expect,
    /// (gift, key) the store answered Queued, with when the send was asked.
    pub queued: BTreeMap<(GiftId, String), u64>,
    /// (gift, key) the store answered Queued or Replay.
    pub committed: BTreeSet<(GiftId, String)>,
    /// The index and time of the first SENT write the store applied, per gift.
    pub sent_at: BTreeMap<GiftId, (usize, u64)>,
    /// Gifts the store moved to FAILED.
    pub failed: BTreeSet<GiftId>,
    /// Gifts some read or refused send saw SENT or FAILED, or whose conditional SENT or
    /// FAILED write found them no longer QUEUED: finished by then, even when the write that
    /// finished them answers later, or its answer was lost (a real write is an interval).
    pub seen_finished: BTreeSet<GiftId>,
    /// (node, gift) → that node's latest read of the gift.
    pub reads: BTreeMap<(String, GiftId), Read>,
    /// (node, gift, key, receive count) of the receives a node has in hand (seen, not yet
    /// handled, node not killed since), with their messages.
    pub seen: BTreeMap<(String, GiftId, String, u32), BTreeSet<MsgId>>,
    /// (node, message) → the index of that node's latest seen receive of it.
    pub received_at: BTreeMap<(String, MsgId), usize>,
    /// Each message's gift.
    pub messages: BTreeMap<MsgId, GiftId>,
    /// How many times each message was received, seen or not: counted here, not read from
    /// the queue's own receive count.
    pub receives: BTreeMap<MsgId, u32>,
    /// Messages whose delete was acknowledged.
    pub deleted: BTreeSet<MsgId>,
    /// Messages neither deleted nor dead-lettered, per gift.
    pub live: BTreeMap<GiftId, BTreeSet<MsgId>>,
}

impl Facts {
    pub fn new(expect: Expect) -> Self {
        Self {
            expect,
            queued: BTreeMap::new(),
            committed: BTreeSet::new(),
            sent_at: BTreeMap::new(),
            failed: BTreeSet::new(),
            seen_finished: BTreeSet::new(),
            reads: BTreeMap::new(),
            seen: BTreeMap::new(),
            received_at: BTreeMap::new(),
            messages: BTreeMap::new(),
            deleted: BTreeSet::new(),
            receives: BTreeMap::new(),
            live: BTreeMap::new(),
        }
    }

    pub fn is_finished(&self, gift: &GiftId) -> bool {
        self.sent_at.contains_key(gift) || self.failed.contains(gift) || self.seen_finished.contains(gift)
    }

    pub fn learn(&mut self, index: usize, entry: &Entry) {
        match &entry.event {
            Event::Store { node, call, .. } => self.learn_store(index, entry.at_ms, node, call),
            Event::Received { msg, seen: false, .. } => *self.receives.entry(*msg).or_default() += 1,
            Event::Received { node, msg, gift, key, receive_count, seen: true } => {
                *self.receives.entry(*msg).or_default() += 1;
                self.received_at.insert((node.clone(), *msg), index);
                self.seen.entry((node.clone(), *gift, key.clone(), *receive_count)).or_default().insert(*msg);
            }
            Event::Handled { node, msg: Some(msg), gift: Some(gift), receive_count, .. } => {
                for ((n, g, _, count), msgs) in self.seen.iter_mut() {
                    if n == node && g == gift && count == receive_count {
                        msgs.remove(msg);
                    }
                }
            }
            Event::Killed { node } => self.seen.retain(|(n, _, _, _), _| n != node),
            Event::Published { msg, gift, .. } => {
                self.messages.insert(*msg, *gift);
                self.live.entry(*gift).or_default().insert(*msg);
            }
            Event::Deleted { msg, .. } | Event::DeadLettered { msg, .. } => {
                if matches!(entry.event, Event::Deleted { .. }) {
                    self.deleted.insert(*msg);
                }
                if let Some(gift) = self.messages.get(msg) {
                    self.live.entry(*gift).or_default().remove(msg);
                }
            }
            _ => {}
        }
    }

    fn learn_store(&mut self, index: usize, at_ms: u64, node: &str, call: &StoreCall) {
        match call {
            StoreCall::Read { gifts, asked_ms } => {
                for (gift, status) in gifts {
                    if status.is_some_and(Status::is_terminal) {
                        self.seen_finished.insert(*gift);
                    }
                    let read = Read { index, status: *status, asked_ms: *asked_ms };
                    self.reads.insert((node.to_owned(), *gift), read);
                }
            }
            StoreCall::RequestSend { gift, decision: Decision::Conflict(s), .. } if s.is_terminal() => {
                self.seen_finished.insert(*gift);
            }
            StoreCall::RequestSend { gift, key, decision, asked_ms } => {
                if *decision == Decision::Queued {
                    self.queued.insert((*gift, key.clone()), *asked_ms);
                }
                if matches!(decision, Decision::Queued | Decision::Replay) {
                    self.committed.insert((*gift, key.clone()));
                }
            }
            StoreCall::MarkSent { gifts } => {
                for (gift, won) in gifts {
                    if *won {
                        self.sent_at.entry(*gift).or_insert((index, at_ms));
                    } else {
                        self.seen_finished.insert(*gift);
                    }
                }
            }
            StoreCall::MarkFailed { gift, applied: true } => {
                self.failed.insert(*gift);
            }
            StoreCall::MarkFailed { gift, applied: false } => {
                self.seen_finished.insert(*gift);
            }
            _ => {}
        }
    }
}
