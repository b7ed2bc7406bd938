use super::ParseError;

/// A gift's lifecycle. The only edges are CREATED→QUEUED (send accepted),
/// QUEUED→SENT (worker succeeded) and QUEUED→FAILED (retry budget exhausted).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Created,
    Queued,
    Sent,
    Failed,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Created, Status::Queued, Status::Sent, Status::Failed];

    /// Whether the state machine allows `self → to`.
    pub fn can_become(self, to: Status) -> bool {
        matches!(
            (self, to),
            (Status::Created, Status::Queued) | (Status::Queued, Status::Sent) | (Status::Queued, Status::Failed)
        )
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Sent | Status::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "CREATED",
            Status::Queued => "QUEUED",
            Status::Sent => "SENT",
            Status::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseError::new(format!("unknown status {s:?}")))
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = Status> {
        proptest::sample::select(Status::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn terminal_states_have_no_exits(from in status(), to in status()) {
            if from.is_terminal() {
                prop_assert!(!from.can_become(to));
            }
        }

        #[test]
        fn nothing_returns_to_created_and_no_self_loops(from in status(), to in status()) {
            prop_assert!(!from.can_become(Status::Created));
            prop_assert!(!from.can_become(from));
            // Every edge moves forward in the declared order: there are no cycles.
            if from.can_become(to) {
                prop_assert!(from < to);
            }
            // Every non-terminal state has a way out.
            prop_assert!(from.is_terminal() || Status::ALL.iter().any(|t| from.can_become(*t)));
        }

        #[test]
        fn any_walk_is_at_most_two_steps(steps in proptest::collection::vec(status(), 0..8)) {
            let mut s = Status::Created;
            let mut taken = 0;
            for to in steps {
                if s.can_become(to) { s = to; taken += 1; }
            }
            prop_assert!(taken <= 2);
        }

        #[test]
        fn names_round_trip(s in status()) {
            prop_assert_eq!(Status::parse(s.as_str()).unwrap(), s);
        }
    }
}
