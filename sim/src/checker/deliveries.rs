//! What a worker reports for each delivery matches what it did with the message: an
//! outcome that says the message is done with (Sent, LostRace, Duplicate) comes after the
//! worker deleted it.

use std::collections::BTreeMap;

use super::{Checker, End, Facts, Invariant, Out, Report};
use crate::history::{Entry, Event, MsgId, Outcome};

#[derive(Default)]
pub struct Deliveries {
    /// Deliveries received and not yet handled: (node, message) → (gift, deleted since).
    in_hand: BTreeMap<(String, MsgId), (gift_core::domain::GiftId, bool)>,
}

impl Checker for Deliveries {
    fn observe(&mut self, _: usize, entry: &Entry, _: &Facts, out: &mut Out) {
        match &entry.event {
            Event::Received { node, msg, gift, seen: true, .. } => {
                self.in_hand.insert((node.clone(), *msg), (*gift, false));
            }
            Event::Deleted { node, msg } => {
                if let Some((_, deleted)) = self.in_hand.get_mut(&(node.clone(), *msg)) {
                    *deleted = true;
                }
            }
            Event::Handled { node, msg: Some(msg), outcome, .. } => {
                let Some((gift, deleted)) = self.in_hand.remove(&(node.clone(), *msg)) else { return };
                let done = matches!(outcome, Outcome::Sent | Outcome::LostRace | Outcome::Duplicate);
                if done && !deleted {
                    out.add(
                        Invariant::OutcomeMisreported,
                        Some(gift),
                        format!("{node} reported m{msg} {outcome:?} at {} ms without deleting it", entry.at_ms),
                    );
                }
            }
            Event::Killed { node } => self.in_hand.retain(|(n, _), _| n != node),
            _ => {}
        }
    }

    fn finish(&mut self, _: &End<'_>, _: &Facts, _: &mut Out, _: &mut Report) {}
}
