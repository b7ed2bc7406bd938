//! The JSON bodies the API reads and writes. They are what gets serialised, and their
//! schemas are what `/openapi.json` publishes, so the document cannot drift from the code.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Gift, Status, Timestamp};

/// `POST /gifts` body. Parsed by hand into domain types (for precise error messages); this
/// type only describes it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateGiftRequest {
    /// A positive integer.
    #[schema(minimum = 1, format = Int64)]
    amount: i64,
    /// At most 500 characters; no NUL.
    #[schema(max_length = 500, pattern = "^[^\\u0000]*$", nullable)]
    message: Option<String>,
}

/// `201` answer to `POST /gifts`.
#[derive(Serialize, ToSchema)]
pub struct CreatedGift {
    #[schema(value_type = String, format = Uuid)]
    pub gift_id: crate::domain::GiftId,
    #[schema(value_type = String, example = "GIFT-7K2M-Q9TB-XW4D")]
    pub code: crate::domain::GiftCode,
    pub status: Status,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<&Gift> for CreatedGift {
    fn from(g: &Gift) -> Self {
        Self { gift_id: g.id, code: g.code.clone(), status: g.status, created_at: g.created_at }
    }
}

/// `GET /gifts/{gift_id}` answer.
#[derive(Serialize, ToSchema)]
pub struct GiftView {
    #[schema(value_type = String, format = Uuid)]
    pub gift_id: crate::domain::GiftId,
    #[schema(value_type = String)]
    pub code: crate::domain::GiftCode,
    #[schema(value_type = i64, minimum = 1)]
    pub amount: crate::domain::Amount,
    #[schema(value_type = Option<String>, nullable)]
    pub message: Option<crate::domain::Message>,
    pub status: Status,
    #[schema(nullable)]
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<&Gift> for GiftView {
    fn from(g: &Gift) -> Self {
        Self {
            gift_id: g.id,
            code: g.code.clone(),
            amount: g.amount,
            message: g.message.clone(),
            status: g.status,
            last_error: g.last_error.clone(),
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

/// Every error.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// The request's Idempotency-Key when it had a valid one.
    #[schema(nullable)]
    pub request_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// VALIDATION_ERROR, NOT_FOUND, METHOD_NOT_ALLOWED, CONFLICT, PAYLOAD_TOO_LARGE,
    /// SERVICE_UNAVAILABLE or INTERNAL_ERROR.
    pub code: String,
    pub message: String,
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// `GET /readyz`: `{"status":"ready"}`, or 503 with `status` "not_ready" and a reason.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
