//! Graceful stops (a worker's SIGTERM): the loop returns within the nemesis' bound, and
//! every delivery the worker received — including those of the receive in progress when
//! the stop came — was handled before it returned.

use std::collections::{BTreeMap, BTreeSet};

use gift_core::domain::GiftId;

use super::{Checker, End, Facts, Invariant, Out, Report};
use crate::history::{Entry, Event};

#[derive(Default)]
pub struct Stops {
    /// Deliveries received and not yet handled, per (node, gift).
    in_hand: BTreeMap<(String, GiftId), u32>,
    stopping: BTreeSet<String>,
}

impl Checker for Stops {
    fn observe(&mut self, _: usize, entry: &Entry, _: &Facts, out: &mut Out) {
        match &entry.event {
            Event::Received { node, gift, seen: true, .. } => {
                *self.in_hand.entry((node.clone(), *gift)).or_default() += 1;
            }
            Event::Handled { node, gift: Some(gift), .. } => {
                if let Some(n) = self.in_hand.get_mut(&(node.clone(), *gift)) {
                    *n = n.saturating_sub(1);
                }
            }
            Event::Stopping { node } => {
                self.stopping.insert(node.clone());
            }
            Event::Stopped { node } => {
                self.stopping.remove(node);
                let left: u32 = self.in_hand.iter().filter(|((n, _), _)| n == node).map(|(_, c)| c).sum();
                if left > 0 {
                    out.add(
                        Invariant::StopIncomplete,
                        None,
                        format!("{node} stopped at {} ms with {left} received deliveries unhandled", entry.at_ms),
                    );
                }
            }
            Event::Killed { node } => {
                if self.stopping.remove(node) {
                    out.add(
                        Invariant::StopIncomplete,
                        None,
                        format!("{node} had not stopped when killed at {} ms", entry.at_ms),
                    );
                }
                self.in_hand.retain(|(n, _), _| n != node);
            }
            _ => {}
        }
    }

    fn finish(&mut self, _: &End<'_>, _: &Facts, _: &mut Out, _: &mut Report) {}
}
