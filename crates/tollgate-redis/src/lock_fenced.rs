//! [`fenced_hset`]: a write to a protected Redis hash that a replaced lock holder cannot make.

use redis::aio::ConnectionLike;
use tollgate::store::{Fence, StoreError, StoreErrorKind};

use crate::error::store_error;
use crate::lock_scripts::FENCED_HSET_SCRIPT;

/// Sets `fields` of the hash `key` **only if** the lock holder's `fence` is not older than the
/// fence last written to the hash (field `fence_field`), and stores `fence` there — one Lua
/// script, the Redis form of `fenced_update`:
///
/// ```lua
/// if tonumber(HGET key fence_field or 0) > fence then return 0 end
/// HSET key fence_field fence field1 value1 …; return 1
/// ```
///
/// Returns `true` when written, `false` when a holder with a higher fence already wrote the
/// hash (this holder was replaced — it must stop). Like the SQL form, a holder may write many
/// times under its fence (`stored <= fence` is accepted). A hash without the field counts as
/// fence 0. Works on a cluster (one key per call); `conn` is any async connection — the
/// protected data need not live on the lock's server.
///
/// # Errors
/// [`StoreErrorKind::Rejected`] for an empty `fields`; otherwise the connection's error, typed
/// as every store error of this crate ([`crate::error::kind`]).
///
/// ```no_run
/// use tollgate_redis::fenced_hset;
/// use tollgate_redis::tollgate::store::Fence;
///
/// # async fn example(url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let mut conn = tollgate_redis::redis::Client::open(url)?.get_multiplexed_async_connection().await?;
/// // B (fence 2) wrote first; A (fence 1) was paused past its lease and wakes up.
/// assert!(fenced_hset(&mut conn, "wallet:1", "fence", Fence(2), &[("balance", b"0")]).await?);
/// assert!(!fenced_hset(&mut conn, "wallet:1", "fence", Fence(1), &[("balance", b"1500")]).await?);
/// # Ok(())
/// # }
/// ```
/// The same calls run in the test
/// `s2_lock_fencing::fenced_hset_accepts_the_holder_and_rejects_an_older_fence_redis`.
pub async fn fenced_hset<C: ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
    fence_field: &str,
    fence: Fence,
    fields: &[(&str, &[u8])],
) -> Result<bool, StoreError> {
    if fields.is_empty() {
        let nothing = "a fenced hset sets no field";
        return Err(StoreError::msg(StoreErrorKind::Rejected, nothing));
    }
    let mut call = FENCED_HSET_SCRIPT.key(key);
    call.arg(fence_field).arg(fence.0);
    for (field, value) in fields {
        call.arg(*field).arg(*value);
    }
    let written: i64 = call.invoke_async(conn).await.map_err(store_error)?;
    Ok(written == 1)
}
