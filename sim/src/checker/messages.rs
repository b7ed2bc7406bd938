//! The queue's side: a message is published only for a (gift, key) the store answered
//! Queued — by a relay only once the publish grace has passed —, and is never deleted while
//! its gift is unfinished and no other message of the gift is left (a lost message, healed
//! only at its outbox row's stale deadline much later).

use super::{Checker, End, Facts, Invariant, Out, Report};
use crate::history::{Entry, Event};
use crate::kinds::NodeKind;

#[derive(Default)]
pub struct Messages;

impl Checker for Messages {
    fn observe(&mut self, _: usize, entry: &Entry, facts: &Facts, out: &mut Out) {
        match &entry.event {
            Event::Published { node, msg, gift, key } => match facts.queued.get(&(*gift, key.clone())) {
                None => out.add(
                    Invariant::PublishedWithoutAcceptance,
                    Some(*gift),
                    format!("{node} published m{msg} key={key} at {} ms, never answered Queued", entry.at_ms),
                ),
                Some(asked)
                    if NodeKind::of(node) == Some(NodeKind::Relay)
                        && entry.at_ms < asked + facts.expect.publish_grace_ms =>
                {
                    out.add(
                        Invariant::RelayedEarly,
                        Some(*gift),
                        format!("{node} published m{msg} at {} ms, the send asked at {asked} ms", entry.at_ms),
                    )
                }
                Some(_) => {}
            },
            Event::Received { node, msg, gift, .. } if facts.deleted.contains(msg) => out.add(
                Invariant::ReceivedAfterDelete,
                Some(*gift),
                format!("{node} received m{msg} at {} ms after its delete was acknowledged", entry.at_ms),
            ),
            Event::Deleted { node, msg } => {
                let Some(gift) = facts.messages.get(msg) else { return };
                let others = facts.live.get(gift).map_or(0, |live| live.iter().filter(|m| *m != msg).count());
                let live = facts.live.get(gift).is_some_and(|l| l.contains(msg));
                if live && others == 0 && !facts.is_finished(gift) {
                    out.add(
                        Invariant::MessageLost,
                        Some(*gift),
                        format!(
                            "{node} deleted m{msg} at {} ms, the gift's last message, before it finished",
                            entry.at_ms
                        ),
                    );
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, _: &End<'_>, _: &Facts, _: &mut Out, _: &mut Report) {}
}
