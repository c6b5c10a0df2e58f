//! Script replies and records read back as the core's types, exactly as every other
//! store returns them.

use std::collections::HashMap;

use redis::Value;
use tollgate::once::{ClaimOutcome, Fingerprint, Record, RecordState};
use tollgate::store::{Fence, Owner, StoreError, Timestamp, Token};

use crate::error::corrupt;

/// The fields of a reply or a hash, as bytes.
fn bytes(value: Value) -> Result<Vec<u8>, StoreError> {
    match value {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        other => Err(corrupt(format_args!("expected a string, got {other:?}"))),
    }
}

fn text(b: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(b).map_err(|_| corrupt("a number field is not text"))
}

fn number<T: std::str::FromStr>(b: &[u8], what: &str) -> Result<T, StoreError> {
    text(b)?.parse().map_err(|_| {
        corrupt(format_args!(
            "{what} is not a number: {:?}",
            String::from_utf8_lossy(b)
        ))
    })
}

fn token(owner: &[u8], fence: &[u8]) -> Result<Token, StoreError> {
    Ok(Token {
        owner: Owner(number(owner, "owner")?),
        fence: Fence(number(fence, "fence")?),
    })
}

/// The answer of the claim script.
/// `owner` is the claimant's: an acquired token is `owner` with the granted fence.
pub(crate) fn claim_outcome(reply: Vec<Value>, owner: Owner) -> Result<ClaimOutcome, StoreError> {
    let fields = reply
        .into_iter()
        .map(bytes)
        .collect::<Result<Vec<_>, _>>()?;
    let Some((tag, rest)) = fields.split_first() else {
        return Err(corrupt("empty claim reply"));
    };
    Ok(match (tag.as_slice(), rest) {
        (b"acquired", [fence, took_owner, took_fence]) => ClaimOutcome::Acquired {
            token: Token {
                owner,
                fence: Fence(number(fence, "fence")?),
            },
            took_over: if took_owner.is_empty() {
                None
            } else {
                Some(token(took_owner, took_fence)?)
            },
        },
        (b"in_progress", [owner, fence, until]) => ClaimOutcome::InProgress {
            holder: token(owner, fence)?,
            lease_until: Timestamp(number(until, "lease")?),
        },
        (b"completed", [result]) => ClaimOutcome::Completed {
            result: result.clone(),
        },
        (b"failed", [error, retry]) => ClaimOutcome::Failed {
            error: error.clone(),
            retryable: retry.as_slice() == b"1",
        },
        (b"mismatch", []) => ClaimOutcome::Mismatch,
        (b"unknown", [owner, fence]) => ClaimOutcome::Unknown {
            previous: token(owner, fence)?,
        },
        _ => {
            return Err(corrupt(format_args!(
                "unexpected claim reply {:?}",
                String::from_utf8_lossy(tag)
            )));
        }
    })
}

/// A record's values by name (the read script's pairs); `None` for an absent key.
pub(crate) fn record(mut hash: HashMap<String, Vec<u8>>) -> Result<Option<Record>, StoreError> {
    if hash.is_empty() {
        return Ok(None);
    }
    let mut field = |name: &str| {
        hash.remove(name)
            .ok_or_else(|| corrupt(format_args!("record without field {name}")))
    };
    let fingerprint = Fingerprint::new(field("fp")?);
    let fence = Fence(number(&field("fence")?, "fence")?);
    let st = field("st")?;
    let (state, expires_at) = match st.as_slice() {
        b"p" => {
            let owner = Owner(number(&field("owner")?, "owner")?);
            let lease_until = Timestamp(number(&field("lease")?, "lease")?);
            (RecordState::InProgress { owner, lease_until }, None)
        }
        b"u" => {
            let owner = Owner(number(&field("owner")?, "owner")?);
            (RecordState::Unknown { owner }, None)
        }
        b"c" => {
            let result = field("res")?;
            let exp = Timestamp(number(&field("exp")?, "exp")?);
            (RecordState::Completed { result }, Some(exp))
        }
        b"f" => {
            let error = field("res")?;
            let retryable = field("retry")?.as_slice() == b"1";
            let exp = Timestamp(number(&field("exp")?, "exp")?);
            (RecordState::Failed { error, retryable }, Some(exp))
        }
        other => {
            return Err(corrupt(format_args!(
                "record in unknown state {:?}",
                String::from_utf8_lossy(other)
            )));
        }
    };
    Ok(Some(Record {
        fingerprint,
        fence,
        state,
        expires_at,
    }))
}
