//! The effect tap: a process's port calls — store, queue, pseudo-send — as asked and as
//! answered, one JSON line each, appended to a file. The real-stack run (`gift-stack`)
//! reads these files from every process and builds the same history the simulation records
//! through its own wrappers, so one checker judges both worlds.
//!
//! The tap sits between the deciding code and the adapters: it sees what the service asked
//! for and what came back, never the service's own opinion of it. Lines from different
//! processes are ordered by their clocks, so each is stamped at the end of its call's
//! interval that keeps that order sound: the SENT and FAILED writes and the queue calls when
//! answered (they took effect no later); a read and the send transaction when answered and
//! with when they were asked (what they saw held somewhere between; the history places an
//! accepted send at its asking, since what it wrote existed no earlier). A call that ended in an error writes nothing: it may or may not
//! have happened, and the run's final database settles what did.
//!
//! Off unless `EFFECT_LOG` is set; production never sets it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use gift_core::domain::SendMessage;
use gift_core::ports::{Delivery, Dispatcher, Queue, Receipt, Store};
use gift_core::service::DeliveryOutcome;

use crate::rt;

mod dispatcher;
mod effect;
mod queue;
mod store;

pub use effect::{Decided, Effect, Handled, Line};

use dispatcher::TappedDispatcher;
use queue::TappedQueue;
use store::TappedStore;

/// The writer every wrapper of one process shares.
pub struct Tap {
    node: String,
    file: Mutex<File>,
    attempts: AtomicU64,
    /// Receipt → message id, so deletes and visibility changes name their message.
    receipts: Mutex<std::collections::HashMap<Receipt, String>>,
}

impl Tap {
    /// Appends to `path` as `node` (api-1, worker-2, relay-2, …).
    pub fn open(path: &Path, node: &str) -> std::io::Result<Arc<Tap>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Arc::new(Tap {
            node: node.to_owned(),
            file: Mutex::new(file),
            attempts: AtomicU64::new(0),
            receipts: Mutex::new(Default::default()),
        }))
    }

    /// The same file under another node name (the worker's relay).
    pub fn renamed(&self, node: &str) -> std::io::Result<Arc<Tap>> {
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner()).try_clone()?;
        Ok(Arc::new(Tap {
            node: node.to_owned(),
            file: Mutex::new(file),
            attempts: AtomicU64::new(0),
            receipts: Mutex::new(Default::default()),
        }))
    }

    /// One whole line per write: with `O_APPEND` it survives a `kill -9` of the process
    /// and never interleaves with another writer's line.
    pub fn write(&self, at_us: i64, effect: Effect) {
        let line = Line { at_us, node: self.node.clone(), effect };
        let Ok(mut text) = serde_json::to_string(&line) else { return };
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(text.as_bytes()) {
            tracing::warn!(error_code = "EFFECT_LOG_FAILED", error_message = %e, "effect line not written");
        }
    }

    pub fn store(self: &Arc<Self>, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(TappedStore { inner, tap: self.clone() })
    }

    pub fn queue(self: &Arc<Self>, inner: Arc<dyn Queue>) -> Arc<dyn Queue> {
        Arc::new(TappedQueue { inner, tap: self.clone() })
    }

    pub fn dispatcher(self: &Arc<Self>, inner: Arc<dyn Dispatcher>) -> Arc<dyn Dispatcher> {
        Arc::new(TappedDispatcher { inner, tap: self.clone() })
    }

    /// The worker observer's part: what the worker reported for `delivery`.
    pub fn handled(&self, delivery: &Delivery, outcome: &DeliveryOutcome) {
        let gift = SendMessage::from_body(&delivery.body).ok().map(|m| m.gift_id);
        let msg = delivery.message_id.0.clone();
        let effect = Effect::Handled { msg, receive_count: delivery.receive_count, gift, outcome: outcome.into() };
        self.write(micros(), effect);
    }

    fn message_of(&self, receipt: &Receipt) -> Option<String> {
        self.receipts.lock().unwrap_or_else(|p| p.into_inner()).get(receipt).cloned()
    }
}

fn micros() -> i64 {
    rt::now_utc().timestamp_micros()
}

#[cfg(test)]
mod tests {
    use gift_core::domain::{GiftId, Status};

    use super::*;

    #[test]
    fn a_line_reads_back_as_written() {
        let gift = GiftId::from_random(7);
        let line = Line {
            at_us: 1_700_000_000_000_001,
            node: "worker-1".into(),
            effect: Effect::RequestSend {
                gift,
                key: "k\"é".into(),
                decided: Decided::Conflict(Status::Sent),
                asked_us: 3,
            },
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(text.contains(r#""effect":"request_send""#), "{text}");
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
    }
}
