//! Every endpoint and status code of the API, through `Router::oneshot` over the in-memory
//! adapters: what a client sees, body and all.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use gift_core::domain::{Gift, GiftId, Timestamp};
use gift_core::http::{router, ApiConfig};
use gift_core::ports::{OutboxEntry, Queue, SendCommand, SendDecision, Store};
use gift_core::service::{Deps, PseudoDispatcher};
use gift_core::StoreError;
use gift_runtime::memory::{MemoryQueue, MemoryStore, QueueSettings};
use gift_runtime::rt::SystemEnv;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

struct App {
    router: Router,
    queue: Arc<MemoryQueue>,
    store: Arc<MemoryStore>,
}

fn app() -> App {
    let store = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::new(QueueSettings::default()));
    let env = Arc::new(SystemEnv);
    let deps = Deps {
        store: store.clone(),
        queue: queue.clone(),
        env: env.clone(),
        dispatcher: Arc::new(PseudoDispatcher::new(env, 0.0)),
    };
    App { router: router(deps, ApiConfig::default()), queue, store }
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: &str,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let res = router.clone().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, value, headers)
}

/// Asserts the error shape and returns the code.
fn error_code(body: &Value, request_id: Option<&str>) -> String {
    let message = body["error"]["message"].as_str().expect("error.message is a string");
    assert!(!message.is_empty());
    assert_eq!(body["request_id"], request_id.map_or(Value::Null, |k| json!(k)), "{body}");
    body["error"]["code"].as_str().expect("error.code is a string").to_owned()
}

