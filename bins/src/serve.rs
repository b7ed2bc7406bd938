//! Serving the core router: transport limits, request logs, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::MatchedPath;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use gift_core::http::ApiError;
use gift_core::AppError;
use std::time::Instant;
use tower::ServiceBuilder;

use crate::config::HttpArgs;

/// Wraps the router with, outermost first: request logging, error mapping for the
/// layers below, load shedding at `MAX_CONCURRENT_REQUESTS` (503 + Retry-After at once,
/// instead of an unbounded queue), and `REQUEST_TIMEOUT_MS` (503).
pub fn with_transport(router: Router, http: &HttpArgs) -> Router {
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|e: BoxError| async move {
            let reason = if e.is::<tower::timeout::error::Elapsed>() {
                "request timed out"
            } else if e.is::<tower::load_shed::error::Overloaded>() {
                "too many concurrent requests"
            } else {
                "transport error"
            };
            ApiError::from(AppError::Unavailable(reason.into())).into_response()
        }))
        .load_shed()
        .concurrency_limit(http.max_concurrent_requests)
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
