//! The records table, and rows to [`Record`]s and back.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use tollgate::once::{Fence, Fingerprint, Key, Owner, Record, RecordState, Timestamp};

/// Pragmas and the table. The primary key is the pair (namespace, key): never concatenated.
pub(crate) fn setup(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS tollgate_once (
            namespace   TEXT    NOT NULL,
            key         TEXT    NOT NULL,
            fingerprint BLOB    NOT NULL,
            fence       INTEGER NOT NULL,
            state       INTEGER NOT NULL,
            owner       BLOB,
            lease_until INTEGER,
            payload     BLOB,
            retryable   INTEGER,
            expires_at  INTEGER,
            PRIMARY KEY (namespace, key)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS tollgate_once_expires
            ON tollgate_once (expires_at) WHERE expires_at IS NOT NULL;",
    )
}

const IN_PROGRESS: i64 = 0;
const COMPLETED: i64 = 1;
const FAILED: i64 = 2;
const UNKNOWN: i64 = 3;

const SELECT: &str = "SELECT fingerprint, fence, state, owner, lease_until, payload, retryable, \
     expires_at FROM tollgate_once WHERE namespace = ?1 AND key = ?2";

/// The key's record.
pub(crate) fn read(conn: &Connection, key: &Key) -> rusqlite::Result<Option<Record>> {
    conn.query_row(SELECT, params![key.namespace(), key.key()], record)
        .optional()
}

/// Replaces the key's record.
pub(crate) fn write(tx: &Transaction<'_>, key: &Key, record: &Record) -> rusqlite::Result<()> {
    let (state, owner, lease_until, payload, retryable) = match &record.state {
        RecordState::InProgress { owner, lease_until } => (
            IN_PROGRESS,
            Some(owner_bytes(*owner)),
            Some(ms(*lease_until)),
            None,
            None,
        ),
        RecordState::Completed { result } => (COMPLETED, None, None, Some(result.as_slice()), None),
        RecordState::Failed { error, retryable } => {
            (FAILED, None, None, Some(error.as_slice()), Some(*retryable))
        }
        RecordState::Unknown { owner } => (UNKNOWN, Some(owner_bytes(*owner)), None, None, None),
        _ => return Err(rusqlite::Error::InvalidQuery),
    };
    tx.execute(
        "INSERT OR REPLACE INTO tollgate_once (namespace, key, fingerprint, fence, state, owner, \
         lease_until, payload, retryable, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            key.namespace(),
            key.key(),
            record.fingerprint.as_bytes(),
            i64::try_from(record.fence.0).unwrap_or(i64::MAX),
            state,
            owner,
            lease_until,
            payload,
            retryable,
            record.expires_at.map(ms),
        ],
    )?;
    Ok(())
}

fn record(row: &Row<'_>) -> rusqlite::Result<Record> {
    let owner = || -> rusqlite::Result<Owner> {
        let bytes: Vec<u8> = row.get(3)?;
        let bytes: [u8; 16] = bytes.try_into().map_err(|_| invalid(3))?;
        Ok(Owner(u128::from_be_bytes(bytes)))
    };
    let state = match row.get::<_, i64>(2)? {
        IN_PROGRESS => RecordState::InProgress {
            owner: owner()?,
            lease_until: Timestamp(row.get(4)?),
        },
        COMPLETED => RecordState::Completed {
            result: row.get(5)?,
        },
        FAILED => RecordState::Failed {
            error: row.get(5)?,
            retryable: row.get(6)?,
        },
        UNKNOWN => RecordState::Unknown { owner: owner()? },
        _ => return Err(invalid(2)),
    };
    Ok(Record {
        fingerprint: Fingerprint::new(row.get::<_, Vec<u8>>(0)?),
        fence: Fence(row.get(1)?),
        state,
        expires_at: row.get::<_, Option<u64>>(7)?.map(Timestamp),
    })
}

fn invalid(column: usize) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(column, "tollgate_once".into(), rusqlite::types::Type::Null)
}

fn owner_bytes(owner: Owner) -> Vec<u8> {
    owner.0.to_be_bytes().to_vec()
}

pub(crate) fn ms(at: Timestamp) -> i64 {
    i64::try_from(at.0).unwrap_or(i64::MAX)
}
