//! `redrive-dlq`: each dead-lettered send message decided by its gift's status.
//!
//! A QUEUED gift is re-armed through the outbox, not by publishing to the send queue from
//! here: the outbox row commits in the same transaction that checks (under the row lock)
//! that the gift is still QUEUED, the relay publishes it as it publishes every send, and the
//! dead message is deleted only after that commit. A run that dies in between leaves the
//! message in the DLQ and the next run re-arms again, which is a duplicate the worker
//! ignores; nothing is lost, and gift-admin needs no permission on the send queue.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use gift_core::domain::{GiftId, SendMessage, Timestamp};
use gift_core::ports::{Delivery, MessageId, Queue, Receipt};
use gift_core::StoreError;
use gift_runtime::postgres::admin::{PgAdmin, Requeue, Write};
use gift_runtime::postgres::PgStore;
use gift_runtime::sqs::SqsQueue;
use serde::Serialize;

mod decision;

pub use decision::{decide, Left, Redrive};

use super::config::RedriveArgs;
use super::report::{Finished, Report};
use super::AdminError;
use crate::config::SqsArgs;

/// The long poll of each receive: the run ends at the first receive that brings nothing new.
const RECEIVE_WAIT: Duration = Duration::from_secs(2);

/// What happened to the message in the DLQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "dlq", rename_all = "SCREAMING_SNAKE_CASE")]
enum Dlq {
    Deleted,
    /// Left, or a dry run: visible again when the run ends.
    Kept,
    DeleteFailed {
        delete_error: String,
    },
}

#[derive(Debug, Serialize)]
struct Line {
    message_id: String,
    gift_id: Option<GiftId>,
    #[serde(flatten)]
    redrive: Redrive,
    #[serde(flatten)]
    dlq: Dlq,
}

/// One run over the DLQ: the messages it decided, and the ones it holds (received, not
/// deleted) to make visible again at the end.
struct Sweep<'a> {
    admin: PgAdmin<'a>,
    dlq: &'a SqsQueue,
    write: Write,
    now: Timestamp,
    lines: Vec<Line>,
    held: HashMap<MessageId, Receipt>,
}

