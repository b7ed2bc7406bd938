use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{Gift, IdempotencyKey};
use crate::ports::{Dispatcher, Env};

/// The pseudo-send of the specification: no e-mail or SMS, just a failure drawn at
/// `failure_rate` (0.0 never fails, 1.0 always fails).
pub struct PseudoDispatcher {
    env: Arc<dyn Env>,
    failure_rate: f64,
}

impl PseudoDispatcher {
    pub fn new(env: Arc<dyn Env>, failure_rate: f64) -> Self {
        Self { env, failure_rate }
    }
}

#[async_trait]
impl Dispatcher for PseudoDispatcher {
    async fn dispatch(&self, _gift: &Gift, _request_id: &IdempotencyKey, receive_count: u32) -> Result<(), String> {
        if self.env.random_unit() < self.failure_rate {
            Err(format!("pseudo-send failed (attempt {receive_count})"))
        } else {
            Ok(())
        }
    }
}
