//! The fingerprint of the request behind a key.

/// What the request behind a key looked like: the same key with a different fingerprint is a
/// mismatch, not a replay. Usually a hash of the request body; any bytes will do.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Fingerprint(Vec<u8>);

impl Fingerprint {
    /// A fingerprint made of these bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Fingerprint(bytes.into())
    }

    /// The fingerprint's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}
