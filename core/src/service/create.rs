use crate::domain::{Amount, Gift, GiftCode, GiftId, Message};
use crate::error::{AppError, StoreError};
use crate::service::Deps;

/// Draws this many codes before giving up; with 60 random bits a second draw is already
/// astronomically rare, so exhausting them means the store is misbehaving.
const CODE_ATTEMPTS: usize = 5;

/// Creates a CREATED gift with a fresh id and a unique code.
pub async fn create_gift(deps: &Deps, amount: Amount, message: Option<Message>) -> Result<Gift, AppError> {
    let (store, env) = (&deps.store, &deps.env);
    let now = env.now();
    let id = GiftId::new(now, env.random_u128());
    for _ in 0..CODE_ATTEMPTS {
        let gift = Gift::new(id, GiftCode::from_random(env.random_u64()), amount, message.clone(), now);
        match store.insert_gift(&gift).await {
            Ok(()) => {
                tracing::info!(gift_id = %gift.id, event = "CREATED", "gift created");
                return Ok(gift);
            }
            Err(StoreError::CodeTaken) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::Internal(format!("no unique gift code after {CODE_ATTEMPTS} draws")))
}
