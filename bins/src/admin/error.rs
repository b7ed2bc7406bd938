//! Why a subcommand could not do its work (a refusal it reports is not an error: see
//! `Report::complete`).

use gift_core::domain::GiftId;
use gift_core::{QueueError, StoreError};
use gift_runtime::postgres::admin::RoleError;

#[derive(Debug)]
pub enum AdminError {
    /// The environment is wrong; the text names the variable.
    Config(String),
    NoSuchGift(GiftId),
    Store(StoreError),
    Queue(QueueError),
    Role(RoleError),
}

impl AdminError {
    /// The log line's `error_code`.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Config(_) => "CONFIG_INVALID",
            AdminError::NoSuchGift(_) => "UNKNOWN_GIFT",
            AdminError::Store(_) => "STORE_ERROR",
            AdminError::Queue(_) => "QUEUE_ERROR",
            AdminError::Role(_) => "APP_ROLE_FAILED",
        }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Config(e) => f.write_str(e),
            AdminError::NoSuchGift(id) => write!(f, "no gift {id}"),
            AdminError::Store(e) => e.fmt(f),
            AdminError::Queue(e) => e.fmt(f),
            AdminError::Role(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(e)
    }
}

impl From<QueueError> for AdminError {
    fn from(e: QueueError) -> Self {
        AdminError::Queue(e)
    }
}

impl From<RoleError> for AdminError {
    fn from(e: RoleError) -> Self {
        AdminError::Role(e)
    }
}
