//! What to race: [`RaceConfig`] and its parts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::expect::Expectation;

/// Everything a run needs. Build it with [`RaceConfig::new`] and set the public fields.
///
/// The URL, header values and body may contain placeholders, substituted per request:
/// `{{i}}` (request index in the trial, from 0), `{{uuid}}` (a fresh random UUID),
/// `{{trial}}` (trial index, from 0) and `{{trial_uuid}}` (one random UUID per trial, handy to
/// give each trial its own key so that trials stay independent).
#[derive(Debug, Clone)]
pub struct RaceConfig {
    /// `http://` or `https://` URL; only the path and query may hold placeholders.
    pub url: String,
    /// HTTP method, sent as given (`GET`, `POST`, ...).
    pub method: String,
    /// Extra request headers. `Host`, `Content-Length`, `Connection` and `User-Agent` are
    /// added unless given here.
    pub headers: Vec<Header>,
    /// Request body (may be empty).
    pub body: Vec<u8>,
    /// Requests released together in each trial (at least 1).
    pub requests: usize,
    /// Independent repetitions (at least 1).
    pub trials: usize,
    /// Invariants checked on every trial.
    pub expectations: Vec<Expectation>,
    /// How the requests of a trial are released.
    pub sync: SyncMode,
    /// Per-request limit, applied to connecting (with the TLS handshake) and to the response.
    pub timeout: Duration,
    /// Accept any TLS certificate (self-signed test servers). Never for production targets.
    pub insecure: bool,
    /// Keep each request's release and end in [`TrialReport::timeline`](crate::TrialReport)
    /// (for charts). Off by default: it grows with requests × trials.
    pub timeline: bool,
}

impl RaceConfig {
    /// A configuration with the CLI's defaults: `GET`, 20 requests, 1 trial, last-byte sync,
    /// 10 s timeout, no invariants.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            method: "GET".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            requests: 20,
            trials: 1,
            expectations: Vec::new(),
            sync: SyncMode::LastByte,
            timeout: Duration::from_secs(10),
            insecure: false,
            timeline: false,
        }
    }
}

/// How the requests of a trial are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SyncMode {
    /// Open every connection and send every request but its final byte, then write all final
    /// bytes back to back. The send spread is the time between the first and last final byte.
    #[default]
    LastByte,
    /// Plain concurrent sends: each request connects and sends on its own task as soon as it
    /// can. The send spread is the time between the first and last completed request write.
    None,
    /// HTTP/2 on one connection: every request sent but its final DATA frame, then all final
    /// frames in a single write (one TCP packet when they fit). The send spread is the
    /// duration of that write. Needs HTTP/2 (ALPN `h2`, or prior knowledge on `http://`).
    SinglePacket,
}

impl SyncMode {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LastByte => "last-byte",
            Self::None => "none",
            Self::SinglePacket => "single-packet",
        }
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SyncMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "last-byte" => Ok(Self::LastByte),
            "none" => Ok(Self::None),
            "single-packet" => Ok(Self::SinglePacket),
            other => Err(format!(
                "unknown sync mode `{other}` (expected `last-byte`, `none` or `single-packet`)"
            )),
        }
    }
}

/// One request header, parsed from `Name: Value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name (an HTTP token).
    pub name: String,
    /// Header value; may contain placeholders.
    pub value: String,
}

impl FromStr for Header {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = s
            .split_once(':')
            .ok_or_else(|| format!("header `{s}` must look like `Name: value`"))?;
        let name = name.trim();
        let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(is_token) {
            return Err(format!("header name `{name}` is not a valid HTTP token"));
        }
        let value = value.trim();
        if value.contains(['\r', '\n']) {
            return Err(format!("header `{name}` has a line break in its value"));
        }
        Ok(Self {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers() {
        let h: Header = "X-Key:  abc: d ".parse().unwrap();
        assert_eq!((h.name.as_str(), h.value.as_str()), ("X-Key", "abc: d"));
        assert!(
            "NoColon"
                .parse::<Header>()
                .unwrap_err()
                .contains("Name: value")
        );
        assert!(
            "Bad Name: x"
                .parse::<Header>()
                .unwrap_err()
                .contains("token")
        );
    }

    #[test]
    fn parses_sync_modes() {
        assert_eq!("none".parse(), Ok(SyncMode::None));
        assert_eq!("last-byte".parse(), Ok(SyncMode::LastByte));
        assert!(
            "h2".parse::<SyncMode>()
                .unwrap_err()
                .contains("unknown sync mode")
        );
    }
}
