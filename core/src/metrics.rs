//! The service's metrics: every name, its tags, and the calls that record them, through the
//! `metrics` facade. gift-bins installs the exporter (DogStatsD to the Datadog agent, or
//! Prometheus text on gift-local's `/metrics`); where none is installed (the simulation,
//! most tests) every call is a no-op, so recording never changes what the service decides.
//!
//! Names are Datadog's dotted style; Prometheus text shows them with `_` for `.`.
//! Durations are seconds. The monitors in `terraform/datadog.tf` use these names, and a
//! test checks that each name they use is one of [`NAMES`].

use metrics::{counter, gauge, histogram};

use crate::service::DeliveryOutcome;

/// Requests served, tagged `route` (the template), `method`, `status`.
pub const HTTP_REQUESTS: &str = "gift.http.requests";
/// Time to answer a request, same tags as [`HTTP_REQUESTS`].
pub const HTTP_REQUEST_DURATION: &str = "gift.http.request.duration";
/// Send requests answered, tagged `outcome` ([`SendTag`]).
pub const SENDS: &str = "gift.sends";
/// Messages received by the worker.
pub const WORKER_RECEIVED: &str = "gift.worker.received";
/// Messages per non-empty receive.
pub const WORKER_BATCH_SIZE: &str = "gift.worker.batch.size";
/// Pseudo-sends, tagged `outcome` `ok` or `error`.
pub const WORKER_PSEUDO_SENDS: &str = "gift.worker.pseudo_sends";
/// What became of each delivery, tagged `outcome` ([`outcome_tag`]).
pub const WORKER_OUTCOMES: &str = "gift.worker.outcomes";
/// From the send's acceptance (the gift's QUEUED time) to its SENT update.
pub const ACCEPT_TO_SENT: &str = "gift.accept_to_sent";
pub const RELAY_PUBLISHED: &str = "gift.relay.published";
pub const RELAY_PUBLISH_FAILURES: &str = "gift.relay.publish_failures";
/// Messages the relay published again because their gift outlived the stale deadline
/// still QUEUED (the message presumed lost).
pub const RELAY_REARMED: &str = "gift.relay.rearmed";
/// Outbox rows due, and how long the oldest has been due (0 when none is).
pub const OUTBOX_DEPTH: &str = "gift.outbox.depth";
pub const OUTBOX_OLDEST_AGE: &str = "gift.outbox.oldest_age";
/// The database pool: connections open, in use, and callers waiting for one.
pub const DB_POOL_SIZE: &str = "gift.db.pool.size";
pub const DB_POOL_IN_USE: &str = "gift.db.pool.in_use";
pub const DB_POOL_WAITING: &str = "gift.db.pool.waiting";

/// Every metric the service records.
pub const NAMES: [&str; 16] = [
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    SENDS,
    WORKER_RECEIVED,
    WORKER_BATCH_SIZE,
    WORKER_PSEUDO_SENDS,
    WORKER_OUTCOMES,
    ACCEPT_TO_SENT,
    RELAY_PUBLISHED,
    RELAY_PUBLISH_FAILURES,
    RELAY_REARMED,
    OUTBOX_DEPTH,
    OUTBOX_OLDEST_AGE,
    DB_POOL_SIZE,
    DB_POOL_IN_USE,
    DB_POOL_WAITING,
];

/// How a send request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendTag {
    Accepted,
    Replayed,
    Conflict,
    NotFound,
}

impl SendTag {
    pub fn as_str(self) -> &'static str {
        match self {
            SendTag::Accepted => "accepted",
            SendTag::Replayed => "replayed",
            SendTag::Conflict => "conflict",
            SendTag::NotFound => "not_found",
        }
    }
}

