//! Sends share statements ([`shared`](super::shared)), one per gift: a send alone runs the
//! one-gift statement, several the same statement over arrays. Either way each gift is
//! locked (`FOR UPDATE`) and, if it is CREATED, gets its send request and outbox row and
//! becomes QUEUED, all in one statement and so one transaction.
//!
//! Two sends for the same gift never share a statement ([`Statement::clash`]): the second
//! must see what the first did, which a statement's rows do not see of each other. Several
//! gifts' rows are locked in id order, so racing batches of sends wait for each other
//! instead of deadlocking; the worker's batch SENT write locks its rows in id order too
//! (`PgStore::mark_sent_all`).

use std::collections::HashMap;

use gift_core::domain::{SendAccepted, Status};
use gift_core::ports::{SendCommand, SendDecision};
use gift_core::StoreError;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

use super::pool::OpFuture;
use super::shared::{Ran, Statement};
use crate::sql::store_error_of;

/// Accepting sends: CREATED → QUEUED with the send request and the outbox row.
pub(crate) struct RequestSends;

impl Statement for RequestSends {
    type Item = SendCommand;
    type Output = SendDecision;

    const MAX_ITEMS: usize = 64;

    fn clash(a: &SendCommand, b: &SendCommand) -> bool {
        a.gift_id == b.gift_id
    }

    fn run<'c>(c: &'c mut PgConnection, cmds: &'c [SendCommand]) -> OpFuture<'c, Ran<SendDecision>> {
        Box::pin(async move {
            let statuses = if let [cmd] = cmds { vec![send_one(c, cmd).await?] } else { send_many(c, cmds).await? };
            // Replay or conflict, for the gifts that were not CREATED. This must be a
            // statement of its own: the one above reads send_requests in the snapshot it took
            // before it waited for the locks, so it would miss the request of a send it
            // waited for.
            let settled: Vec<&SendCommand> = cmds
                .iter()
                .zip(&statuses)
                .filter(|(_, s)| matches!(s, Some(s) if s != "CREATED"))
                .map(|(c, _)| c)
                .collect();
            let seen = if settled.is_empty() { Ok(Vec::new()) } else { seen_requests(c, &settled).await };
            Ok(decide(cmds, statuses, seen))
        })
    }
}

/// Each send's decision from the status the send statement found and the accepted requests
/// of the gifts it found settled. The send statement has committed by then: if the second
/// statement failed, the sends it queued are still queued (and missing gifts still missing),
/// and only the replay-or-conflict answers fail, with its error.
fn decide(
    cmds: &[SendCommand],
    statuses: Vec<Option<String>>,
    seen: Result<Vec<(Uuid, String)>, sqlx::Error>,
) -> Ran<SendDecision> {
    let answers = cmds
        .iter()
        .zip(statuses)
        .map(|(cmd, status)| {
            let accepted =
                || SendAccepted { gift_id: cmd.gift_id, status: Status::Queued, request_id: cmd.key.clone() };
            let Some(status) = status else { return Ok(SendDecision::NotFound) };
            let status = Status::parse(&status).map_err(|e| StoreError::Other(e.0))?;
            if status == Status::Created {
                return Ok(SendDecision::Queued(accepted()));
            }
            let seen = seen.as_ref().map_err(store_error_of)?;
            Ok(if seen.contains(&(cmd.gift_id.as_uuid(), cmd.key.as_str().to_owned())) {
                SendDecision::Replay(accepted())
            } else {
                SendDecision::Conflict(status)
            })
        })
        .collect();
    Ran { answers, error: seen.err() }
}

/// The gift's status as the send found it (CREATED: it queued the gift), or `None` for no gift.
async fn send_one(c: &mut PgConnection, cmd: &SendCommand) -> Result<Option<String>, sqlx::Error> {
    // A racing send waits on the row lock and then sees the row as the winner left it
    // (QUEUED), so only one of them inserts.
    sqlx::query_scalar(
        "WITH target AS (SELECT id, status FROM gifts WHERE id = $1 FOR UPDATE), \
              request AS (INSERT INTO send_requests (gift_id, request_id, created_at) \
                          SELECT id, $2, $3 FROM target WHERE status = 'CREATED'), \
              outbox_row AS (INSERT INTO outbox (gift_id, request_id, available_at, traceparent) \
                          SELECT id, $2, $4, $5 FROM target WHERE status = 'CREATED'), \
              queued AS (UPDATE gifts g SET status = 'QUEUED', updated_at = $3 FROM target t \
                         WHERE g.id = t.id AND t.status = 'CREATED') \
         SELECT status FROM target",
    )
    .bind(cmd.gift_id.as_uuid())
    .bind(cmd.key.as_str())
    .bind(cmd.now)
    .bind(cmd.outbox_available_at)
    .bind(cmd.trace.map(|t| t.to_string()))
    .fetch_optional(c)
    .await
}

