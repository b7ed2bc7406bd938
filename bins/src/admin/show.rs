//! `show`, `list-queued` and `list-failed`: reads only.

use std::fmt;

use chrono::Duration;
use gift_core::domain::{GiftId, IdempotencyKey, Timestamp};
use gift_core::http::GiftView;
use gift_runtime::postgres::admin::GiftRecord;
use gift_runtime::postgres::PgStore;
use serde::Serialize;

use super::report::{gift_line, time, Finished, Report};
use super::AdminError;

/// The gift as `GET /gifts/{gift_id}` answers it, and what surrounds it.
#[derive(Serialize)]
struct Shown {
    gift: GiftView,
    send_requests: Vec<SendRequestJson>,
    outbox: Vec<OutboxJson>,
    logs: LogPointers,
}

#[derive(Serialize)]
struct SendRequestJson {
    request_id: IdempotencyKey,
    created_at: Timestamp,
}

#[derive(Serialize)]
struct OutboxJson {
    request_id: IdempotencyKey,
    available_at: Timestamp,
    publishes: i32,
}

/// Where the gift's log lines are: Datadog (the default destination) or CloudWatch Logs
/// Insights on the services' groups (`app_log_destination = "cloudwatch"`).
#[derive(Serialize)]
struct LogPointers {
    datadog: String,
    cloudwatch_insights: String,
}

impl LogPointers {
    fn of(id: GiftId) -> Self {
        Self {
            datadog: format!("@gift_id:{id}"),
            cloudwatch_insights: format!(
                "fields @timestamp, service, event, status, request_id, error_code, message \
                 | filter gift_id = \"{id}\" | sort @timestamp asc"
            ),
        }
    }
}

impl From<GiftRecord> for Shown {
    fn from(r: GiftRecord) -> Self {
        Self {
            logs: LogPointers::of(r.gift.id),
            gift: GiftView::from(&r.gift),
            send_requests: r
                .send_requests
                .into_iter()
                .map(|s| SendRequestJson { request_id: s.request_id, created_at: s.created_at })
                .collect(),
            outbox: r
                .outbox
                .into_iter()
                .map(|o| OutboxJson { request_id: o.request_id, available_at: o.available_at, publishes: o.publishes })
                .collect(),
        }
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.gift;
        writeln!(f, "gift {}  {}", g.gift_id, g.status)?;
        writeln!(f, "  code        {}", g.code.as_str())?;
        writeln!(f, "  amount      {}", g.amount.get())?;
        writeln!(f, "  message     {}", g.message.as_ref().map_or("-", |m| m.as_str()))?;
        writeln!(f, "  last_error  {}", g.last_error.as_deref().unwrap_or("-"))?;
        writeln!(f, "  created_at  {}", time(&g.created_at))?;
        writeln!(f, "  updated_at  {}", time(&g.updated_at))?;
        writeln!(f, "send requests ({})", self.send_requests.len())?;
        for s in &self.send_requests {
            writeln!(f, "  {}  accepted {}", s.request_id.as_str(), time(&s.created_at))?;
        }
        writeln!(f, "outbox ({})", self.outbox.len())?;
        for o in &self.outbox {
            let (id, due) = (o.request_id.as_str(), time(&o.available_at));
            writeln!(f, "  {id}  due {due}  published {} time(s)", o.publishes)?;
        }
        writeln!(f, "logs")?;
        writeln!(f, "  Datadog     {}", self.logs.datadog)?;
        writeln!(f, "  CloudWatch  {}", self.logs.cloudwatch_insights)
    }
}

impl Report for Shown {}

pub async fn show(store: &PgStore, id: GiftId) -> Result<Finished, AdminError> {
    let record = store.admin().gift_record(id).await?.ok_or(AdminError::NoSuchGift(id))?;
    Ok(Finished::of(&Shown::from(record)))
}

#[derive(Serialize)]
struct Listed {
    /// What was asked for, in words.
    listing: String,
    gifts: Vec<GiftView>,
}

impl fmt::Display for Listed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.listing, self.gifts.len())?;
        self.gifts.iter().try_for_each(|g| gift_line(f, g))
    }
}

impl Report for Listed {}

pub async fn list_queued(
    store: &PgStore,
    now: Timestamp,
    older_than_minutes: u32,
    limit: u32,
) -> Result<Finished, AdminError> {
    let before = now - Duration::minutes(i64::from(older_than_minutes));
    let gifts = store.admin().queued_untouched_since(before, limit).await?;
    Ok(Finished::of(&Listed {
        listing: format!("QUEUED gifts not updated for {older_than_minutes} min (at most {limit})"),
        gifts: gifts.iter().map(GiftView::from).collect(),
    }))
}

pub async fn list_failed(store: &PgStore, limit: u32) -> Result<Finished, AdminError> {
    let gifts = store.admin().failed(limit).await?;
    Ok(Finished::of(&Listed {
        listing: format!("FAILED gifts, the most recent first (at most {limit})"),
        gifts: gifts.iter().map(GiftView::from).collect(),
    }))
}
