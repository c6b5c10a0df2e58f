//! Invariants on the number of responses with a given status: `201=1`, `4xx=0`.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Which statuses an [`Expectation`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusMatch {
    /// One exact status code, e.g. `201`.
    Code(u16),
    /// A class, e.g. `2` for `2xx`.
    Class(u8),
}

impl StatusMatch {
    /// Whether `status` is counted.
    pub fn matches(self, status: u16) -> bool {
        match self {
            Self::Code(code) => status == code,
            Self::Class(class) => status / 100 == u16::from(class),
        }
    }
}

/// An invariant checked on every trial: exactly `count` responses match `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    /// The statuses counted.
    pub status: StatusMatch,
    /// The exact number expected per trial.
    pub count: usize,
}

impl Expectation {
    /// The number of statuses in `statuses` this invariant counts.
    pub fn observe(&self, statuses: impl IntoIterator<Item = u16>) -> usize {
        statuses
            .into_iter()
            .filter(|&s| self.status.matches(s))
            .count()
    }
}

impl FromStr for Expectation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (code, count) = s
            .split_once('=')
            .ok_or_else(|| format!("expectation `{s}` must look like CODE=COUNT, e.g. 201=1"))?;
        let bad_code = || format!("`{code}` is not a status code (100-599) or class (1xx-5xx)");
        let status = match code.as_bytes() {
            [c @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => StatusMatch::Class(c - b'0'),
            _ => {
                let code: u16 = code.parse().map_err(|_| bad_code())?;
                if !(100..=599).contains(&code) {
                    return Err(bad_code());
                }
                StatusMatch::Code(code)
            }
        };
        let count = count
            .parse()
            .map_err(|_| format!("`{count}` in `{s}` is not a count (a whole number)"))?;
        Ok(Self { status, count })
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            StatusMatch::Code(code) => write!(f, "{code}={}", self.count),
            StatusMatch::Class(class) => write!(f, "{class}xx={}", self.count),
        }
    }
}

/// Serialized as its command-line form, `"201=1"`.
impl Serialize for Expectation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_classes() {
        let e: Expectation = "201=1".parse().unwrap();
        assert_eq!((e.status, e.count), (StatusMatch::Code(201), 1));
        let e: Expectation = "4XX=19".parse().unwrap();
        assert_eq!(
            (e.status, e.count, e.to_string()),
            (StatusMatch::Class(4), 19, "4xx=19".into())
        );
        assert_eq!(e.observe([409, 201, 404, 500]), 2);
    }

    #[test]
    fn rejects_malformed_expectations() {
        for (s, msg) in [
            ("201", "CODE=COUNT"),
            ("abc=1", "not a status code"),
            ("99=1", "not a status code"),
            ("6xx=1", "not a status code"),
            ("201=-1", "not a count"),
        ] {
            let err = s.parse::<Expectation>().unwrap_err();
            assert!(err.contains(msg), "{s}: {err}");
        }
    }
}
