//! How each [`Op`] is made on a store and its answer read back as the model's [`Answer`]:
//! the one place the recorder touches the store under test.

use std::time::Duration;

use futures::future::{select, Either};
use gift_core::domain::{Gift, GiftId, SendAccepted, Status, Timestamp};
use gift_core::ports::{OutboxEntry, SendCommand, SendDecision, Store};
use gift_core::StoreError;

use super::history::{Answer, Decision, Op, Outcome, G, K, KEYS, OUTBOX_LIMIT};
use crate::rt;

/// Makes the call, or gives it up after `cancel_after`: then its future is dropped at once.
pub(super) async fn perform(store: &dyn Store, ids: &[GiftId], op: &Op, cancel_after: Option<Duration>) -> Outcome {
    let call = std::pin::pin!(call(store, ids, op));
    let outcome = match cancel_after {
        None => call.await,
        Some(after) => match select(call, std::pin::pin!(rt::sleep(after))).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(_) => return Err(format!("given up after {after:?}")),
        },
    };
    outcome.map_err(|e| e.to_string())
}

async fn call(store: &dyn Store, ids: &[GiftId], op: &Op) -> Result<Answer, StoreError> {
    let id = |g: &G| ids[usize::from(g.0)];
    let now = rt::now_utc();
    Ok(match op {
        Op::RequestSend { gift, key } => request_send(store, id(gift), key, now).await?,
        Op::Get { gift } => match status_of(id(gift), store.get_gift(id(gift)).await?) {
            Ok(status) => Answer::Status(status),
            Err(unexpected) => unexpected,
        },
        Op::GetGifts { gifts } => get_gifts(store, gifts.iter().map(id).collect()).await?,
        Op::MarkSent { gift } => Answer::Won(store.mark_sent(id(gift), now).await?),
        Op::MarkSentAll { gifts } => {
            let asked: Vec<GiftId> = gifts.iter().map(id).collect();
            Answer::WonEach(store.mark_sent_all(&asked, now).await?)
        }
        Op::MarkFailed { gift } => Answer::Won(store.mark_failed(id(gift), "gave up", now).await?),
        Op::OutboxClaim { hold } => outbox_claim(store, ids, *hold, now).await?,
        Op::OutboxPublished { gift, key } => {
            let entry = OutboxEntry { gift_id: id(gift), request_id: key.key(), trace: None, stale: false };
            store.outbox_published(&entry, past_every_claim(now)).await?;
            Answer::Done
        }
    })
}

/// A send of `key` to `gift_id`; the answer named by its decision, as long as the body is
/// the one that request was due.
async fn request_send(store: &dyn Store, gift_id: GiftId, key: &K, now: Timestamp) -> Result<Answer, StoreError> {
    let cmd = SendCommand {
        gift_id,
        key: key.key(),
        now,
        outbox_available_at: now + chrono::Duration::seconds(5),
        trace: None,
    };
    let accepted = SendAccepted { gift_id: cmd.gift_id, status: Status::Queued, request_id: cmd.key.clone() };
    Ok(match store.request_send(&cmd).await? {
        SendDecision::Queued(body) if body == accepted => Answer::Send(Decision::Queued),
        SendDecision::Replay(body) if body == accepted => Answer::Send(Decision::Replay),
        SendDecision::Conflict(status) => Answer::Send(Decision::Conflict(status)),
        SendDecision::NotFound => Answer::Send(Decision::NotFound),
        other => Answer::Unexpected(format!("{other:?}")),
    })
}

/// The statuses of `asked`, in the order asked; a read of another length or of another gift
/// is unexpected.
async fn get_gifts(store: &dyn Store, asked: Vec<GiftId>) -> Result<Answer, StoreError> {
    let read = store.get_gifts(&asked).await?;
    if read.len() != asked.len() {
        return Ok(Answer::Unexpected(format!("{} gifts for {} asked", read.len(), asked.len())));
    }
    Ok(match asked.into_iter().zip(read).map(|(want, got)| status_of(want, got)).collect() {
        Ok(statuses) => Answer::Statuses(statuses),
        Err(unexpected) => unexpected,
    })
}

/// The due rows of this history's gifts, as (gift, key); claimed to be held past the history
/// if `hold`, else a peek.
async fn outbox_claim(store: &dyn Store, ids: &[GiftId], hold: bool, now: Timestamp) -> Result<Answer, StoreError> {
    let mut rows = Vec::new();
    // Far enough ahead that every row not recorded published is due; a held claim outlasts
    // the history, a peek's lapsed before any call of it was made.
    let far = now + chrono::Duration::days(3650);
    let until = if hold { far + chrono::Duration::days(1) } else { far - chrono::Duration::days(1) };
    for entry in store.outbox_claim(far, until, OUTBOX_LIMIT).await? {
        // Rows of other histories' gifts are not this history's business.
        let Some(g) = ids.iter().position(|i| *i == entry.gift_id) else { continue };
        let Some(k) = KEYS.iter().position(|k| *k == entry.request_id.as_str()) else {
            return Ok(Answer::Unexpected(format!("outbox row {entry:?}")));
        };
        rows.push((G(g as u8), K(k as u8)));
    }
    rows.sort();
    Ok(Answer::Due(rows))
}

/// The stale deadline of a row recorded published at `now`: after every claim of the
/// history, which claims at ten years from its own calls' times.
fn past_every_claim(now: Timestamp) -> Timestamp {
    now + chrono::Duration::days(3650 + 30)
}

/// The status of the gift read for `want`; an answer about another gift is unexpected.
fn status_of(want: GiftId, got: Option<Gift>) -> Result<Option<Status>, Answer> {
    match got {
        Some(gift) if gift.id != want => Err(Answer::Unexpected(format!("gift {} for {want}", gift.id))),
        got => Ok(got.map(|g| g.status)),
    }
}
