//! Serving the core router: transport limits, request logs, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::MatchedPath;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use gift_core::domain::IdempotencyKey;
use gift_core::http::ApiError;
use gift_core::AppError;
use std::time::Instant;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;

use crate::config::HttpArgs;

/// Wraps the router with, outermost first: request logging, error mapping for the
/// layers below, load shedding at `MAX_CONCURRENT_REQUESTS` (503 + Retry-After at once,
/// instead of an unbounded queue), and `REQUEST_TIMEOUT_MS` (503). Those 503s echo the
/// request's Idempotency-Key like every other answer, so a client can match them.
///
/// `Router::layer` wraps each route on its own, so the limit takes a semaphore shared by
/// every route (`GlobalConcurrencyLimitLayer`); tower's `ConcurrencyLimitLayer` would give
/// each route a limit of its own, and the API as a whole several times the setting.
pub fn with_transport(router: Router, http: &HttpArgs) -> Router {
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|headers: HeaderMap, e: BoxError| async move {
            let reason = if e.is::<tower::timeout::error::Elapsed>() {
                "request timed out"
            } else if e.is::<tower::load_shed::error::Overloaded>() {
                "too many concurrent requests"
            } else {
                "transport error"
            };
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .and_then(|k| IdempotencyKey::parse(k).ok());
            ApiError::new(AppError::Unavailable(reason.into()), key).into_response()
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(http.max_concurrent_requests))
        .timeout(Duration::from_millis(http.request_timeout_ms));
    router.layer(limits).layer(middleware::from_fn(log_request))
}

/// One log line per request with the route template (not the raw path, which would carry
/// ids), the status and the latency.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.chars().take(255).collect::<String>());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    let route = route.as_deref().unwrap_or("unmatched");
    if status >= 500 {
        tracing::error!(event = "HTTP", %method, route, http_status = status, latency_ms, request_id = key, "request served");
    } else {
        tracing::info!(event = "HTTP", %method, route, http_status = status, latency_ms, request_id = key, "request served");
    }
    response
}

/// Binds and serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    router: Router,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(event = "LISTENING", addr = %listener.local_addr()?, "listening");
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    use super::*;

    fn limits(max_concurrent_requests: usize) -> HttpArgs {
        HttpArgs {
            port: 0,
            max_body_bytes: 1024,
            request_timeout_ms: 10_000,
            max_concurrent_requests,
            publish_grace_ms: 0,
        }
    }

    fn get_request(path: &str) -> Request {
        Request::get(path).body(Body::empty()).expect("a valid request")
    }

    /// `MAX_CONCURRENT_REQUESTS` bounds the whole API, not each route on its own: a request
    /// in flight on one route counts against a request to another.
    #[tokio::test]
    async fn the_concurrency_limit_spans_every_route() {
        let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let held = {
            let (entered, release) = (entered.clone(), release.clone());
            move || async move {
                entered.notify_one();
                release.notified().await;
                "done"
            }
        };
        let router = Router::new().route("/held", get(held)).route("/other", get(|| async { "other" }));
        let router = with_transport(router, &limits(1));

        let in_flight = tokio::spawn(router.clone().oneshot(get_request("/held")));
        entered.notified().await;
        let shed = router.clone().oneshot(get_request("/other")).await.expect("infallible");
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(shed.headers().contains_key("retry-after"), "a shed request says when to retry");

        release.notify_one();
        let first = in_flight.await.expect("the held request finishes").expect("infallible");
        assert_eq!(first.status(), StatusCode::OK);
        let after = router.oneshot(get_request("/other")).await.expect("infallible");
        assert_eq!(after.status(), StatusCode::OK, "the permit returns when the held request ends");
    }

    /// A send that runs past `REQUEST_TIMEOUT_MS` is answered 503 in the error shape with
    /// its key echoed (the real-stack run found it answered `"request_id": null`).
    #[tokio::test]
    async fn a_timed_out_send_echoes_its_key() {
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        };
        let router = Router::new().route("/slow", axum::routing::post(slow));
        let router = with_transport(router, &HttpArgs { request_timeout_ms: 10, ..limits(8) });
        let req = Request::post("/slow").header("idempotency-key", "Key-1").body(Body::empty()).expect("a request");
        let res = router.oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = http_body_util::BodyExt::collect(res.into_body()).await.expect("a body").to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(body["request_id"], "Key-1", "{body}");
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
    }
}
