//! Rendering one HTTP/1.1 request to bytes.

use crate::config::{Header, RaceConfig};
use crate::template::{Template, Vars};

/// The request of a run, ready to be rendered per request.
#[derive(Debug)]
pub(crate) struct RequestTemplate {
    head_line: Vec<u8>,
    path: Template,
    /// Complete header lines (`Name: value`), user headers and defaults.
    headers: Vec<Template>,
    body: Template,
    /// Whether to add `Content-Length` computed from the rendered body.
    content_length: bool,
    pub(crate) is_head: bool,
}

impl RequestTemplate {
    pub(crate) fn new(config: &RaceConfig, path: Template, authority: &str) -> Self {
        let has = |name: &str| {
            config
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(name))
        };
        let mut headers: Vec<Template> = Vec::new();
        let mut add = |h: &Header| {
            headers.push(Template::parse(
                format!("{}: {}", h.name, h.value).as_bytes(),
            ));
        };
        let defaults = [
            ("Host", authority.to_owned()),
            (
                "User-Agent",
                concat!("tollgate-race/", env!("CARGO_PKG_VERSION")).to_owned(),
            ),
            ("Connection", "close".to_owned()),
        ];
        for (name, value) in defaults {
            if !has(name) {
                add(&Header {
                    name: name.to_owned(),
                    value,
                });
            }
        }
        config.headers.iter().for_each(add);
        let method = config.method.to_ascii_uppercase();
        let bodyless = matches!(method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS");
        Self {
            head_line: config.method.as_bytes().to_vec(),
            path,
            headers,
            body: Template::parse(&config.body),
            content_length: (!bodyless || !config.body.is_empty()) && !has("Content-Length"),
            is_head: method == "HEAD",
        }
    }

    /// The full request bytes for the request described by `vars`.
    pub(crate) fn render(&self, vars: Vars<'_>) -> Vec<u8> {
        let body = self.body.render(vars);
        let mut out = Vec::with_capacity(256 + body.len());
        out.extend_from_slice(&self.head_line);
        out.push(b' ');
        self.path.render_into(vars, &mut out);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for header in &self.headers {
            header.render_into(vars, &mut out);
            out.extend_from_slice(b"\r\n");
        }
        if self.content_length {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
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