/// [`send_one`] for sends of different gifts, answered in order.
async fn send_many(c: &mut PgConnection, cmds: &[SendCommand]) -> Result<Vec<Option<String>>, sqlx::Error> {
    let found: HashMap<Uuid, String> = sqlx::query_as(
        "WITH input AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[]) \
                        AS i(gift_id, request_id, now, available_at, traceparent)), \
              target AS (SELECT id, status FROM gifts WHERE id = ANY($1) ORDER BY id FOR UPDATE), \
              fresh AS (SELECT i.* FROM input i JOIN target t ON t.id = i.gift_id WHERE t.status = 'CREATED'), \
              request AS (INSERT INTO send_requests (gift_id, request_id, created_at) \
                          SELECT gift_id, request_id, now FROM fresh), \
              outbox_row AS (INSERT INTO outbox (gift_id, request_id, available_at, traceparent) \
                          SELECT gift_id, request_id, available_at, traceparent FROM fresh), \
              queued AS (UPDATE gifts g SET status = 'QUEUED', updated_at = f.now FROM fresh f \
                         WHERE g.id = f.gift_id) \
         SELECT id, status FROM target",
    )
    .bind(cmds.iter().map(|c| c.gift_id.as_uuid()).collect::<Vec<_>>())
    .bind(cmds.iter().map(|c| c.key.as_str().to_owned()).collect::<Vec<_>>())
    .bind(cmds.iter().map(|c| c.now).collect::<Vec<_>>())
    .bind(cmds.iter().map(|c| c.outbox_available_at).collect::<Vec<_>>())
    .bind(cmds.iter().map(|c| c.trace.map(|t| t.to_string())).collect::<Vec<_>>())
    .fetch_all(c)
    .await?
    .into_iter()
    .collect();
    Ok(cmds.iter().map(|cmd| found.get(&cmd.gift_id.as_uuid()).cloned()).collect())
}

/// Which of `cmds` have their `(gift, key)` among the accepted send requests.
async fn seen_requests(c: &mut PgConnection, cmds: &[&SendCommand]) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT gift_id, request_id FROM send_requests \
         WHERE (gift_id, request_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))",
    )
    .bind(cmds.iter().map(|c| c.gift_id.as_uuid()).collect::<Vec<_>>())
    .bind(cmds.iter().map(|c| c.key.as_str().to_owned()).collect::<Vec<_>>())
    .fetch_all(c)
    .await
}

#[cfg(test)]
mod tests {
    use gift_core::domain::{GiftId, IdempotencyKey};

    use super::*;

    fn cmd(gift: u128, key: &str) -> SendCommand {
        let now = chrono::DateTime::UNIX_EPOCH;
        let key = IdempotencyKey::parse(key).unwrap();
        SendCommand { gift_id: GiftId::from_random(gift), key, now, outbox_available_at: now, trace: None }
    }

    fn found(statuses: &[Option<&str>]) -> Vec<Option<String>> {
        statuses.iter().map(|s| s.map(str::to_owned)).collect()
    }

    /// The batch's send statement committed: a failure of the replay-or-conflict read that
    /// follows fails only the sends it had to settle. A send it queued answers queued (not a
    /// 503 for an accepted send), an unknown gift not found, and the pool sees the error.
    #[test]
    fn a_failed_second_statement_fails_only_the_sends_it_had_to_settle() {
        let cmds = [cmd(1, "new"), cmd(2, "again"), cmd(3, "ghost")];
        let ran = decide(&cmds, found(&[Some("CREATED"), Some("QUEUED"), None]), Err(sqlx::Error::PoolTimedOut));
        assert!(matches!(ran.answers[0], Ok(SendDecision::Queued(_))), "{:?}", ran.answers[0]);
        assert!(matches!(ran.answers[1], Err(StoreError::Unavailable(_))), "{:?}", ran.answers[1]);
        assert!(matches!(ran.answers[2], Ok(SendDecision::NotFound)), "{:?}", ran.answers[2]);
        assert!(ran.error.is_some(), "the pool hears of the failure");
    }

    #[test]
    fn settled_sends_replay_their_own_key_and_conflict_on_another() {
        let cmds = [cmd(1, "new"), cmd(2, "again"), cmd(3, "other")];
        let seen = vec![(GiftId::from_random(2).as_uuid(), "again".to_owned())];
        let ran = decide(&cmds, found(&[Some("CREATED"), Some("QUEUED"), Some("SENT")]), Ok(seen));
        assert!(matches!(ran.answers[0], Ok(SendDecision::Queued(_))));
        assert!(matches!(ran.answers[1], Ok(SendDecision::Replay(_))));
        assert!(matches!(ran.answers[2], Ok(SendDecision::Conflict(Status::Sent))));
        assert!(ran.error.is_none());
    }
}
