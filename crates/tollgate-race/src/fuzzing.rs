//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`): the parsers a
//! server's bytes or a user's arguments reach, driven without a network or a runtime.
//!
//! Each function must return, whatever the input: a panic, or an input the readers would wait
//! on forever (a reader over a complete input that is still pending), is a bug.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::h2::fuzz_connection;
use crate::response::read_response;
use crate::template::{Template, Vars};

/// A server's bytes, handed out at most `chunk` bytes per read so that the readers' buffer
/// boundaries are exercised too; what the client writes is discarded.
#[derive(Debug)]
struct Script<'a> {
    input: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Script<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.chunk.min(self.input.len()).min(buf.remaining());
        let (now, rest) = self.input.split_at(n);
        buf.put_slice(now);
        self.input = rest;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Script<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The input as a script: its first byte is the chunk size (0 counts as 1).
fn script(data: &[u8]) -> Script<'_> {
    let (chunk, input) = data.split_first().map_or((1, data), |(&c, rest)| (c, rest));
    Script {
        input,
        chunk: usize::from(chunk.max(1)),
    }
}

/// Polls `future` to completion on this thread. Every read of a [`Script`] is ready, so a
/// future that is still pending after the input is spent would wait forever on a real server
/// that sent the same bytes and closed: that is reported as `Err`.
fn finish<F: Future>(future: F) -> Result<F::Output, &'static str> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    // Every poll of a reader over a script makes progress; no input needs this many.
    for _ in 0..1_000_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Ok(out);
        }
    }
    Err("the reader is still pending on a spent input")
}

/// Reads one HTTP/1.1 response from `data` (first byte: chunk size, then the server's bytes);
/// `Ok` with the status and body length, or the error message.
///
/// # Errors
/// The reader's error (a protocol error or a truncated response), or a reader that does not
/// finish on the spent input.
pub fn http1_response(data: &[u8], head_request: bool) -> Result<(u16, usize), String> {
    let read = finish(read_response(script(data), head_request))?;
    read.map(|r| (r.status, r.body.len()))
        .map_err(|e| e.message)
}

/// An HTTP/2 connection whose server sends `data` (first byte: chunk size, then the server's
/// frames): the handshake (SETTINGS), then the responses to `streams` requests through the
/// frame reader and the HPACK decoder. `Ok` with one entry per request, its status or its
/// error message.
///
/// # Panics
/// When the handshake accepts a maximum frame size outside what RFC 9113 §6.5.2 allows
/// (2^14 to 2^24 - 1): request bodies are cut into frames of that size.
///
/// # Errors
/// The handshake's error, or a reader that does not finish on the spent input.
pub fn http2_connection(
    data: &[u8],
    streams: usize,
    head_request: bool,
) -> Result<Vec<Result<u16, String>>, String> {
    let (max_frame, outcomes) =
        finish(fuzz_connection(script(data), streams, head_request))?.map_err(|e| e.message)?;
    assert!(
        (1 << 14..1 << 24).contains(&max_frame),
        "the peer's maximum frame size {max_frame} was accepted"
    );
    Ok(outcomes
        .into_iter()
        .map(|o| o.result.map(|r| r.status).map_err(|e| e.message))
        .collect())
}

/// Parses `data` as a URL, header, body and path template and renders each with fixed
/// values; returns the rendered template.
pub fn template(data: &[u8]) -> Vec<u8> {
    let vars = Vars {
        index: 7,
        trial: 3,
        trial_uuid: "T",
    };
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::target::Target::parse(text);
        let _ = text.parse::<crate::Header>();
    }
    Template::parse(data).render(vars)
}