async fn create(router: &Router) -> String {
    let (status, body, _) = call(router, "POST", "/gifts", None, r#"{"amount": 500, "message": "for you"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["gift_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn create_answers_201_with_a_code_and_get_reads_it_back() {
    let app = app();
    let (status, created, _) =
        call(&app.router, "POST", "/gifts", None, r#"{"amount": 500, "message": "for you"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["status"], "CREATED");
    assert!(created["code"].as_str().unwrap().starts_with("GIFT-"));
    let id = created["gift_id"].as_str().unwrap();
    let (status, got, _) = call(&app.router, "GET", &format!("/gifts/{id}"), None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["gift_id"], created["gift_id"]);
    assert_eq!(got["code"], created["code"]);
    assert_eq!(got["created_at"], created["created_at"]);
    assert_eq!(
        (got["amount"].clone(), got["message"].clone(), got["status"].clone()),
        (json!(500), json!("for you"), json!("CREATED"))
    );
    assert_eq!(got["last_error"], Value::Null);
    // No message is fine too.
    let (status, _, _) = call(&app.router, "POST", "/gifts", None, r#"{"amount": 1}"#).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn send_queues_replays_identically_and_conflicts_on_another_key() {
    let app = app();
    let id = create(&app.router).await;
    let uri = format!("/gifts/{id}/send");
    let (status, first, _) = call(&app.router, "POST", &uri, Some("key-1"), "").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first, json!({"gift_id": id, "status": "QUEUED", "request_id": "key-1"}));
    let (status, again, _) = call(&app.router, "POST", &uri, Some("key-1"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first, "a replay must return the identical body");
    let (status, conflict, _) = call(&app.router, "POST", &uri, Some("key-2"), "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&conflict, Some("key-2")), "CONFLICT");
    // Exactly one message was published, carrying the request id.
    let msgs = app.queue.receive(10, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(serde_json::from_str::<Value>(&msgs[0].body).unwrap(), json!({"gift_id": id, "request_id": "key-1"}));
    // The row stays, due only at the stale deadline in case the message is lost.
    let rows = app.store.outbox_of(GiftId::parse(&id).unwrap());
    let soonest = gift_core::ports::Env::now(&SystemEnv)
        + chrono::Duration::seconds(gift_core::defaults::STALE_QUEUED_SECONDS as i64 - 60);
    assert!(
        matches!(&rows[..], [(key, due)] if key.as_str() == "key-1" && *due > soonest),
        "a published send's outbox row waits for the stale deadline: {rows:?}"
    );
    let (_, got, _) = call(&app.router, "GET", &format!("/gifts/{id}"), None, "").await;
    assert_eq!(got["status"], "QUEUED");
}

#[tokio::test]
async fn bad_create_bodies_are_400_validation_errors() {
    let app = app();
    for body in [
        "",
        "{",
        "[1]",
        "null",
        r#"{}"#,
        r#"{"amount": 0}"#,
        r#"{"amount": -5}"#,
        r#"{"amount": 1.5}"#,
        r#"{"amount": "10"}"#,
        r#"{"amount": 99999999999999999999}"#,
        r#"{"amount": 10, "message": 7}"#,
        r#"{"amount": 10, "message": "a\u0000b"}"#,
    ] {
        let (status, value, _) = call(&app.router, "POST", "/gifts", None, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {value}");
        assert_eq!(error_code(&value, None), "VALIDATION_ERROR", "{body}");
    }
    let long = format!(r#"{{"amount": 10, "message": "{}"}}"#, "x".repeat(501));
    let (status, value, _) = call(&app.router, "POST", "/gifts", None, &long).await;
    assert_eq!((status, error_code(&value, None).as_str()), (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"));
    let ok = format!(r#"{{"amount": 10, "message": "{}"}}"#, "x".repeat(500));
    assert_eq!(call(&app.router, "POST", "/gifts", None, &ok).await.0, StatusCode::CREATED);
    assert!(app.store.gifts().len() == 1, "rejected input must write nothing");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = app();
    let huge = format!(r#"{{"amount": 10, "message": "{}"}}"#, "x".repeat(64 * 1024));
    let (status, value, _) = call(&app.router, "POST", "/gifts", None, &huge).await;
    assert_eq!((status, error_code(&value, None).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"));
}

#[tokio::test]
async fn bad_keys_and_ids_are_400_and_unknown_gifts_404() {
    let app = app();
    let id = create(&app.router).await;
    let uri = format!("/gifts/{id}/send");
    let (status, value, _) = call(&app.router, "POST", &uri, None, "").await;
    assert_eq!((status, error_code(&value, None).as_str()), (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"));
    assert!(value["error"]["message"].as_str().unwrap().contains("Idempotency-Key"));
    for bad in ["", "has space", &"k".repeat(256)] {
        let (status, value, _) = call(&app.router, "POST", &uri, Some(bad), "").await;
        assert_eq!(
            (status, error_code(&value, None).as_str()),
            (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
            "{bad:?}"
        );
    }
    let (status, value, _) = call(&app.router, "POST", &uri, Some(&"k".repeat(255)), "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{value}");

    let (status, value, _) = call(&app.router, "GET", "/gifts/not-a-uuid", None, "").await;
    assert_eq!((status, error_code(&value, None).as_str()), (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"));
    let (status, value, _) = call(&app.router, "POST", "/gifts/not-a-uuid/send", Some("k"), "").await;
    assert_eq!((status, error_code(&value, Some("k")).as_str()), (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"));
    let unknown = GiftId::from_random(1);
    let (status, value, _) = call(&app.router, "GET", &format!("/gifts/{unknown}"), None, "").await;
    assert_eq!((status, error_code(&value, None).as_str()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    let (status, value, _) = call(&app.router, "POST", &format!("/gifts/{unknown}/send"), Some("k"), "").await;
    assert_eq!((status, error_code(&value, Some("k")).as_str()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = app();
    let (status, value, _) = call(&app.router, "GET", "/nope", None, "").await;
    assert_eq!((status, error_code(&value, None).as_str()), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    let (status, value, _) = call(&app.router, "DELETE", "/gifts", None, "").await;
    assert_eq!((status, error_code(&value, None).as_str()), (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"));
}

#[tokio::test]
async fn probes_answer() {
    let app = app();
    assert_eq!(call(&app.router, "GET", "/healthz", None, "").await.1, json!({"status": "ok"}));
    assert_eq!(call(&app.router, "GET", "/readyz", None, "").await.1, json!({"status": "ready"}));
}

/// A store whose database is down.
struct DownStore;

#[async_trait]
impl Store for DownStore {
    async fn insert_gift(&self, _: &Gift) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn get_gift(&self, _: GiftId) -> Result<Option<Gift>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn request_send(&self, _: &SendCommand) -> Result<SendDecision, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn mark_sent(&self, _: GiftId, _: Timestamp) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn mark_failed(&self, _: GiftId, _: &str, _: Timestamp) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn outbox_claim(&self, _: Timestamp, _: Timestamp, _: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn outbox_published(&self, _: &OutboxEntry, _: Timestamp) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn a_database_outage_is_503_with_retry_after_but_healthz_stays_ok() {
    let env = Arc::new(SystemEnv);
    let deps = Deps {
        store: Arc::new(DownStore),
        queue: Arc::new(MemoryQueue::new(QueueSettings::default())),
        env: env.clone(),
        dispatcher: Arc::new(PseudoDispatcher::new(env, 0.0)),
    };
    let router = router(deps, ApiConfig::default());
    let (status, value, headers) = call(&router, "POST", "/gifts", None, r#"{"amount": 3}"#).await;
    assert_eq!((status, error_code(&value, None).as_str()), (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"));
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    assert!(!value.to_string().contains("connection refused"), "driver details must not leak: {value}");
    let (status, value, _) =
        call(&router, "POST", &format!("/gifts/{}/send", GiftId::from_random(3)), Some("k"), "").await;
    assert_eq!(
        (status, error_code(&value, Some("k")).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE")
    );
    let (status, value, _) = call(&router, "GET", "/readyz", None, "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(value["status"], "not_ready");
    assert_eq!(value["reason"], "database unavailable", "the reason must not carry driver text");
    assert_eq!(call(&router, "GET", "/healthz", None, "").await.0, StatusCode::OK);
}
