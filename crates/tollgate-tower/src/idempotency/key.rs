//! Reading the `Idempotency-Key` header, and the exactly-once [`Key`] a request is stored
//! under.

use http::HeaderValue;
use tollgate::once::Key;

/// Why a header value is not a usable key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    Empty,
    TooLong,
    NotVisibleAscii,
    MalformedString,
}

impl KeyProblem {
    pub(crate) fn describe(self, max_len: usize) -> String {
        match self {
            KeyProblem::Empty => "the Idempotency-Key is empty".to_owned(),
            KeyProblem::TooLong => format!("the Idempotency-Key is longer than {max_len} bytes"),
            KeyProblem::NotVisibleAscii => {
                "the Idempotency-Key must be visible ASCII characters".to_owned()
            }
            KeyProblem::MalformedString => {
                "the Idempotency-Key is a malformed quoted string".to_owned()
            }
        }
    }
}

/// The key in `value`: the draft's structured-field string (`"…"`, with `\"` and `\\`
/// escapes), or, as clients commonly send, the bare token. Between 1 and `max_len` bytes.
pub(crate) fn parse(value: &HeaderValue, max_len: usize) -> Result<String, KeyProblem> {
    let bytes = value.as_bytes();
    let key = match bytes {
        [b'"', inner @ .., b'"'] => unquote(inner)?,
        [b'"', ..] => return Err(KeyProblem::MalformedString),
        _ if bytes.iter().all(|b| (0x21..=0x7e).contains(b)) => bytes.to_vec(),
        _ => return Err(KeyProblem::NotVisibleAscii),
    };
    match key.len() {
        0 => Err(KeyProblem::Empty),
        n if n > max_len => Err(KeyProblem::TooLong),
        // Every byte was checked to be ASCII, so this cannot fail.
        _ => String::from_utf8(key).map_err(|_| KeyProblem::NotVisibleAscii),
    }
}

/// RFC 8941 §4.2.5: printable ASCII (space included), `\` escaping only `"` and `\`.
fn unquote(inner: &[u8]) -> Result<Vec<u8>, KeyProblem> {
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(&e @ (b'"' | b'\\')) => out.push(e),
                _ => return Err(KeyProblem::MalformedString),
            },
            b'"' => return Err(KeyProblem::MalformedString),
            0x20..=0x7e => out.push(b),
            _ => return Err(KeyProblem::NotVisibleAscii),
        }
    }
    Ok(out)
}

/// The record key of `key` sent by `tenant`, in `namespace`.
///
/// The tenant is length-prefixed (`<len>:<tenant><key>`), and a request without tenant is
/// `-<key>`: no tenant and key can be crafted to collide with another tenant's key, so one
/// tenant can never reach — or replay — another tenant's record.
pub(crate) fn scoped(namespace: &str, tenant: Option<&str>, key: &str) -> Key {
    let scoped = match tenant {
        Some(tenant) => format!("{}:{tenant}{key}", tenant.len()),
        None => format!("-{key}"),
    };
    Key::new(namespace, scoped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &[u8]) -> Result<String, KeyProblem> {
        parse(&HeaderValue::from_bytes(raw).unwrap(), 8)
    }

    #[test]
    fn accepts_tokens_and_structured_strings() {
        assert_eq!(parsed(b"abc-123").unwrap(), "abc-123");
        assert_eq!(parsed(br#""abc 1""#).unwrap(), "abc 1");
        assert_eq!(parsed(br#""a\"b\\""#).unwrap(), r#"a"b\"#);
    }

    #[test]
    fn rejects_empty_long_invisible_and_malformed_keys() {
        assert_eq!(parsed(b""), Err(KeyProblem::Empty));
        assert_eq!(parsed(br#""""#), Err(KeyProblem::Empty));
        assert_eq!(parsed(b"123456789"), Err(KeyProblem::TooLong));
        assert_eq!(parsed(b"a b"), Err(KeyProblem::NotVisibleAscii));
        assert_eq!(parsed(b"caf\xc3\xa9"), Err(KeyProblem::NotVisibleAscii));
        assert_eq!(parsed(br#""abc"#), Err(KeyProblem::MalformedString));
        assert_eq!(parsed(br#""a\b""#), Err(KeyProblem::MalformedString));
        assert_eq!(parsed(br#""a"b""#), Err(KeyProblem::MalformedString));
    }

    #[test]
    fn tenant_scoping_is_unambiguous() {
        // A crafted key cannot reach another tenant's record.
        assert_ne!(
            scoped("n", Some("a"), "1:bk"),
            scoped("n", Some("a1:b"), "k")
        );
        assert_ne!(scoped("n", Some("ab"), "c"), scoped("n", Some("a"), "bc"));
        assert_ne!(scoped("n", None, "k"), scoped("n", Some(""), "k"));
        assert_ne!(scoped("n", None, "1:ak"), scoped("n", Some("a"), "k"));
        assert_eq!(scoped("n", Some("a"), "k"), scoped("n", Some("a"), "k"));
    }
}
