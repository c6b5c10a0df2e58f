//! Where a record lives: `<prefix>{<Key::encode>}`, one string key per record.
//!
//! The braces are a Redis Cluster hash tag: everything of one record hashes to the slot of its
//! encoded key. The fence is a value of the record rather than a counter key of its own,
//! so it cannot outlive the record (Redisson #6510: millions of fence counters that never
//! expire); a prefix may therefore not contain braces, which would move the tag.

use tollgate::store::{Key, StoreError, StoreErrorKind};

/// The default key prefix.
pub(crate) const DEFAULT_PREFIX: &str = "tollgate:once:";

/// A checked key prefix, and the names derived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Prefix(String);

impl Prefix {
    /// `prefix`, unless it contains `{` or `}`.
    pub(crate) fn new(prefix: impl Into<String>) -> Result<Prefix, StoreError> {
        let prefix = prefix.into();
        if prefix.contains(['{', '}']) {
            return Err(StoreError::msg(
                StoreErrorKind::Rejected,
                format!("redis key prefix {prefix:?} contains a brace: it would move the hash tag"),
            ));
        }
        Ok(Prefix(prefix))
    }

    /// The record of `key`.
    pub(crate) fn record(&self, key: &Key) -> String {
        format!("{}{{{}}}", self.0, key.encode())
    }

    /// The prefix of the lock records beside these records: `<prefix>lock:`.
    pub(crate) fn locks(&self) -> Prefix {
        Prefix(format!("{}lock:", self.0))
    }

    /// The pub/sub channel on which settled records are announced (their record key).
    pub(crate) fn channel(&self) -> String {
        format!("{}settled", self.0)
    }

    /// A `SCAN MATCH` pattern for every record of this prefix, and only those.
    pub(crate) fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        for c in self.0.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str("{*");
        pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_hash_tagged_and_unambiguous() {
        let p = Prefix::new("t:").unwrap();
        assert_eq!(p.record(&Key::new("a:b", "c")), "t:{3:a:bc}");
        assert_ne!(
            p.record(&Key::new("a:b", "c")),
            p.record(&Key::new("a", "b:c"))
        );
        assert_eq!(Prefix::new("x*[").unwrap().pattern(), "x\\*\\[{*");
        assert!(Prefix::new("a{b").is_err());
    }
}
