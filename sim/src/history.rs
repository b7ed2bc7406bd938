//! The recorded history of one simulated run: what clients asked and heard, what the store
//! wrote, what the queue delivered, what the worker attempted. The checker reads only this.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use gift_core::domain::{GiftId, Status};

/// One thing that happened, stamped with simulated milliseconds since the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at_ms: u64,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A client got 201 for a new gift.
    Created {
        gift: GiftId,
    },
    /// A client got an HTTP answer to a send request.
    SendAnswered {
        gift: GiftId,
        key: String,
        code: u16,
        body: String,
    },
    /// A send request whose answer never arrived (its API node died).
    SendLost {
        gift: GiftId,
        key: String,
    },
    /// The store applied a status change.
    Transition {
        gift: GiftId,
        from: Status,
        to: Status,
    },
    /// A message for the gift reached the queue.
    Published {
        gift: GiftId,
        key: String,
    },
    /// The queue handed out a message; `seen` is false for a receive that SQS counted but
    /// no worker got.
    Received {
        gift: GiftId,
        receive_count: u32,
        seen: bool,
    },
    /// The queue moved a message to the dead-letter queue.
    DeadLettered {
        gift: GiftId,
    },
    /// The worker ran the pseudo-send.
    Dispatched {
        gift: GiftId,
        receive_count: u32,
        ok: bool,
    },
    /// The worker finished handling a delivery.
    Handled {
        gift: Option<GiftId>,
        node: String,
        outcome: String,
    },
    /// A fault fired.
    Fault {
        kind: &'static str,
    },
    Killed {
        node: String,
    },
    Restarted {
        node: String,
    },
    Phase {
        name: &'static str,
    },
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>9} ", self.at_ms)?;
        let short = |g: &GiftId| g.to_string()[..8].to_owned();
        match &self.event {
            Event::Created { gift } => write!(f, "client   created {}", short(gift)),
            Event::SendAnswered { gift, key, code, body } => {
                write!(f, "client   send {} key={key} -> {code} {body}", short(gift))
            }
            Event::SendLost { gift, key } => write!(f, "client   send {} key={key} -> (no answer)", short(gift)),
            Event::Transition { gift, from, to } => write!(f, "store    {} {from} -> {to}", short(gift)),
            Event::Published { gift, key } => write!(f, "queue    publish {} key={key}", short(gift)),
            Event::Received { gift, receive_count, seen } => {
                write!(
                    f,
                    "queue    receive {} count={receive_count}{}",
                    short(gift),
                    if *seen { "" } else { " (unseen)" }
                )
            }
            Event::DeadLettered { gift } => write!(f, "queue    dead-letter {}", short(gift)),
            Event::Dispatched { gift, receive_count, ok } => {
                write!(
                    f,
                    "worker   dispatch {} count={receive_count} {}",
                    short(gift),
                    if *ok { "ok" } else { "FAILED" }
                )
            }
            Event::Handled { gift, node, outcome } => {
                write!(f, "{node:<8} handled {} {outcome}", gift.as_ref().map(short).unwrap_or_else(|| "?".into()))
            }
            Event::Fault { kind } => write!(f, "fault    {kind}"),
            Event::Killed { node } => write!(f, "nemesis  kill {node}"),
            Event::Restarted { node } => write!(f, "nemesis  restart {node}"),
            Event::Phase { name } => write!(f, "phase    {name}"),
        }
    }
}

/// A shared, append-only history plus the coverage counters of the run.
#[derive(Clone, Default)]
pub struct History {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    world: String,
    entries: Vec<Entry>,
    counts: BTreeMap<&'static str, u64>,
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the printed world, so a report has it even when the run panicked.
    pub fn set_world(&self, world: String) {
        self.lock().world = world;
    }

    pub fn world(&self) -> String {
        self.lock().world.clone()
    }

    pub fn record(&self, at_ms: u64, event: Event) {
        let mut inner = self.lock();
        if let Event::Fault { kind } = &event {
            *inner.counts.entry(kind).or_default() += 1;
        }
        inner.entries.push(Entry { at_ms, event });
    }

    /// Counts an interesting event without recording it in the trace.
    pub fn count(&self, what: &'static str) {
        *self.lock().counts.entry(what).or_default() += 1;
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.clone()
    }

    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.lock().counts.clone()
    }
}

/// The trace as text, one line per entry.
pub fn render(entries: &[Entry]) -> String {
    entries.iter().map(|e| format!("{e}\n")).collect()
}

/// FNV-1a over the rendered trace: stable across runs, platforms and Rust versions.
pub fn trace_hash(entries: &[Entry]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in render(entries).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
