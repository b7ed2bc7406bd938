//! Creates share statements ([`shared`](super::shared)): one row alone is inserted with a
//! plain `INSERT`, several with one `INSERT … SELECT * FROM unnest(…)`. A row whose code is
//! taken fails alone (`ON CONFLICT (code) DO NOTHING`).

use gift_core::domain::Gift;
use gift_core::StoreError;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

use super::pool::OpFuture;
use super::shared::{Ran, Statement};
use crate::sql::is_code_violation;

/// The gifts table's `INSERT`.
pub(crate) struct InsertGifts;

impl Statement for InsertGifts {
    type Item = Gift;
    type Output = ();

    const MAX_ITEMS: usize = 64;

    fn run<'c>(c: &'c mut PgConnection, gifts: &'c [Gift]) -> OpFuture<'c, Ran<()>> {
        Box::pin(async move {
            if let [gift] = gifts {
                return match insert_one(c, gift).await {
                    Ok(()) => Ok(Ran::answered(vec![Ok(())])),
                    Err(e) if is_code_violation(&e) => Ok(Ran::answered(vec![Err(StoreError::CodeTaken)])),
                    Err(e) => Err(e),
                };
            }
            let inserted = insert_many(c, gifts).await?;
            Ok(Ran::answered(
                gifts
                    .iter()
                    .map(|g| if inserted.contains(&g.id.as_uuid()) { Ok(()) } else { Err(StoreError::CodeTaken) })
                    .collect(),
            ))
        })
    }
}

async fn insert_one(c: &mut PgConnection, gift: &Gift) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(gift.id.as_uuid())
    .bind(gift.code.as_str())
    .bind(gift.amount.get())
    .bind(gift.message.as_ref().map(|m| m.as_str()))
    .bind(gift.status.as_str())
    .bind(gift.created_at)
    .bind(gift.updated_at)
    .execute(c)
    .await
    .map(|_| ())
}

/// The ids of the rows inserted; a row whose code was taken (by an earlier gift or by a row
/// before it in this statement) is not among them.
async fn insert_many(c: &mut PgConnection, gifts: &[Gift]) -> Result<Vec<Uuid>, sqlx::Error> {
    let gifts = gifts.iter();
    sqlx::query_scalar(
        "INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::text[], \
                              $6::timestamptz[], $7::timestamptz[]) \
         ON CONFLICT (code) DO NOTHING RETURNING id",
    )
    .bind(gifts.clone().map(|g| g.id.as_uuid()).collect::<Vec<_>>())
    .bind(gifts.clone().map(|g| g.code.as_str().to_owned()).collect::<Vec<_>>())
    .bind(gifts.clone().map(|g| g.amount.get()).collect::<Vec<_>>())
    .bind(gifts.clone().map(|g| g.message.as_ref().map(|m| m.as_str().to_owned())).collect::<Vec<_>>())
    .bind(gifts.clone().map(|g| g.status.as_str().to_owned()).collect::<Vec<_>>())
    .bind(gifts.clone().map(|g| g.created_at).collect::<Vec<_>>())
    .bind(gifts.map(|g| g.updated_at).collect::<Vec<_>>())
    .fetch_all(c)
    .await
}
