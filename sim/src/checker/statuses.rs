//! Every status anyone observed — a read's answer, a send decision, an applied write, the
//! final state — follows the state machine from the one observed before it. This reads
//! answers, so a store that moves a finished gift again shows up in whoever reads it next.
//!
//! A real read's answer held somewhere between when it was asked and when it was answered
//! (the entry's time), so it contradicts only what had been observed before it was asked;
//! the simulation's reads are instants and contradict anything observed before them.

use std::collections::BTreeMap;

use gift_core::domain::{GiftId, Status};

use super::{Checker, End, Facts, Invariant, Out, Report};
use crate::history::{Decision, Entry, Event, StoreCall};

#[derive(Default)]
pub struct Statuses {
    /// Per gift, each status observed with the earliest time it was observed.
    seen: BTreeMap<GiftId, BTreeMap<Status, u64>>,
}

/// Whether the state machine (written out here, independently of `Status::can_become`)
/// reaches `to` from `from` in zero or more steps.
fn reachable(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (Created, _) | (Queued, Queued) | (Queued, Sent) | (Queued, Failed) | (Sent, Sent) | (Failed, Failed)
    )
}

impl Statuses {
    /// `asked_ms`: when an observation that is not an instant began.
    fn saw(&mut self, gift: GiftId, status: Status, at_ms: u64, asked_ms: Option<u64>, what: &str, out: &mut Out) {
        let seen = self.seen.entry(gift).or_default();
        let contradicted = seen
            .iter()
            .find(|(before, then)| asked_ms.is_none_or(|asked| **then < asked) && !reachable(**before, status));
        if let Some((before, then)) = contradicted {
            out.add(
                Invariant::IllegalTransition,
                Some(gift),
                format!("{before} at {then} ms, then {status} ({what}) at {at_ms} ms"),
            );
        }
        seen.entry(status).or_insert(at_ms);
    }
}

impl Checker for Statuses {
    fn observe(&mut self, _: usize, entry: &Entry, _: &Facts, out: &mut Out) {
        let Event::Store { node, call, .. } = &entry.event else { return };
        let at = entry.at_ms;
        match call {
            StoreCall::Read { gifts, asked_ms } => {
                for (gift, status) in gifts {
                    if let Some(s) = status {
                        self.saw(*gift, *s, at, *asked_ms, &format!("read by {node}"), out);
                    }
                }
            }
            StoreCall::RequestSend { gift, decision: Decision::Queued, .. } => {
                self.saw(*gift, Status::Queued, at, None, "queued", out)
            }
            // The status a refused send saw held when its transaction ran, after it was asked.
            StoreCall::RequestSend { gift, decision: Decision::Conflict(s), asked_ms, .. } => {
                self.saw(*gift, *s, at, Some(*asked_ms), "send conflict", out)
            }
            StoreCall::MarkSent { gifts } => {
                for (gift, won) in gifts {
                    if *won {
                        self.saw(*gift, Status::Sent, at, None, &format!("written by {node}"), out);
                    }
                }
            }
            StoreCall::MarkFailed { gift, applied: true } => {
                self.saw(*gift, Status::Failed, at, None, &format!("written by {node}"), out)
            }
            _ => {}
        }
    }

    fn finish(&mut self, end: &End<'_>, _: &Facts, out: &mut Out, _: &mut Report) {
        for (gift, status) in end.finals.into_iter().flatten() {
            let at = self.seen.get(gift).and_then(|s| s.values().max().copied()).unwrap_or(0);
            self.saw(*gift, *status, at, None, "final", out);
        }
    }
}
