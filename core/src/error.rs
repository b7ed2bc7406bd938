//! Error types shared by the services and the adapters.

use crate::domain::{ParseError, Status};

/// What can go wrong talking to the store. Adapters translate driver errors into these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The generated gift code already exists; the caller draws another.
    #[error("gift code already taken")]
    CodeTaken,
    /// The store could not be reached or did not answer in time; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a schema mismatch.
    #[error("store failure: {0}")]
    Other(String),
}

/// What can go wrong talking to the queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("queue failure: {0}")]
    Other(String),
}

/// Everything an API call can answer other than success. `http::error` maps each variant
/// to a status code and the error shape, in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Validation(String),
    #[error("gift not found")]
    NotFound,
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("gift is {status} and cannot be sent with this Idempotency-Key")]
    Conflict { status: Status },
    #[error("service temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<ParseError> for AppError {
    fn from(e: ParseError) -> Self {
        AppError::Validation(e.0)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => AppError::Unavailable(m),
            StoreError::CodeTaken | StoreError::Other(_) => AppError::Internal(e.to_string()),
        }
    }
}
