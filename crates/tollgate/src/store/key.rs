//! The identity of a record and of the attempt that holds it.

use std::fmt;

/// A record's key: a namespace and a key within it, kept apart (never concatenated).
///
/// `Key::new("a:b", "c")` and `Key::new("a", "b:c")` are different keys in every store: stores
/// keep the two parts in separate columns or encode them with [`Key::encode`], which is
/// length-prefixed and therefore unambiguous.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    namespace: String,
    key: String,
}

impl Key {
    /// The key `key` in `namespace`.
    pub fn new(namespace: impl Into<String>, key: impl Into<String>) -> Self {
        Key {
            namespace: namespace.into(),
            key: key.into(),
        }
    }

    /// The namespace part.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key within the namespace.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// One string for stores that need a single key: `<namespace length>:<namespace><key>`.
    ///
    /// The length prefix makes the encoding injective: no two keys share an encoding.
    pub fn encode(&self) -> String {
        format!("{}:{}{}", self.namespace.len(), self.namespace, self.key)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}/{:?}", self.namespace, self.key)
    }
}

/// Identifies one claimant: a random 128-bit value drawn for every claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner(pub u128);

impl Owner {
    /// A fresh random owner.
    pub fn random() -> Self {
        Owner(fastrand::u128(..))
    }
}

/// A fencing token: it grows every time a key changes hands, so a stale holder's write is
/// recognised and rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fence(pub u64);

/// What a holder presents to renew, complete or fail its attempt. Both parts must match the
/// record: the fence rejects a holder that was taken over, the owner one whose record was purged
/// and claimed anew.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    /// Who claimed.
    pub owner: Owner,
    /// The fence granted with the claim.
    pub fence: Fence,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_unambiguous_where_concatenation_is_not() {
        let (a, b) = (Key::new("a:b", "c"), Key::new("a", "b:c"));
        assert_ne!(a, b);
        assert_ne!(a.encode(), b.encode());
        assert_eq!(a.encode(), "3:a:bc");
        assert_eq!(Key::new("", "1:x").encode(), "0:1:x");
        assert_ne!(Key::new("", "1:x").encode(), Key::new("x", "").encode());
    }
}
