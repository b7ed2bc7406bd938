//! Extractors that parse requests into domain types and reject in the error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::domain::IdempotencyKey;
use crate::error::AppError;

/// A JSON object body parsed by serde into `T`, whose fields are domain types. Unlike
/// axum's `Json` it does not insist on a `Content-Type`, and every rejection is a
/// `VALIDATION_ERROR` (or `PAYLOAD_TOO_LARGE`) naming what was wrong. Every body this API
/// takes is an object; the check comes first because serde would also fill a struct from
/// a JSON array.
pub(super) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::Validation(format!("could not read the request body: {rejection}"))
            }
        })?;
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(AppError::Validation("the request body must be a JSON object".into()).into());
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            let text = if e.is_data() { e.to_string() } else { format!("malformed JSON: {e}") };
            AppError::Validation(text).into()
        })
    }
}

/// The `Idempotency-Key` header, required.
impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get("idempotency-key")
            .ok_or_else(|| AppError::Validation("Idempotency-Key header is required".into()))?;
        let text = value
            .to_str()
            .map_err(|_| AppError::Validation("Idempotency-Key must contain only visible ASCII characters".into()))?;
        Ok(IdempotencyKey::parse(text).map_err(AppError::from)?)
    }
}
