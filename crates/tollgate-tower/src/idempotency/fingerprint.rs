//! The fingerprint of a request: what "the same request" means for one idempotency key.
//!
//! It is the SHA-256 of the method, the path with its query, and the body, each prefixed by
//! its length (so no two different requests encode to the same bytes), under a version tag.
//! Headers are left out: a retried request may differ in tracing or auth headers and still be
//! the same operation. The tenant is not part of it: it is part of the key.

use tollgate::once::Fingerprint;

use super::sha256::Sha256;

const VERSION: &[u8] = b"tollgate-idempotency-v1";

/// The fingerprint of `method` `path_and_query` with `body`.
pub(crate) fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> Fingerprint {
    let mut hasher = Sha256::new();
    for part in [VERSION, method.as_bytes(), path_and_query.as_bytes(), body] {
        hasher.update(&(part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    Fingerprint::new(hasher.finish().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_changed_part_changes_the_fingerprint() {
        let base = fingerprint("POST", "/orders?x=1", b"{}");
        assert_eq!(base, fingerprint("POST", "/orders?x=1", b"{}"));
        assert_ne!(base, fingerprint("PATCH", "/orders?x=1", b"{}"));
        assert_ne!(base, fingerprint("POST", "/orders?x=2", b"{}"));
        assert_ne!(base, fingerprint("POST", "/orders?x=1", b"{ }"));
    }

    #[test]
    fn moving_bytes_between_parts_changes_the_fingerprint() {
        assert_ne!(
            fingerprint("POST", "/a", b"b"),
            fingerprint("POST", "/ab", b"")
        );
    }
}
