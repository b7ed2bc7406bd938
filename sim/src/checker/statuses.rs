//! Every status anyone observed — a read's answer, a send decision, an applied write, the
//! final state — follows the state machine from the one observed before it. This reads
//! answers, so a store that moves a finished gift again shows up in whoever reads it next.

use std::collections::BTreeMap;

use gift_core::domain::{GiftId, Status};

use super::{Checker, End, Facts, Invariant, Out, Report};
use crate::history::{Decision, Entry, Event, StoreCall};

#[derive(Default)]
pub struct Statuses {
    last: BTreeMap<GiftId, (Status, u64)>,
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
    fn saw(&mut self, gift: GiftId, status: Status, at_ms: u64, what: &str, out: &mut Out) {
        if let Some((before, then)) = self.last.get(&gift) {
            if !reachable(*before, status) {
                out.add(
                    Invariant::IllegalTransition,
                    Some(gift),
                    format!("{before} at {then} ms, then {status} ({what}) at {at_ms} ms"),
                );
            }
        }
        self.last.insert(gift, (status, at_ms));
    }
}

impl Checker for Statuses {
    fn observe(&mut self, _: usize, entry: &Entry, _: &Facts, out: &mut Out) {
        let Event::Store { node, call, .. } = &entry.event else { return };
        let at = entry.at_ms;
        match call {
            StoreCall::Read { gifts } => {
                for (gift, status) in gifts {
                    if let Some(s) = status {
                        self.saw(*gift, *s, at, &format!("read by {node}"), out);
                    }
                }
            }
            StoreCall::RequestSend { gift, decision: Decision::Queued, .. } => {
                self.saw(*gift, Status::Queued, at, "queued", out)
            }
            StoreCall::RequestSend { gift, decision: Decision::Conflict(s), .. } => {
                self.saw(*gift, *s, at, "send conflict", out)
            }
            StoreCall::MarkSent { gifts } => {
                for (gift, won) in gifts {
                    if *won {
                        self.saw(*gift, Status::Sent, at, &format!("written by {node}"), out);
                    }
                }
            }
            StoreCall::MarkFailed { gift, applied: true } => {
                self.saw(*gift, Status::Failed, at, &format!("written by {node}"), out)
            }
            _ => {}
        }
    }

    fn finish(&mut self, end: &End<'_>, _: &Facts, out: &mut Out, _: &mut Report) {
        for (gift, status) in end.finals.into_iter().flatten() {
            let at = self.last.get(gift).map_or(0, |(_, t)| *t);
            self.saw(*gift, *status, at, "final", out);
        }
    }
}
