//! Input checks: user ids, calendar dates, amounts. Everything from a path or a body goes
//! through here before it reaches the database or the LLM.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The longest accepted user or wallet id.
pub const MAX_ID_LEN: usize = 64;

/// Checks an id from a path: 1 to 64 characters of `A-Z a-z 0-9 _ -`.
pub fn id(kind: &'static str, value: &str) -> Result<String, ApiError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::bad_request(
            "invalid_id",
            format!("{kind} id must be 1 to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, '_' or '-'"),
        ))
    }
}

/// A calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Day {
    year: u16,
    month: u8,
    day: u8,
}

impl Day {
    /// Parses `YYYY-MM-DD` (years 1000 to 9999), checking the day exists in that month.
    pub fn parse(text: &str) -> Result<Day, ApiError> {
        let invalid = || {
            ApiError::bad_request(
                "invalid_date",
                format!("{text:?} is not a calendar date in the form YYYY-MM-DD"),
            )
        };
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(invalid());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u16, ApiError> {
            let part = &text[range];
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            part.parse().map_err(|_| invalid())
        };
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        if year < 1000 || !(1..=12).contains(&month) {
            return Err(invalid());
        }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if day == 0 || day > days {
            return Err(invalid());
        }
        Ok(Day {
            year,
            month: month as u8,
            day: day as u8,
        })
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl TryFrom<String> for Day {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Day::parse(&text).map_err(|e| e.message)
    }
}

impl From<Day> for String {
    fn from(day: Day) -> String {
        day.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked_against_the_calendar() {
        assert_eq!(
            Day::parse("2026-11-21").map(|d| d.to_string()),
            Ok("2026-11-21".into())
        );
        assert!(Day::parse("2024-02-29").is_ok());
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-11-00",
            "26-11-21",
            "2026/11/21",
            "2026-1-021",
            "abcd-ef-gh",
            "",
            "2026-11-21x",
            "0999-01-01",
            "+026-11-21",
        ] {
            assert_eq!(
                Day::parse(bad).map_err(|e| e.code),
                Err("invalid_date"),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_are_limited_to_a_safe_alphabet() {
        assert!(id("user", "alice_01-x").is_ok());
        for bad in ["", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(id("user", bad).is_err(), "{bad}");
        }
    }
}
