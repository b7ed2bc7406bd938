use super::{Amount, GiftCode, GiftId, IdempotencyKey, Message, Status, Timestamp};

/// A gift as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gift {
    pub id: GiftId,
    pub code: GiftCode,
    pub amount: Amount,
    pub message: Option<Message>,
    pub status: Status,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Gift {
    pub fn new(id: GiftId, code: GiftCode, amount: Amount, message: Option<Message>, now: Timestamp) -> Self {
        Self { id, code, amount, message, status: Status::Created, last_error: None, created_at: now, updated_at: now }
    }
}

/// The answer to an accepted send; a replay of the same key returns exactly this.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SendAccepted {
    #[schema(value_type = String, format = Uuid)]
    pub gift_id: GiftId,
    pub status: Status,
    /// The request's Idempotency-Key.
    #[schema(value_type = String)]
    pub request_id: IdempotencyKey,
}

/// The queue message body: `{"gift_id", "request_id"}`. The request id travels with it so
/// one send can be followed from the API's log line to the worker's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct SendMessage {
    pub gift_id: GiftId,
    pub request_id: IdempotencyKey,
}

impl SendMessage {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a SendMessage always serialises")
    }

    pub fn from_body(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}
