//! The one place where errors become status codes and the error shape
//! `{"error": {"code", "message"}, "request_id"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::views::{ErrorBody, ErrorDetail};
use crate::domain::IdempotencyKey;
use crate::error::AppError;

/// An [`AppError`] with the request's Idempotency-Key, if it had a valid one.
#[derive(Debug)]
pub struct ApiError {
    pub error: AppError,
    pub request_id: Option<IdempotencyKey>,
}

impl ApiError {
    pub fn new(error: impl Into<AppError>, request_id: Option<IdempotencyKey>) -> Self {
        Self { error: error.into(), request_id }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        Self { error, request_id: None }
    }
}

fn status_and_code(e: &AppError) -> (StatusCode, &'static str) {
    match e {
        AppError::Validation(_) => (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
        AppError::NotFound | AppError::RouteNotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        AppError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
        AppError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        AppError::Conflict { .. } => (StatusCode::CONFLICT, "CONFLICT"),
        AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
        AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = status_and_code(&self.error);
        // Server-side details are logged, never returned: they may name hosts or queries.
        let message = match &self.error {
            AppError::Internal(detail) | AppError::Unavailable(detail) => {
                tracing::error!(error_code = code, error_message = %detail, request_id = self.request_id.as_ref().map(|k| k.as_str()), "request failed");
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    "the service is temporarily unavailable; retry later".to_owned()
                } else {
                    "internal error".to_owned()
                }
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail { code: code.to_owned(), message },
            request_id: self.request_id.map(String::from),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
