//! Request handlers: parse into domain types, call a service, shape the answer.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::extract::JsonBody;
use super::views::{CreateGiftRequest, CreatedGift, ErrorBody, GiftView, Health, Readiness};
use super::{ApiError, ApiState};
use crate::domain::{GiftId, IdempotencyKey, SendAccepted, TraceParent};
use crate::error::AppError;
use crate::service::{self, SendOutcome};

type ApiHandle = State<Arc<ApiState>>;

/// Create a gift.
#[utoipa::path(
    post, path = "/gifts", tag = "gifts",
    request_body(content = CreateGiftRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = CreatedGift),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable; retry", body = ErrorBody),
    )
)]
pub(super) async fn create_gift(
    State(state): ApiHandle,
    JsonBody(body): JsonBody<CreateGiftRequest>,
) -> Result<Response, ApiError> {
    let gift = service::create_gift(&state.deps, body.amount, body.message).await?;
    Ok((StatusCode::CREATED, Json(CreatedGift::from(&gift))).into_response())
}

/// Read a gift.
#[utoipa::path(
    get, path = "/gifts/{gift_id}", tag = "gifts",
    params(("gift_id" = String, Path, format = Uuid, description = "The gift's id")),
    responses(
        (status = 200, description = "The gift", body = GiftView),
        (status = 400, description = "gift_id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such gift", body = ErrorBody),
        (status = 503, description = "Database unavailable; retry", body = ErrorBody),
    )
)]
pub(super) async fn get_gift(
    State(state): ApiHandle,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_gift_id(path, None)?;
    let gift = state.deps.store.get_gift(id).await.map_err(AppError::from)?.ok_or(AppError::NotFound)?;
    Ok(Json(GiftView::from(&gift)).into_response())
}

/// Request sending a gift. Idempotent per `(gift_id, Idempotency-Key)`.
#[utoipa::path(
    post, path = "/gifts/{gift_id}/send", tag = "gifts",
    params(
        ("gift_id" = String, Path, format = Uuid, description = "The gift's id"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
         description = "Client-chosen key; the same key replays the first answer"),
    ),
    responses(
        (status = 202, description = "Accepted: the gift is QUEUED", body = SendAccepted),
        (status = 200, description = "Replay of an accepted request: the identical body", body = SendAccepted),
        (status = 400, description = "Missing or invalid Idempotency-Key, or gift_id not a UUID", body = ErrorBody),
        (status = 404, description = "No such gift", body = ErrorBody),
        (status = 409, description = "Already queued, sent or failed under another key", body = ErrorBody),
        (status = 503, description = "Database unavailable; retry with the same key", body = ErrorBody),
    )
)]
pub(super) async fn send_gift(
    State(state): ApiHandle,
    key: IdempotencyKey,
    path: Result<Path<String>, PathRejection>,
    trace: Option<Extension<TraceParent>>,
) -> Result<Response, ApiError> {
    let id = parse_gift_id(path, Some(&key))?;
    let trace = trace.map(|Extension(t)| t);
    let outcome = service::request_send(&state.deps, id, key.clone(), state.config.outbox, trace)
        .await
        .map_err(|e| ApiError::new(e, Some(key)))?;
    Ok(match outcome {
        SendOutcome::Accepted(body) => (StatusCode::ACCEPTED, Json(body)).into_response(),
        SendOutcome::Replayed(body) => (StatusCode::OK, Json(body)).into_response(),
    })
}

/// Liveness: the process answers. Never touches the database.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, description = "Alive", body = Health)))]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database and the queue answer.
#[utoipa::path(
    get, path = "/readyz", tag = "probes",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready, with the reason", body = Readiness),
    )
)]
pub(super) async fn readyz(State(state): ApiHandle) -> Response {
    // The probe is reachable through the ALB: the answer names the failing dependency,
    // the driver's text (hosts, user names) goes to the log only.
    let failure = if let Err(e) = state.deps.store.ping().await {
        Some(("database unavailable", e.to_string()))
    } else if let Err(e) = state.deps.queue.ping().await {
        Some(("queue unavailable", e.to_string()))
    } else {
        None
    };
    match failure {
        None => Json(Readiness { status: "ready", reason: None }).into_response(),
        Some((reason, detail)) => {
            tracing::warn!(event = "NOT_READY", error_code = reason, error_message = %detail, "readiness check failed");
            let reason = reason.to_owned();
            (StatusCode::SERVICE_UNAVAILABLE, Json(Readiness { status: "not_ready", reason: Some(reason) }))
                .into_response()
        }
    }
}

pub(super) async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], super::openapi_json()).into_response()
}

pub(super) async fn route_not_found(uri: Uri) -> ApiError {
    AppError::RouteNotFound(uri.path().to_owned()).into()
}

pub(super) async fn method_not_allowed() -> ApiError {
    AppError::MethodNotAllowed.into()
}

fn parse_gift_id(path: Result<Path<String>, PathRejection>, key: Option<&IdempotencyKey>) -> Result<GiftId, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::new(AppError::Validation(e.body_text()), key.cloned()))?;
    GiftId::parse(&raw).map_err(|e| ApiError::new(e, key.cloned()))
}
