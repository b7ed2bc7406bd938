//! Liveness: after healing, every accepted send finishes, nothing stays QUEUED, every
//! client hears a final answer — and all of it within the bound the world implies
//! (stale deadline, retry window, slack), measured as simulated time from healing to the
//! last finishing write or answer.

use std::collections::BTreeSet;

use gift_core::domain::{GiftId, Status};

use super::{Checker, End, Facts, Invariant, Out, Report};
use crate::history::{Entry, Event, Phase, StoreCall};

#[derive(Default)]
pub struct Liveness {
    accepted: BTreeSet<GiftId>,
    healed_at: Option<u64>,
    /// The latest finishing write or client answer.
    last_progress: u64,
}

impl Checker for Liveness {
    fn observe(&mut self, _: usize, entry: &Entry, _: &Facts, out: &mut Out) {
        match &entry.event {
            Event::Phase { phase: Phase::Healed } => self.healed_at = Some(entry.at_ms),
            Event::Phase { phase: Phase::ClientsUnfinished } => {
                out.add(Invariant::Stuck, None, "a client never got a final answer to its requests".into())
            }
            Event::SendAnswered { gift, code, .. } => {
                if (200..300).contains(code) {
                    self.accepted.insert(*gift);
                }
                self.last_progress = entry.at_ms;
            }
            Event::Created { .. } => self.last_progress = entry.at_ms,
            Event::Store { call: StoreCall::MarkSent { gifts }, .. } if gifts.iter().any(|(_, won)| *won) => {
                self.last_progress = entry.at_ms
            }
            Event::Store { call: StoreCall::MarkFailed { applied: true, .. }, .. } => self.last_progress = entry.at_ms,
            _ => {}
        }
    }

    fn finish(&mut self, end: &End<'_>, _: &Facts, out: &mut Out, report: &mut Report) {
        let Some(finals) = end.finals else { return };
        for gift in &self.accepted {
            match finals.get(gift) {
                Some(s) if s.is_terminal() => {}
                other => out.add(Invariant::Stuck, Some(*gift), format!("accepted send ended {other:?}")),
            }
        }
        for (gift, status) in finals {
            if *status == Status::Queued && !self.accepted.contains(gift) {
                out.add(Invariant::Stuck, Some(*gift), "QUEUED at the end".into());
            }
        }
        if let Some(healed) = self.healed_at {
            let took = self.last_progress.saturating_sub(healed);
            report.heal_ms = Some(took);
            if took > end.expect.heal_bound_ms {
                out.add(
                    Invariant::SlowToHeal,
                    None,
                    format!("quiesced {took} ms after healing; this world allows {} ms", end.expect.heal_bound_ms),
                );
            }
        }
    }
}
