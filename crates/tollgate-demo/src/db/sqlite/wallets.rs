//! Wallets and purchases (S2): a purchase is one conditional update.

use tollgate_sqlite::rusqlite::{self, Connection, OptionalExtension, params};

use super::super::model::{Purchase, PurchaseRefused, Wallet};

/// Creates the wallet or sets its balance; `true` when it was created.
pub(super) fn put(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    balance: i64,
) -> rusqlite::Result<bool> {
    let existed = of(tx, id)?.is_some();
    tx.execute(
        "INSERT INTO wallets (id, balance) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET balance = excluded.balance",
        params![id, balance],
    )?;
    Ok(!existed)
}

/// One conditional update and the purchase row, in the caller's transaction.
pub(super) fn purchase(
    tx: &rusqlite::Transaction<'_>,
    wallet: String,
    item: String,
    price: i64,
    created_ms: i64,
) -> rusqlite::Result<Result<Purchase, PurchaseRefused>> {
    let charged = tx.execute(
        "UPDATE wallets SET balance = balance - ?1 WHERE id = ?2 AND balance >= ?1",
        params![price, wallet],
    )?;
    if charged == 0 {
        return Ok(Err(match of(tx, &wallet)? {
            None => PurchaseRefused::NoWallet,
            Some(w) => PurchaseRefused::InsufficientFunds { balance: w.balance },
        }));
    }
    tx.execute(
        "INSERT INTO purchases (wallet_id, item, price, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![wallet, item, price, created_ms],
    )?;
    let id = tx.last_insert_rowid();
    let balance = of(tx, &wallet)?.map_or(0, |w| w.balance);
    Ok(Ok(Purchase {
        id,
        wallet,
        item,
        price,
        balance,
    }))
}

/// How many purchases the wallet has.
pub(super) fn purchases(conn: &Connection, wallet: &str) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT count(*) FROM purchases WHERE wallet_id = ?1",
        [wallet],
        |row| row.get(0),
    )
}

/// The wallet, if it exists.
pub(super) fn of(conn: &Connection, id: &str) -> rusqlite::Result<Option<Wallet>> {
    conn.query_row(
        "SELECT id, balance FROM wallets WHERE id = ?1",
        [id],
        |row| {
            Ok(Wallet {
                id: row.get(0)?,
                balance: row.get(1)?,
            })
        },
    )
    .optional()
}
