//! Request handlers: parse into domain types, call a service, shape the answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, ApiState};
use crate::domain::{Amount, Gift, GiftId, IdempotencyKey, Message};
use crate::error::AppError;
use crate::service::{self, SendOutcome};

type Shared = State<Arc<ApiState>>;

pub(super) async fn create_gift(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = parse_json_object(body)?;
    let amount = Amount::parse_json(body.get("amount")).map_err(AppError::from)?;
    let message = Message::parse_json(body.get("message")).map_err(AppError::from)?;
    let deps = &state.deps;
    let gift = service::create_gift(&*deps.store, &*deps.env, amount, message).await?;
    let body = json!({
        "gift_id": gift.id,
        "code": gift.code,
        "status": gift.status,
        "created_at": gift.created_at,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(super) async fn get_gift(
    State(state): Shared,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_gift_id(path, None)?;
    let gift = state.deps.store.get_gift(id).await.map_err(AppError::from)?.ok_or(AppError::NotFound)?;
    Ok(Json(gift_view(&gift)).into_response())
}

pub(super) async fn send_gift(
    State(state): Shared,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => return Err(AppError::Validation("Idempotency-Key header is required".into()).into()),
        Some(v) => v
            .to_str()
            .map_err(|_| AppError::Validation("Idempotency-Key must contain only visible ASCII characters".into()))
            .and_then(|s| IdempotencyKey::parse(s).map_err(AppError::from))?,
    };
    let id = parse_gift_id(path, Some(&key))?;
    let deps = &state.deps;
    let outcome =
        service::request_send(&*deps.store, &*deps.queue, &*deps.env, id, key.clone(), state.config.publish_grace)
            .await
            .map_err(|e| ApiError::new(e, Some(key)))?;
    Ok(match outcome {
        SendOutcome::Accepted(body) => (StatusCode::ACCEPTED, Json(body)).into_response(),
        SendOutcome::Replayed(body) => (StatusCode::OK, Json(body)).into_response(),
    })
}

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub(super) async fn readyz(State(state): Shared) -> Response {
    let reason = if let Err(e) = state.deps.store.ping().await {
        Some(format!("database: {e}"))
    } else if let Err(e) = state.deps.queue.ping().await {
        Some(format!("queue: {e}"))
    } else {
        None
    };
    match reason {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(reason) => {
            tracing::warn!(event = "NOT_READY", error_message = %reason, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not_ready", "reason": reason}))).into_response()
        }
    }
}

pub(super) async fn route_not_found(uri: Uri) -> ApiError {
    AppError::RouteNotFound(uri.path().to_owned()).into()
}

pub(super) async fn method_not_allowed() -> ApiError {
    AppError::MethodNotAllowed.into()
}

fn parse_json_object(body: Result<Bytes, BytesRejection>) -> Result<serde_json::Map<String, Value>, AppError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::Validation(format!("could not read the request body: {rejection}"))
        }
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AppError::Validation("the request body must be a JSON object".into())),
        Err(e) => Err(AppError::Validation(format!("malformed JSON: {e}"))),
    }
}

fn parse_gift_id(path: Result<Path<String>, PathRejection>, key: Option<&IdempotencyKey>) -> Result<GiftId, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::new(AppError::Validation(e.body_text()), key.cloned()))?;
    GiftId::parse(&raw).map_err(|e| ApiError::new(e, key.cloned()))
}

fn gift_view(g: &Gift) -> Value {
    json!({
        "gift_id": g.id,
        "code": g.code,
        "amount": g.amount,
        "message": g.message,
        "status": g.status,
        "last_error": g.last_error,
        "created_at": g.created_at,
        "updated_at": g.updated_at,
    })
}
