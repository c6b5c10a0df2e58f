//! Wallets and purchases (S2): a purchase is one conditional update.

use serde::Serialize;
use tollgate_sqlite::rusqlite::{self, Connection, OptionalExtension, params};

use super::{Db, DbError, now_ms};

/// A wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Wallet {
    /// Its id.
    pub id: String,
    /// Its balance.
    pub balance: i64,
}

/// A completed purchase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Purchase {
    /// The purchase's id.
    pub id: i64,
    /// The wallet charged.
    pub wallet: String,
    /// What was bought.
    pub item: String,
    /// Its price.
    pub price: i64,
    /// The wallet's balance after the purchase.
    pub balance: i64,
}

/// Why a purchase did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurchaseRefused {
    /// No such wallet.
    NoWallet,
    /// The balance is lower than the price.
    InsufficientFunds {
        /// The balance.
        balance: i64,
    },
}

impl Db {
    /// Creates the wallet or sets its balance; `true` when it was created.
    ///
    /// # Errors
    /// A database failure.
    pub async fn put_wallet(&self, id: String, balance: i64) -> Result<bool, DbError> {
        self.write(move |tx| {
            let existed = tx
                .query_row("SELECT 1 FROM wallets WHERE id = ?1", [&id], |_| Ok(()))
                .optional()?
                .is_some();
            tx.execute(
                "INSERT INTO wallets (id, balance) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET balance = excluded.balance",
                params![id, balance],
            )?;
            Ok(!existed)
        })
        .await
    }

    /// The wallet, if it exists.
    ///
    /// # Errors
    /// A database failure.
    pub async fn wallet(&self, id: &str) -> Result<Option<Wallet>, DbError> {
        let id = id.to_owned();
        self.read(move |conn| wallet_of(conn, &id)).await
    }

    /// Buys `item` for `price` from the wallet: one atomic conditional update (`balance =
    /// balance - price WHERE balance >= price`) and the purchase row, in one transaction. No
    /// read-then-write, so concurrent purchases can never overspend (S2).
    ///
    /// # Errors
    /// A database failure.
    pub async fn purchase(
        &self,
        wallet: String,
        item: String,
        price: i64,
    ) -> Result<Result<Purchase, PurchaseRefused>, DbError> {
        let created_ms = now_ms();
        self.write(move |tx| {
            let charged = tx.execute(
                "UPDATE wallets SET balance = balance - ?1 WHERE id = ?2 AND balance >= ?1",
                params![price, wallet],
            )?;
            if charged == 0 {
                return Ok(Err(match wallet_of(tx, &wallet)? {
                    None => PurchaseRefused::NoWallet,
                    Some(w) => PurchaseRefused::InsufficientFunds { balance: w.balance },
                }));
            }
            tx.execute(
                "INSERT INTO purchases (wallet_id, item, price, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![wallet, item, price, created_ms],
            )?;
            let id = tx.last_insert_rowid();
            let balance = wallet_of(tx, &wallet)?.map_or(0, |w| w.balance);
            Ok(Ok(Purchase { id, wallet, item, price, balance }))
        })
        .await
    }

    /// How many purchases the wallet has.
    ///
    /// # Errors
    /// A database failure.
    pub async fn purchases(&self, wallet: &str) -> Result<u64, DbError> {
        let wallet = wallet.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT count(*) FROM purchases WHERE wallet_id = ?1",
                [wallet],
                |row| row.get(0),
            )
        })
        .await
    }
}

fn wallet_of(conn: &Connection, id: &str) -> rusqlite::Result<Option<Wallet>> {
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
