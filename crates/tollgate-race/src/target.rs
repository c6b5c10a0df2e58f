//! The target URL: scheme, authority and a path template.

use crate::error::RaceError;
use crate::template::Template;

/// Where requests go. Only the path and query may contain placeholders: every request of a run
/// goes to the same host and port.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) tls: bool,
    /// Host name or IP address, without IPv6 brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The `Host` header value (`host[:port]`, the port only when not the scheme's default).
    pub(crate) authority: String,
    /// Path and query, starting with `/`.
    pub(crate) path: Template,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, RaceError> {
        let fail = |reason: &str| RaceError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (tls, rest) = if let Some(rest) = strip_prefix_ci(url, "http://") {
            (false, rest)
        } else if let Some(rest) = strip_prefix_ci(url, "https://") {
            (true, rest)
        } else {
            return Err(fail("the scheme must be http:// or https://"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(fail("missing host"));
        }
        if authority.contains('@') {
            return Err(fail(
                "credentials in the URL are not supported; use -H Authorization",
            ));
        }
        if authority.contains("{{") {
            return Err(fail("placeholders are only allowed in the path and query"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port).map_err(fail)?;
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        if path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(fail(
                "the path must not contain spaces or control characters",
            ));
        }
        Ok(Self {
            tls,
            host,
            port,
            authority: authority.to_owned(),
            path: Template::parse(path.as_bytes()),
        })
    }

    /// `host:port`, for messages and name resolution.
    pub(crate) fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed `[` in the host")?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or("junk after `]`")?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("missing host");
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse().map_err(|_| "the port must be a number 0-65535")?,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Vars;

    fn path(t: &Target) -> String {
        let vars = Vars {
            index: 1,
            trial: 0,
            trial_uuid: "",
        };
        String::from_utf8(t.path.render(vars)).unwrap()
    }

    #[test]
    fn parses_http_and_https() {
        let t = Target::parse("http://127.0.0.1:8080/a/{{i}}?q=1#frag").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "127.0.0.1", 8080));
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(path(&t), "/a/1?q=1");
        let t = Target::parse("HTTPS://example.com").unwrap();
        assert_eq!((t.tls, t.port, path(&t)), (true, 443, "/".to_owned()));
        let t = Target::parse("http://[::1]:9/?x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        assert_eq!(
            (t.host_port(), path(&t)),
            ("[::1]:9".to_owned(), "/?x".to_owned())
        );
    }

    #[test]
    fn rejects_bad_urls_with_a_reason() {
        for (url, reason) in [
            ("ftp://x/", "scheme"),
            ("localhost:80", "scheme"),
            ("http:///x", "missing host"),
            ("http://h:99999/", "port"),
            ("http://u:p@h/", "credentials"),
            ("http://h{{i}}/", "placeholders"),
            ("http://h/a b", "spaces"),
        ] {
            let err = Target::parse(url).unwrap_err().to_string();
            assert!(err.contains(reason), "{url}: {err}");
        }
    }
}
