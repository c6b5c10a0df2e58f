//! Rendering one request: HTTP/1.1 bytes, or the parts an HTTP/2 request is made of.

use crate::config::RaceConfig;
use crate::template::{Template, Vars};

/// The request of a run, ready to be rendered per request.
#[derive(Debug)]
pub(crate) struct RequestTemplate {
    pub(crate) method: String,
    pub(crate) authority: String,
    path: Template,
    /// User headers and the defaults they do not override.
    headers: Vec<(String, Template)>,
    body: Template,
    /// Whether to add `Content-Length` computed from the rendered body.
    content_length: bool,
    pub(crate) is_head: bool,
}

/// One rendered request, before it is framed for a protocol.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) path: Vec<u8>,
    /// Header names and values, `Content-Length` included when due.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
}

impl RequestTemplate {
    pub(crate) fn new(config: &RaceConfig, path: Template, authority: &str) -> Self {
        let has = |name: &str| {
            config
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(name))
        };
        let user_agent = concat!("tollgate-race/", env!("CARGO_PKG_VERSION"));
        let defaults = [
            ("Host", authority),
            ("User-Agent", user_agent),
            ("Connection", "close"),
        ];
        let headers = defaults
            .into_iter()
            .filter(|(name, _)| !has(name))
            .map(|(name, value)| (name.to_owned(), value.as_bytes()))
            .chain(
                config
                    .headers
                    .iter()
                    .map(|h| (h.name.clone(), h.value.as_bytes())),
            )
            .map(|(name, value)| (name, Template::parse(value)))
            .collect();
        let method = config.method.to_ascii_uppercase();
        let bodyless = matches!(method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS");
        Self {
            method: config.method.clone(),
            authority: authority.to_owned(),
            path,
            headers,
            body: Template::parse(&config.body),
            content_length: (!bodyless || !config.body.is_empty()) && !has("Content-Length"),
            is_head: method == "HEAD",
        }
    }

    /// The request described by `vars`, placeholders substituted.
    pub(crate) fn parts(&self, vars: Vars<'_>) -> Parts {
        let body = self.body.render(vars);
        let mut headers: Vec<_> = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.render(vars)))
            .collect();
        if self.content_length {
            let length = body.len().to_string().into_bytes();
            headers.push(("Content-Length".to_owned(), length));
        }
        Parts {
            path: self.path.render(vars),
            headers,
            body,
        }
    }

    /// The full HTTP/1.1 request bytes for the request described by `vars`.
    pub(crate) fn render(&self, vars: Vars<'_>) -> Vec<u8> {
        let parts = self.parts(vars);
        let mut out = Vec::with_capacity(256 + parts.body.len());
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&parts.path);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &parts.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&parts.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars<'static> {
        Vars {
            index: 4,
            trial: 0,
            trial_uuid: "t",
        }
    }

    #[test]
    fn renders_post_with_templated_header_and_body() {
        let mut config = RaceConfig::new("http://h/");
        config.method = "POST".into();
        config
            .headers
            .push("Idempotency-Key: k-{{i}}".parse().unwrap());
        config.body = b"{\"n\":{{i}}}".to_vec();
        let req = RequestTemplate::new(&config, Template::parse(b"/x/{{i}}"), "h:81");
        let text = String::from_utf8(req.render(vars())).unwrap();
        assert_eq!(
            text,
            format!(
                "POST /x/4 HTTP/1.1\r\nHost: h:81\r\nUser-Agent: tollgate-race/{}\r\n\
                 Connection: close\r\nIdempotency-Key: k-4\r\nContent-Length: 7\r\n\r\n{{\"n\":4}}",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn user_headers_replace_defaults_and_get_has_no_length() {
        let mut config = RaceConfig::new("http://h/");
        config.headers.push("host: other".parse().unwrap());
        config
            .headers
            .push("connection: keep-alive".parse().unwrap());
        let req = RequestTemplate::new(&config, Template::parse(b"/"), "h");
        let text = String::from_utf8(req.render(vars())).unwrap();
        assert!(text.starts_with("GET / HTTP/1.1\r\nUser-Agent: "), "{text}");
        assert!(
            text.ends_with("\r\nhost: other\r\nconnection: keep-alive\r\n\r\n"),
            "{text}"
        );
        assert!(!text.contains("Content-Length"));
    }
}