impl Sweep<'_> {
    async fn drain(&mut self, max: usize) -> Result<(), AdminError> {
        while self.lines.len() < max {
            let want = (max - self.lines.len()).min(10) as u32;
            let mut fresh = Vec::new();
            for d in self.dlq.receive(want, RECEIVE_WAIT).await? {
                // A message seen before came back after its visibility ran out; its newest
                // receipt is the one that can release it.
                if self.lines.iter().any(|l| l.message_id == d.message_id.0) {
                    self.held.insert(d.message_id, d.receipt);
                } else {
                    fresh.push(d);
                }
            }
            if fresh.is_empty() {
                return Ok(());
            }
            let mut batch = fresh.into_iter();
            while let Some(d) = batch.next() {
                if let Err(e) = self.handle(&d).await {
                    self.held.extend(std::iter::once(d).chain(batch).map(|d| (d.message_id, d.receipt)));
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    async fn handle(&mut self, d: &Delivery) -> Result<(), StoreError> {
        let parsed = SendMessage::from_body(&d.body);
        let redrive = match &parsed {
            Err(e) => Redrive::Leave { reason: Left::Unparseable { error: e.to_string() } },
            Ok(m) => decide(self.admin.requeue(m.gift_id, Requeue::Rearm, self.now, self.write).await?),
        };
        let gift_id = parsed.ok().map(|m| m.gift_id);
        log(&redrive, gift_id, &d.message_id, self.write);
        let dlq = match (&redrive, self.write) {
            (Redrive::Leave { .. }, _) | (_, Write::DryRun) => {
                self.held.insert(d.message_id.clone(), d.receipt.clone());
                Dlq::Kept
            }
            _ => match self.dlq.delete(&d.receipt).await {
                Ok(()) => Dlq::Deleted,
                Err(e) => {
                    tracing::warn!(
                        event = "ADMIN_REDRIVE", gift_id = gift_id.map(tracing::field::display),
                        message_id = d.message_id.0, error_code = "DLQ_DELETE_FAILED", error_message = %e,
                        "decided, but the message is still in the DLQ"
                    );
                    Dlq::DeleteFailed { delete_error: e.to_string() }
                }
            },
        };
        self.lines.push(Line { message_id: d.message_id.0.clone(), gift_id, redrive, dlq });
        Ok(())
    }

    /// Makes every held message visible again, so a dry run leaves the DLQ as it found it
    /// and a left message is there for the operator at once.
    async fn release(&mut self) {
        for (message_id, receipt) in self.held.drain() {
            if let Err(e) = self.dlq.set_visibility(&receipt, Duration::ZERO).await {
                tracing::warn!(
                    event = "ADMIN_REDRIVE", message_id = message_id.0, error_code = "DLQ_RELEASE_FAILED",
                    error_message = %e, "the message reappears after the DLQ's visibility timeout"
                );
            }
        }
    }
}

fn log(redrive: &Redrive, gift_id: Option<GiftId>, message_id: &MessageId, write: Write) {
    let (gift_id, message_id, decision) = (gift_id.map(tracing::field::display), &message_id.0, redrive.name());
    let dry_run = write == Write::DryRun;
    match redrive {
        Redrive::Rearm { request_id } => tracing::info!(
            event = "ADMIN_REDRIVE",
            gift_id,
            request_id = request_id.as_str(),
            message_id,
            decision,
            dry_run,
            "QUEUED gift re-armed: the relay publishes a new message"
        ),
        Redrive::Drop { status } => tracing::info!(
            event = "ADMIN_REDRIVE", gift_id, message_id, decision, gift_status = %status, dry_run,
            "finished gift: dead message dropped"
        ),
        Redrive::Leave { reason } => tracing::warn!(
            event = "ADMIN_REDRIVE", gift_id, message_id, decision, reason = reason.name(), error_message = %reason,
            dry_run, "message left in the DLQ"
        ),
    }
}

pub async fn redrive(store: &PgStore, args: &RedriveArgs, now: Timestamp) -> Result<Finished, AdminError> {
    if args.sqs_dlq_url == args.sqs.sqs_queue_url {
        return Err(AdminError::Config(
            "SQS_DLQ_URL is SQS_QUEUE_URL: redrive reads the dead-letter queue, never the send queue".into(),
        ));
    }
    let dlq = crate::wiring::sqs_queue(&SqsArgs {
        sqs_queue_url: args.sqs_dlq_url.clone(),
        aws_region: args.sqs.aws_region.clone(),
    })
    .await;
    let write = super::write(args.dry_run);
    let mut sweep = Sweep { admin: store.admin(), dlq: &dlq, write, now, lines: Vec::new(), held: HashMap::new() };
    let stopped = sweep.drain(args.max as usize).await.err();
    sweep.release().await;
    if let Some(e) = &stopped {
        tracing::error!(event = "ADMIN_REDRIVE", error_code = e.code(), error_message = %e, "redrive stopped");
    }
    Ok(Finished::of(&Redriven {
        dry_run: args.dry_run,
        messages: sweep.lines,
        stopped: stopped.map(|e| e.to_string()),
    }))
}

#[derive(Serialize)]
struct Redriven {
    dry_run: bool,
    messages: Vec<Line>,
    /// Why the run ended before the DLQ was empty or `--max` was reached.
    stopped: Option<String>,
}

impl fmt::Display for Redriven {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |is: fn(&Redrive) -> bool| self.messages.iter().filter(|l| is(&l.redrive)).count();
        for l in &self.messages {
            let gift = l.gift_id.map_or_else(|| "-".to_owned(), |g| g.to_string());
            write!(f, "{}  gift {gift}  ", l.message_id)?;
            match &l.redrive {
                Redrive::Rearm { request_id } => write!(f, "REARM (QUEUED, new message for {})", request_id.as_str()),
                Redrive::Drop { status } => write!(f, "DROP ({status})"),
                Redrive::Leave { reason } => write!(f, "LEAVE ({reason})"),
            }?;
            match &l.dlq {
                Dlq::DeleteFailed { delete_error } => writeln!(f, "  NOT DELETED: {delete_error}"),
                _ => writeln!(f),
            }?;
        }
        let dry = if self.dry_run { " (dry run: nothing re-armed, nothing deleted)" } else { "" };
        writeln!(
            f,
            "{} messages: {} re-armed, {} dropped, {} left in the DLQ{dry}",
            self.messages.len(),
            count(|r| matches!(r, Redrive::Rearm { .. })),
            count(|r| matches!(r, Redrive::Drop { .. })),
            count(|r| matches!(r, Redrive::Leave { .. }))
        )?;
        match &self.stopped {
            Some(e) => writeln!(f, "stopped early: {e}"),
            None => Ok(()),
        }
    }
}

impl Report for Redriven {
    fn complete(&self) -> bool {
        self.stopped.is_none() && !self.messages.iter().any(|l| matches!(l.dlq, Dlq::DeleteFailed { .. }))
    }
}
