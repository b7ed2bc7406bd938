//! The JSON bodies the API reads and writes. They are what gets serialised, and their
//! schemas are what `/openapi.json` publishes, so the document cannot drift from the code.

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

use crate::domain::{Amount, Gift, Message, Status, Timestamp};

// Parsed by serde into the domain types: their `Deserialize` is their validation.
/// `POST /gifts` body.
#[derive(Deserialize, ToSchema)]
pub struct CreateGiftRequest {
    /// A positive integer.
    #[schema(value_type = i64, minimum = 1, format = Int64)]
    pub amount: Amount,
    /// At most 500 characters; no NUL. Absent and `null` both mean none.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 500, pattern = "^[^\\u0000]*$", nullable)]
    pub message: Option<Message>,
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
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Timestamp,
}

/// The text chrono's own `Serialize` writes (RFC 3339, as many fraction digits as needed,
/// `Z`), formatted whole and then written as one string: chrono's goes through
/// `collect_str`, which escapes each of its many small pieces on its own, some 2,700
/// instructions a timestamp (docs/benchmarks.md, "What limits each figure now").
fn rfc3339<S: Serializer>(at: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
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
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "rfc3339")]
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{json, Value};

    use super::*;
    use crate::domain::{GiftCode, GiftId, IdempotencyKey, SendAccepted};

    fn schema(name: &str) -> Value {
        let doc: Value = serde_json::from_str(&crate::http::openapi_json()).unwrap();
        doc["components"]["schemas"][name].clone()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().expect("an object").keys().cloned().collect()
    }

    /// The fields a published schema names are the fields the code writes, and the ones it
    /// calls required are the ones never null.
    fn pins(name: &str, written: Value) {
        let schema = schema(name);
        assert_eq!(keys(&schema["properties"]), keys(&written), "{name}: schema and body disagree");
        let required: BTreeSet<String> =
            schema["required"].as_array().into_iter().flatten().map(|k| k.as_str().unwrap().to_owned()).collect();
        let never_null: BTreeSet<String> =
            written.as_object().unwrap().iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.clone()).collect();
        assert_eq!(required, never_null, "{name}: required fields");
    }

    fn gift() -> Gift {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Gift::new(GiftId::from_random(1), GiftCode::from_random(1), Amount::try_from(5).unwrap(), None, now)
    }

    #[test]
    fn the_published_schemas_name_the_fields_the_answers_carry() {
        let g = gift();
        pins("GiftView", serde_json::to_value(GiftView::from(&g)).unwrap());
        pins("CreatedGift", serde_json::to_value(CreatedGift::from(&g)).unwrap());
        let accepted =
            SendAccepted { gift_id: g.id, status: g.status, request_id: IdempotencyKey::parse("k").unwrap() };
        pins("SendAccepted", serde_json::to_value(accepted).unwrap());
        let detail = ErrorDetail { code: "NOT_FOUND".into(), message: "gift not found".into() };
        pins("ErrorBody", serde_json::to_value(ErrorBody { error: detail, request_id: None }).unwrap());
    }

    #[test]
    fn the_create_body_schema_names_the_fields_the_parser_reads() {
        let schema = schema("CreateGiftRequest");
        assert_eq!(keys(&schema["properties"]), BTreeSet::from(["amount".to_owned(), "message".to_owned()]));
        assert_eq!(schema["required"], json!(["amount"]));
        let full: CreateGiftRequest = serde_json::from_value(json!({"amount": 7, "message": "hi"})).unwrap();
        assert_eq!((full.amount.get(), full.message.as_ref().map(Message::as_str)), (7, Some("hi")));
        let bare: CreateGiftRequest = serde_json::from_value(json!({"amount": 7})).unwrap();
        assert!(bare.message.is_none());
        assert!(serde_json::from_value::<CreateGiftRequest>(json!({"message": "hi"})).is_err());
    }

    proptest::proptest! {
        /// The answers' timestamps are the text chrono's own `Serialize` writes, for any
        /// instant the service can hold (it keeps microseconds).
        #[test]
        fn timestamps_are_written_as_chrono_writes_them(micros in 0i64..8_000_000_000_000_000) {
            let at = chrono::DateTime::from_timestamp_micros(micros).unwrap();
            let g = Gift { updated_at: at, ..Gift::new(GiftId::from_random(1), GiftCode::from_random(1), Amount::try_from(5).unwrap(), None, at) };
            let chrono_text = serde_json::to_value(at).unwrap();
            let view = serde_json::to_value(GiftView::from(&g)).unwrap();
            proptest::prop_assert_eq!(&view["created_at"], &chrono_text);
            proptest::prop_assert_eq!(&view["updated_at"], &chrono_text);
            proptest::prop_assert_eq!(&serde_json::to_value(CreatedGift::from(&g)).unwrap()["created_at"], &chrono_text);
        }
    }
}
