//! A minimal HTTP/1.1 response reader: status line, headers, and a body delimited by
//! `Content-Length`, chunked encoding, or the end of the connection.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{ErrorKind, RequestError};
use crate::template::find;

/// Bodies larger than this are a protocol error rather than an unbounded allocation.
const MAX_BODY: usize = 16 * 1024 * 1024;
const MAX_HEAD: usize = 64 * 1024;

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// Reads one response; `head_request` says the body is absent whatever the headers claim.
/// Interim `1xx` responses are skipped.
pub(crate) async fn read_response<R: AsyncRead + Unpin>(
    stream: R,
    head_request: bool,
) -> Result<Response, RequestError> {
    let mut reader = Reader {
        inner: stream,
        buf: Vec::with_capacity(1024),
        pos: 0,
    };
    loop {
        let head = reader.read_head().await?;
        let status = parse_status(&head)?;
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let no_body = head_request || status == 204 || status == 304 || status < 200;
        let body = if no_body {
            Vec::new()
        } else if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            reader.read_chunked().await?
        } else if let Some(len) = header(&head, "content-length") {
            let len = len
                .parse::<usize>()
                .map_err(|_| protocol(format!("bad Content-Length `{len}`")))?;
            reader.read_exact(len).await?
        } else {
            reader.read_to_end().await?
        };
        return Ok(Response { status, body });
    }
}

fn protocol(message: impl Into<String>) -> RequestError {
    RequestError::new(ErrorKind::Protocol, message)
}

fn parse_status(head: &str) -> Result<u16, RequestError> {
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (version, code) = (parts.next(), parts.next());
    // RFC 9110 §15: three digits, 100 to 599 (`u16::from_str` alone takes `+12` and `021`).
    let status = match (version, code) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") && code.len() == 3 => code
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| code.parse::<u16>().ok())
            .flatten()
            .filter(|s| (100..=599).contains(s)),
        _ => None,
    };
    status.ok_or_else(|| protocol(format!("bad status line `{line}`")))
}

/// The value of the first header named `name` (lowercase), trimmed and lowercased.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_ascii_lowercase())
    })
}

struct Reader<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Reads more bytes; `Ok(false)` at end of stream.
    async fn fill(&mut self) -> Result<bool, RequestError> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 8192];
        let n = self
            .inner
            .read(&mut chunk)
            .await
            .map_err(|e| RequestError::io(&e))?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    async fn fill_or_truncated(&mut self, what: &str) -> Result<(), RequestError> {
        if self.fill().await? {
            Ok(())
        } else {
            Err(RequestError::new(
                ErrorKind::Reset,
                format!("connection closed in the middle of the {what}"),
            ))
        }
    }

    /// Reads up to and including the blank line ending the head.
    async fn read_head(&mut self) -> Result<String, RequestError> {
        loop {
            if let Some(end) = find(self.pending(), b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.pending()[..end]).into_owned();
                self.pos += end + 4;
                return Ok(head);
            }
            if self.pending().len() > MAX_HEAD {
                return Err(protocol("response head larger than 64 KiB"));
            }
            if !self.fill().await? {
                let message = if self.pending().is_empty() {
                    "connection closed without a response"
                } else {
                    "connection closed in the middle of the response head"
                };
                return Err(RequestError::new(ErrorKind::Reset, message));
            }
        }
    }

    async fn read_line(&mut self) -> Result<String, RequestError> {
        loop {
            if let Some(end) = find(self.pending(), b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending()[..end]).into_owned();
                self.pos += end + 2;
                return Ok(line);
            }
            self.fill_or_truncated("chunked body").await?;
        }
    }

    async fn read_exact(&mut self, len: usize) -> Result<Vec<u8>, RequestError> {
        if len > MAX_BODY {
            return Err(protocol(format!(
                "body of {len} bytes exceeds the 16 MiB limit"
            )));
        }
        while self.pending().len() < len {
            self.fill_or_truncated("body").await?;
        }
        let body = self.pending()[..len].to_vec();
        self.pos += len;
        Ok(body)
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, RequestError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| protocol(format!("bad chunk size `{line}`")))?;
            if size == 0 {
                while !self.read_line().await?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(protocol("chunked body exceeds the 16 MiB limit"));
            }
            body.extend_from_slice(&self.read_exact(size).await?);
            if !self.read_line().await?.is_empty() {
                return Err(protocol("chunk not followed by CRLF"));
            }
        }
    }

    async fn read_to_end(&mut self) -> Result<Vec<u8>, RequestError> {
        while self.fill().await? {
            if self.pending().len() > MAX_BODY {
                return Err(protocol("body exceeds the 16 MiB limit"));
            }
        }
        Ok(self.pending().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> Result<Response, RequestError> {
        read_response(bytes, false).await
    }

    #[tokio::test]
    async fn reads_content_length_body() {
        let r = read(b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello+junk").await;
        assert_eq!(
            r.unwrap(),
            Response {
                status: 201,
                body: b"hello".to_vec()
            }
        );
    }

    #[tokio::test]
    async fn reads_chunked_body_and_skips_100_continue() {
        let raw =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n";
        assert_eq!(
            read(raw).await.unwrap(),
            Response {
                status: 200,
                body: b"abcde".to_vec()
            }
        );
    }

    #[tokio::test]
    async fn reads_to_close_and_honours_head_requests() {
        let r = read(b"HTTP/1.0 409 Conflict\r\nX: y\r\n\r\ntaken")
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (409, &b"taken"[..]));
        let raw: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        let r = read_response(raw, true).await.unwrap();
        assert_eq!((r.status, r.body.len()), (200, 0));
    }

    #[tokio::test]
    async fn classifies_failures() {
        let kind = |r: Result<Response, RequestError>| r.unwrap_err().kind;
        assert_eq!(kind(read(b"").await), ErrorKind::Reset);
        assert_eq!(kind(read(b"HTTP/1.1 200 OK\r\nA").await), ErrorKind::Reset);
        assert_eq!(
            kind(read(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab").await),
            ErrorKind::Reset
        );
        assert_eq!(
            kind(read(b"SSH-2.0-OpenSSH\r\n\r\n").await),
            ErrorKind::Protocol
        );
        assert_eq!(
            kind(read(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").await),
            ErrorKind::Protocol
        );
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(kind(read(bad_chunk).await), ErrorKind::Protocol);
    }

    /// Found by the `http1_response` fuzz target: `021` was read as status 21.
    #[tokio::test]
    async fn status_codes_are_three_digits_from_100_to_599() {
        for line in ["021", "+12", "600", "2 1", "099"] {
            let raw = format!("HTTP/1.1 {line} Created\r\nContent-Length: 0\r\n\r\n");
            let err = read(raw.as_bytes()).await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Protocol, "{line}");
            assert!(err.message.starts_with("bad status line"), "{line}");
        }
        let r = read(b"HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(r.unwrap().status, 599);
    }
}
