//! The HTTP surface: [`router`] builds every route of the API over [`ApiState`]; the
//! production binaries add transport middleware (timeouts, limits, tracing) around it.

mod error;
mod extract;
mod handlers;
mod views;

pub use error::ApiError;
pub use views::{ErrorBody, GiftView};

/// The OpenAPI 3.1 description of the API, generated from the handlers and body types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Gift service", description = "Create gifts and send them asynchronously, idempotently."),
    paths(handlers::create_gift, handlers::get_gift, handlers::send_gift, handlers::healthz, handlers::readyz),
    tags((name = "gifts"), (name = "probes"))
)]
pub struct ApiDoc;

/// The document served at `/openapi.json` and committed as `docs/openapi.json`.
pub fn openapi_json() -> String {
    <ApiDoc as utoipa::OpenApi>::openapi().to_pretty_json().expect("the OpenAPI document serialises")
}

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::defaults;
use crate::service::Deps;

/// Settings the HTTP layer needs besides the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiConfig {
    /// When an accepted send's outbox row is due for the relay: after the grace period if the
    /// API did not publish it, at the stale deadline after its publish.
    pub outbox: crate::service::OutboxTiming,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            outbox: crate::service::OutboxTiming {
                publish_grace: Duration::from_millis(defaults::PUBLISH_GRACE_MS),
                stale_after: Duration::from_secs(defaults::STALE_QUEUED_SECONDS),
            },
            max_body_bytes: defaults::MAX_BODY_BYTES,
        }
    }
}

pub struct ApiState {
    pub deps: Deps,
    pub config: ApiConfig,
}

/// The complete API: `/gifts`, `/gifts/{gift_id}`, `/gifts/{gift_id}/send`, `/healthz`,
/// `/readyz`; anything else answers in the error shape.
pub fn router(deps: Deps, config: ApiConfig) -> Router {
    let state = Arc::new(ApiState { deps, config });
    Router::new()
        .route("/gifts", post(handlers::create_gift))
        .route("/gifts/{gift_id}", get(handlers::get_gift))
        .route("/gifts/{gift_id}/send", post(handlers::send_gift))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/openapi.json", get(handlers::openapi))
        .fallback(handlers::route_not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}
