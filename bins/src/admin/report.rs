//! What a subcommand prints: a report, as text for a person or as one JSON document
//! (`--json`, on one line: the last line of stdout), and whether everything it was asked to
//! do was done (the exit code).

use std::fmt::{self, Display};

use gift_core::domain::Timestamp;
use gift_core::http::GiftView;
use serde::Serialize;

/// A subcommand's report.
pub trait Report: Serialize + Display {
    /// False when something asked for was refused or failed: the process exits non-zero.
    fn complete(&self) -> bool {
        true
    }
}

/// A report made ready to print.
pub struct Finished {
    pub text: String,
    pub json: String,
    pub complete: bool,
}

impl Finished {
    pub fn of(report: &impl Report) -> Self {
        let json = serde_json::to_string(report).expect("a report always serialises");
        Self { text: report.to_string(), json, complete: report.complete() }
    }
}

/// A time as the operator reads it (and as the logs write it): RFC 3339, UTC, milliseconds.
pub fn time(t: &Timestamp) -> impl Display {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One line per gift: id, status, last update, and the last error if any.
pub fn gift_line(f: &mut fmt::Formatter<'_>, g: &GiftView) -> fmt::Result {
    write!(f, "{}  {:<6}  updated {}", g.gift_id, g.status, time(&g.updated_at))?;
    match &g.last_error {
        Some(e) => writeln!(f, "  last_error: {e}"),
        None => writeln!(f),
    }
}
