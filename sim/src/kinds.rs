//! The simulation's vocabularies, each one enum whose single list drives everything said
//! about it: the fault kinds (their names, how a world draws their rates, what coverage
//! requires), the node kinds (their names), and the coverage counters. A fault kind is one
//! row of the `FaultKind` list plus the line that fires it.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// An enum with a `name` per variant and one more per-variant value, and `ALL` in the order
/// written: the one list everything else iterates.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident { $($(#[$vmeta:meta])* $variant:ident = $name:literal, $value:expr;)* }
        fn $attr:ident() -> $attr_ty:ty;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $ty {
            $($(#[$vmeta])* $variant,)*
        }

        impl $ty {
            pub const ALL: [$ty; [$($name),*].len()] = [$($ty::$variant),*];

            /// The name printed in traces, worlds and the coverage table.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }

            pub fn $attr(self) -> $attr_ty {
                match self {
                    $($ty::$variant => $value,)*
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

/// How a world draws a fault kind's rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateDraw {
    /// Zero a third of the time, otherwise anywhere below the bound.
    UpTo(f64),
    /// The rate already drawn for an earlier kind (no draw of its own).
    SameAs(FaultKind),
}

named_enum! {
    /// Every fault the simulated world injects, in the order a world draws their rates.
    /// Every kind must fire at least once in a PR run (`--require-coverage`).
    pub enum FaultKind {
        /// SendMessage refused; nothing enqueued.
        PublishFail = "publish_fail", RateDraw::UpTo(0.5);
        /// 1–5 s, then an error; enqueued or not, 50/50.
        PublishTimeout = "publish_timeout", RateDraw::UpTo(0.2);
        /// Enqueued, but the caller hears an error.
        PublishLie = "publish_lie", RateDraw::UpTo(0.2);
        /// Enqueued twice.
        DuplicateDelivery = "duplicate_delivery", RateDraw::UpTo(0.3);
        /// SQS counts a receive no worker gets.
        UnseenReceive = "unseen_receive", RateDraw::UpTo(0.2);
        /// ReceiveMessage fails.
        ReceiveError = "receive_error", RateDraw::UpTo(0.2);
        /// DeleteMessage fails; the message stays.
        DeleteError = "delete_error", RateDraw::UpTo(0.2);
        /// ChangeMessageVisibility fails. A worker's two acknowledgements share one rate.
        VisibilityError = "visibility_error", RateDraw::SameAs(FaultKind::DeleteError);
        /// A statement fails before doing anything.
        DbError = "db_error", RateDraw::UpTo(0.15);
        /// 1–5 s, then a failure, nothing done.
        DbTimeout = "db_timeout", RateDraw::UpTo(0.05);
        /// A write commits but the caller hears an error.
        DbAmbiguousCommit = "db_ambiguous_commit", RateDraw::UpTo(0.15);
        /// A delay before a store or queue call, or during a pseudo-send.
        Latency = "latency", RateDraw::UpTo(0.8);
    }
    fn rate_draw() -> RateDraw;
}

named_enum! {
    /// The kinds of simulated node, with the counter of a kill of one; a node is named
    /// `<kind>-<index>`.
    pub enum NodeKind {
        Api = "api", Counter::KillApi;
        Worker = "worker", Counter::KillWorker;
        Relay = "relay", Counter::KillRelay;
    }
    fn kill_counter() -> Counter;
}

impl NodeKind {
    /// The counter of a kill that interrupted work (a relay's work is not tracked).
    pub fn kill_mid_work_counter(self) -> Option<Counter> {
        match self {
            NodeKind::Api => Some(Counter::KillApiMidRequest),
            NodeKind::Worker => Some(Counter::KillWorkerMidDelivery),
            NodeKind::Relay => None,
        }
    }

    pub fn node_name(self, index: usize) -> String {
        format!("{}-{index}", self.name())
    }

    /// The kind of the node called `name`, if it is one of the cluster's.
    pub fn of(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| name.strip_prefix(k.name()).is_some_and(|rest| rest.starts_with('-')))
    }
}

named_enum! {
    /// What the coverage table counts besides faults: the nemesis' doing, the healing paths,
    /// the outcomes of a run, and the checker's figures that are not violations. The
    /// `true` ones must happen at least once in a PR run, like every fault kind.
    pub enum Counter {
        KillApi = "kill_api", true;
        KillWorker = "kill_worker", true;
        KillRelay = "kill_relay", true;
        /// A kill of an API node with a request in progress.
        KillApiMidRequest = "kill_api_mid_request", true;
        /// A kill of a worker between a pseudo-send's start and its delivery's end.
        KillWorkerMidDelivery = "kill_worker_mid_delivery", true;
        /// A graceful stop (a worker's SIGTERM).
        StopWorker = "stop_worker", true;
        /// A message received while another receipt of it was still held.
        TwoWorkersHoldOneMessage = "two_workers_hold_one_message", true;
        /// Messages the relay published from the outbox.
        RelayPublished = "relay_published", true;
        DeadLettered = "dead_lettered", true;
        /// Outbox rows claimed again at their stale deadline (published before, the gift
        /// still QUEUED `stale_after` later).
        StaleRearmed = "stale_rearmed", true;
        /// A worker's read of more gifts than one receive holds: a batch gathered from
        /// receives that came back full (`WorkerConfig::receives_per_batch`).
        GatheredBatch = "gathered_batch", true;
        GiftSent = "gift_sent", false;
        GiftFailed = "gift_failed", false;
        DuplicateAfterTerminal = "duplicate_after_terminal", false;
        LostRace = "lost_race", false;
        SendAnswerLost = "send_answer_lost", false;
        Send503 = "send_503", false;
        SendReplayed = "send_replayed", false;
        SendConflict = "send_conflict", false;
        /// `checker::Report::extra_sends`.
        ExtraPseudoSends = "extra_pseudo_sends", false;
        FailedAfterLostSuccess = "failed_after_lost_success", false;
        FailedBesideDuplicate = "failed_beside_duplicate", false;
        FailedAfterLateRenewal = "failed_after_late_renewal", false;
    }
    fn required() -> bool;
}

/// One row of the coverage table: a fault kind that fired, or another counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Covered {
    Fault(FaultKind),
    Counter(Counter),
}

impl Covered {
    pub fn name(self) -> &'static str {
        match self {
            Covered::Fault(k) => k.name(),
            Covered::Counter(c) => c.name(),
        }
    }

    /// Every fault kind, then the required counters: what a PR run must exercise.
    pub fn required() -> impl Iterator<Item = Covered> {
        let counters = Counter::ALL.into_iter().filter(|c| c.required()).map(Covered::Counter);
        FaultKind::ALL.into_iter().map(Covered::Fault).chain(counters)
    }
}

impl From<FaultKind> for Covered {
    fn from(k: FaultKind) -> Self {
        Covered::Fault(k)
    }
}

impl From<Counter> for Covered {
    fn from(c: Counter) -> Self {
        Covered::Counter(c)
    }
}

/// The coverage counts of one run or of many.
pub type Counts = BTreeMap<Covered, u64>;

/// The coverage table: the required rows first, in their order, then the others by name.
pub fn coverage_table(counts: &Counts) -> String {
    let mut out = String::from("coverage:\n");
    let mut others: Vec<Covered> = counts.keys().copied().filter(|c| !is_required(*c)).collect();
    others.sort_by_key(|c| c.name());
    for row in Covered::required().chain(others) {
        let n = counts.get(&row).copied().unwrap_or(0);
        let mark = if n == 0 && is_required(row) { "  <- never exercised" } else { "" };
        let _ = writeln!(out, "  {:<30} {n:>10}{mark}", row.name());
    }
    out
}

/// The required rows with a zero count.
pub fn unexercised(counts: &Counts) -> Vec<Covered> {
    Covered::required().filter(|c| counts.get(c).copied().unwrap_or(0) == 0).collect()
}

fn is_required(c: Covered) -> bool {
    match c {
        Covered::Fault(_) => true,
        Covered::Counter(c) => c.required(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_node_kinds_parse_back() {
        let mut names: Vec<&str> = FaultKind::ALL.map(FaultKind::name).into_iter().collect();
        names.extend(Counter::ALL.map(Counter::name));
        let len = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), len);
        for kind in NodeKind::ALL {
            assert_eq!(NodeKind::of(&kind.node_name(2)), Some(kind));
        }
        assert_eq!(NodeKind::of("queue"), None);
        assert_eq!(NodeKind::of("apis-0"), None);
    }

    #[test]
    fn a_shared_rate_refers_to_a_kind_drawn_before_it() {
        for (i, kind) in FaultKind::ALL.into_iter().enumerate() {
            if let RateDraw::SameAs(other) = kind.rate_draw() {
                assert!(FaultKind::ALL[..i].contains(&other), "{kind} shares the rate of a later kind");
                assert!(matches!(other.rate_draw(), RateDraw::UpTo(_)));
            }
        }
    }

    #[test]
    fn the_table_lists_required_rows_first_and_marks_the_missing() {
        let mut counts = Counts::new();
        counts.insert(Counter::SendConflict.into(), 3);
        counts.insert(Counter::GiftSent.into(), 1);
        counts.insert(FaultKind::Latency.into(), 2);
        let table = coverage_table(&counts);
        let rows: Vec<&str> = table.lines().skip(1).map(|l| l.split_whitespace().next().unwrap()).collect();
        assert_eq!(rows[0], "publish_fail");
        assert_eq!(&rows[rows.len() - 2..], ["gift_sent", "send_conflict"]);
        assert!(table.contains("latency                                 2\n"));
        assert_eq!(unexercised(&counts).len(), FaultKind::ALL.len() - 1 + 11);
    }
}