/// The `method` tag: the methods the API serves and the common others, everything else one
/// value, so a client's made-up methods cannot add series without end (exporters keep every
/// series they have seen).
fn method_tag(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The route templates the API serves, as static labels.
const ROUTES: [&str; 7] =
    ["/gifts", "/gifts/{gift_id}", "/gifts/{gift_id}/send", "/healthz", "/readyz", "/openapi.json", "unmatched"];

/// The statuses the API answers, as static labels.
const STATUSES: [(u16, &str); 13] = [
    (200, "200"),
    (201, "201"),
    (202, "202"),
    (400, "400"),
    (404, "404"),
    (405, "405"),
    (409, "409"),
    (413, "413"),
    (415, "415"),
    (422, "422"),
    (500, "500"),
    (503, "503"),
    (504, "504"),
];

/// A label from a fixed set when it is one, else its own copy: the labels of every request
/// are then built without an allocation (three a request otherwise).
fn label(value: &str, known: impl IntoIterator<Item = &'static str>) -> metrics::SharedString {
    known.into_iter().find(|k| *k == value).map_or_else(|| value.to_owned().into(), Into::into)
}

fn status_label(status: u16) -> metrics::SharedString {
    STATUSES.iter().find(|(code, _)| *code == status).map_or_else(|| status.to_string().into(), |(_, s)| (*s).into())
}

/// `route` is the route template (or `unmatched`), never the raw path.
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    let labels = [
        metrics::Label::new("route", label(route, ROUTES)),
        metrics::Label::new("method", method_tag(method)),
        metrics::Label::new("status", status_label(status)),
    ];
    counter!(HTTP_REQUESTS, labels.iter()).increment(1);
    histogram!(HTTP_REQUEST_DURATION, labels.iter()).record(seconds);
}

pub fn send(tag: SendTag) {
    counter!(SENDS, "outcome" => tag.as_str()).increment(1);
}

pub fn received(messages: usize) {
    counter!(WORKER_RECEIVED).increment(messages as u64);
    histogram!(WORKER_BATCH_SIZE).record(messages as f64);
}

pub fn pseudo_send(ok: bool) {
    counter!(WORKER_PSEUDO_SENDS, "outcome" => if ok { "ok" } else { "error" }).increment(1);
}

/// The `outcome` tag of a delivery.
pub fn outcome_tag(outcome: &DeliveryOutcome) -> &'static str {
    match outcome {
        DeliveryOutcome::Sent => "sent",
        DeliveryOutcome::LostRace => "lost_race",
        DeliveryOutcome::Duplicate => "duplicate",
        DeliveryOutcome::RetryLater => "retry_later",
        DeliveryOutcome::Failed => "failed",
        DeliveryOutcome::Poison(_) => "poison",
        DeliveryOutcome::Error(_) => "error",
    }
}

pub fn delivery(outcome: &DeliveryOutcome) {
    counter!(WORKER_OUTCOMES, "outcome" => outcome_tag(outcome)).increment(1);
}

pub fn accept_to_sent(seconds: f64) {
    histogram!(ACCEPT_TO_SENT).record(seconds);
}

pub fn relay_pass(published: u32, publish_failed: u32, stale: u32) {
    counter!(RELAY_PUBLISHED).increment(u64::from(published));
    counter!(RELAY_PUBLISH_FAILURES).increment(u64::from(publish_failed));
    counter!(RELAY_REARMED).increment(u64::from(stale));
}

pub fn outbox(depth: u64, oldest_age_seconds: f64) {
    gauge!(OUTBOX_DEPTH).set(depth as f64);
    gauge!(OUTBOX_OLDEST_AGE).set(oldest_age_seconds);
}

pub fn pool(size: usize, in_use: usize, waiting: usize) {
    gauge!(DB_POOL_SIZE).set(size as f64);
    gauge!(DB_POOL_IN_USE).set(in_use as f64);
    gauge!(DB_POOL_WAITING).set(waiting as f64);
}

#[cfg(test)]
mod tests {
    #[test]
    fn static_labels_read_as_their_values() {
        for route in super::ROUTES.into_iter().chain(["/elsewhere"]) {
            assert_eq!(&*super::label(route, super::ROUTES), route);
        }
        for status in [200u16, 404, 503, 299, 599] {
            assert_eq!(&*super::status_label(status), status.to_string());
        }
    }

    use super::*;

    #[test]
    fn a_made_up_method_is_one_tag_value() {
        assert_eq!(method_tag("POST"), "POST");
        assert_eq!(method_tag("BREW"), "other");
        assert_eq!(method_tag("PROPFIND"), "other");
    }

    #[test]
    fn names_are_distinct_and_dotted_under_gift() {
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NAMES.len());
        assert!(NAMES.iter().all(|n| n.starts_with("gift.") && !n.ends_with('.')), "{NAMES:?}");
    }
}
