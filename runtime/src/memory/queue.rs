use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use gift_core::domain::{SendMessage, TraceParent};
use gift_core::ports::{Delivery, MessageId, Queue, Receipt};
use gift_core::{defaults, QueueError};
use tokio::sync::Notify;

use crate::rt::{self, Instant};

/// The queue's redrive and visibility settings, as configured on the SQS queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub visibility_timeout: Duration,
    /// A message received this many times moves to the dead-letter queue on its next receive.
    pub max_receives: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(defaults::VISIBILITY_TIMEOUT_SECONDS),
            max_receives: defaults::MAX_RECEIVES,
        }
    }
}

/// SQS standard-queue semantics in memory: messages stay until deleted; a receive hides a
/// message for the visibility timeout and bumps its receive count; a message already
/// received `max_receives` times goes to the dead-letter list instead of being delivered.
pub struct MemoryQueue {
    settings: QueueSettings,
    state: Mutex<State>,
    published: Notify,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// Keyed by id, so receives hand out the oldest visible messages first.
    messages: BTreeMap<u64, Message>,
    /// (message id, body), in the order they were moved.
    dead: Vec<(u64, String)>,
}

struct Message {
    body: String,
    trace: Option<TraceParent>,
    receive_count: u32,
    visible_at: Instant,
    /// The receipt of the latest receive; receipts are `"{id}:{receive_count}"`.
    receipt: Option<String>,
}

impl MemoryQueue {
    pub fn new(settings: QueueSettings) -> Self {
        Self { settings, state: Mutex::new(State::default()), published: Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bodies in the dead-letter queue.
    pub fn dead_letters(&self) -> Vec<String> {
        self.lock().dead.iter().map(|(_, body)| body.clone()).collect()
    }

    /// The dead-letter queue with each message's id, for checkers that follow a message's life.
    pub fn dead_lettered(&self) -> Vec<(u64, String)> {
        self.lock().dead.clone()
    }

    /// Enqueues `body` and returns the id of the new message (what `publish` does, for
    /// checkers that follow each message).
    pub fn enqueue(&self, body: &str) -> u64 {
        self.enqueue_traced(body, None)
    }

    fn enqueue_traced(&self, body: &str, trace: Option<TraceParent>) -> u64 {
        let id = {
            let mut st = self.lock();
            let id = st.next_id;
            st.next_id += 1;
            let message = Message {
                body: body.to_owned(),
                trace,
                receive_count: 0,
                visible_at: rt::now_instant(),
                receipt: None,
            };
            st.messages.insert(id, message);
            id
        };
        self.published.notify_waiters();
        id
    }

    /// The id of the message a receipt belongs to.
    pub fn message_of(receipt: &Receipt) -> Option<u64> {
        Self::message_id(receipt).ok()
    }

    /// Messages not yet deleted or dead-lettered, visible or not.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes up to `max` visible messages; otherwise says when the next one becomes visible.
    fn try_receive(&self, max: u32) -> Result<Vec<Delivery>, Option<Instant>> {
        let now = rt::now_instant();
        let mut st = self.lock();
        let mut out = Vec::new();
        let mut to_dead = Vec::new();
        let mut next_visible: Option<Instant> = None;
        for (id, m) in st.messages.iter_mut() {
            if out.len() as u32 >= max {
                break;
            }
            if m.visible_at > now {
                next_visible = Some(next_visible.map_or(m.visible_at, |n| n.min(m.visible_at)));
                continue;
            }
            if m.receive_count >= self.settings.max_receives {
                to_dead.push(*id);
                continue;
            }
            m.receive_count += 1;
            m.visible_at = now + self.settings.visibility_timeout;
            let receipt = format!("{id}:{}", m.receive_count);
            m.receipt = Some(receipt.clone());
            out.push(Delivery {
                message_id: MessageId(id.to_string()),
                body: m.body.clone(),
                receipt: Receipt(receipt),
                receive_count: m.receive_count,
                trace: m.trace,
            });
        }
        for id in to_dead {
            let m = st.messages.remove(&id).expect("listed above");
            st.dead.push((id, m.body));
        }
        if out.is_empty() {
            Err(next_visible)
        } else {
            Ok(out)
        }
    }

    fn message_id(receipt: &Receipt) -> Result<u64, QueueError> {
        receipt
            .0
            .split(':')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| QueueError::Other(format!("malformed receipt {:?}", receipt.0)))
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn publish(&self, message: &SendMessage, trace: Option<&TraceParent>) -> Result<MessageId, QueueError> {
        Ok(MessageId(self.enqueue_traced(&message.to_body(), trace.copied()).to_string()))
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = rt::now_instant() + wait;
        loop {
            // Register interest before looking, so a publish in between is not missed.
            let published = self.published.notified();
            let next_visible = match self.try_receive(max) {
                Ok(batch) => return Ok(batch),
                Err(next) => next,
            };
            let now = rt::now_instant();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let until = next_visible.map_or(deadline, |n| n.min(deadline));
            let pause = until.saturating_duration_since(now).max(Duration::from_millis(1));
            futures::pin_mut!(published);
            let _ = futures::future::select(published, Box::pin(rt::sleep(pause))).await;
        }
    }

    async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        let id = Self::message_id(receipt)?;
        // Like SQS (and its emulator), deleting a message that is already gone succeeds.
        self.lock().messages.remove(&id);
        Ok(())
    }

    async fn set_visibility(&self, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        let id = Self::message_id(receipt)?;
        {
            let mut st = self.lock();
            match st.messages.get_mut(&id) {
                Some(m) if m.receipt.as_deref() == Some(receipt.0.as_str()) => {
                    m.visible_at = rt::now_instant() + delay;
                }
                Some(_) => return Err(QueueError::Other("receipt handle is no longer current".into())),
                None => return Err(QueueError::Other("message does not exist".into())),
            }
        }
        // A waiting receive may now have something to take sooner than it planned.
        self.published.notify_waiters();
        Ok(())
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}
