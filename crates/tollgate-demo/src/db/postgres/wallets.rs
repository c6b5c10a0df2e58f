//! Wallets and purchases (S2): a purchase is one statement — the conditional update and the
//! purchase row together.

use super::PgDb;
use crate::db::error::DbError;
use crate::db::model::{Purchase, PurchaseRefused, Wallet};

/// Creates the wallet or sets its balance; `true` when it was created.
pub(super) async fn put(db: &PgDb, id: &str, balance: i64) -> Result<bool, DbError> {
    let rows = db
        .query(
            "INSERT INTO tollgate_demo.wallets (id, balance) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET balance = excluded.balance
             RETURNING (xmax = 0) AS created",
            &[&id, &balance],
        )
        .await?;
    Ok(rows.first().is_some_and(|row| row.get::<_, bool>(0)))
}

/// The wallet, if it exists.
pub(super) async fn of(db: &PgDb, id: &str) -> Result<Option<Wallet>, DbError> {
    let rows = db
        .query(
            "SELECT id, balance FROM tollgate_demo.wallets WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(rows.first().map(|row| Wallet {
        id: row.get(0),
        balance: row.get(1),
    }))
}

/// The conditional update and the purchase row, in **one statement**: no read-then-write.
pub(super) async fn purchase(
    db: &PgDb,
    wallet: &str,
    item: &str,
    price: i64,
    created_ms: i64,
) -> Result<Result<Purchase, PurchaseRefused>, DbError> {
    let rows = db
        .query(
            "WITH charged AS (
                 UPDATE tollgate_demo.wallets SET balance = balance - $1
                 WHERE id = $2 AND balance >= $1 RETURNING id, balance
             ), bought AS (
                 INSERT INTO tollgate_demo.purchases (wallet_id, item, price, created_ms)
                 SELECT id, $3, $1, $4 FROM charged RETURNING id
             )
             SELECT bought.id, charged.balance FROM bought, charged",
            &[&price, &wallet, &item, &created_ms],
        )
        .await?;
    if let Some(row) = rows.first() {
        return Ok(Ok(Purchase {
            id: row.get(0),
            wallet: wallet.to_owned(),
            item: item.to_owned(),
            price,
            balance: row.get(1),
        }));
    }
    Ok(Err(match of(db, wallet).await? {
        None => PurchaseRefused::NoWallet,
        Some(w) => PurchaseRefused::InsufficientFunds { balance: w.balance },
    }))
}

/// How many purchases the wallet has.
pub(super) async fn purchases(db: &PgDb, wallet: &str) -> Result<u64, DbError> {
    let rows = db
        .query(
            "SELECT count(*) FROM tollgate_demo.purchases WHERE wallet_id = $1",
            &[&wallet],
        )
        .await?;
    Ok(rows
        .first()
        .map_or(0, |row| row.get::<_, i64>(0).unsigned_abs()))
}
