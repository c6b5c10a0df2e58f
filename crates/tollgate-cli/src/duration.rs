//! `--timeout` values: `10s`, `500ms`, `1.5s`, `2m`, or a bare number of seconds.

use std::time::Duration;

pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        _ => return Err(bad(text)),
    };
    let value: f64 = number.parse().map_err(|_| bad(text))?;
    let duration = Duration::try_from_secs_f64(value * scale).map_err(|_| bad(text))?;
    if duration.is_zero() {
        return Err(format!("duration `{text}` must be greater than zero"));
    }
    Ok(duration)
}

fn bad(text: &str) -> String {
    format!("`{text}` is not a duration (examples: 10s, 500ms, 1.5s, 2m)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("3"), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn rejects_garbage_and_zero() {
        assert!(parse("abc").unwrap_err().contains("not a duration"));
        assert!(parse("10 parsecs").unwrap_err().contains("not a duration"));
        assert!(parse("0s").unwrap_err().contains("greater than zero"));
    }
}
