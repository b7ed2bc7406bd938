//! The sequential specification, per message: its states and the steps a call may take between them.

use gift_core::ports::Receipt;

use super::QueueConfig;

/// One message's state in the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum State {
    Unpublished,
    /// Visible with this count, and the receipt of its latest receive if it had one.
    Visible(u32, Option<Receipt>),
    InFlight(u32, Receipt),
    Gone,
    Dead,
}

/// What one call did to one message.
#[derive(Debug, Clone)]
pub(super) enum Step {
    Publish,
    Receive(u32, Receipt),
    Delete(Receipt),
    Release(Receipt),
}

/// The states `step` may lead to from `state` (none: the model cannot answer so).
pub(super) fn next(state: &State, step: &Step, config: QueueConfig) -> Vec<State> {
    let max = config.max_receives;
    match (state, step) {
        (State::Unpublished, Step::Publish) => vec![State::Visible(0, None)],
        (State::Visible(c, _), Step::Receive(n, r)) if *c < max && *n == c + 1 => {
            vec![State::InFlight(*n, r.clone())]
        }
        (State::InFlight(c, current), Step::Release(r)) if r == current => {
            vec![State::Visible(*c, Some(current.clone()))]
        }
        // AWS answers MessageNotInflight; moto and the models accept it, and at delay 0 it
        // changes nothing (docs/testing.md).
        (State::Visible(_, Some(latest)), Step::Release(r)) if r == latest => vec![state.clone()],
        (State::InFlight(c, current), Step::Release(_)) if config.stale_release_may_apply => {
            vec![State::Visible(*c, Some(current.clone()))]
        }
        (State::Visible(..), Step::Release(_)) if config.stale_release_may_apply => vec![state.clone()],
        (State::InFlight(_, current), Step::Delete(r)) if r == current => vec![State::Gone],
        (State::InFlight(..) | State::Visible(..), Step::Delete(_)) => vec![State::Gone, state.clone()],
        (State::Gone | State::Dead, Step::Delete(_)) => vec![state.clone()],
        _ => Vec::new(),
    }
}
