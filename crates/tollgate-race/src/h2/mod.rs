//! HTTP/2 single-packet mode: every request on one connection, each withheld by its final
//! DATA frame (the one carrying `END_STREAM`); then all final frames go out in a single write,
//! so they share one TCP packet (and one TLS record) when they fit — 100 of them take ~1 KB.
//! Network jitter between requests then disappears: they arrive together or not at all.
//!
//! Needs a server that speaks HTTP/2: ALPN `h2` over TLS, or prior knowledge (`h2c`) over
//! plain TCP. Request bodies must fit the server's initial flow-control windows.

mod frame;

use std::time::{Duration, Instant};

use frame::{ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, Frame, GOAWAY, HEADERS};
use frame::{PING, RST_STREAM, SETTINGS, WINDOW_UPDATE, bad};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{ErrorKind, RequestError};
use crate::io::{send, within};
use crate::plan::{Plan, RequestOutcome, Settled};
use crate::request::Parts;
use crate::response::Response;

/// Frames larger than this are refused (the HTTP/2 default we advertise by not changing it).
const OUR_MAX_FRAME: usize = 16_384;

/// Headers that are HTTP/1.1 connection-specific and forbidden in HTTP/2 (RFC 9113 §8.2.2).
const CONNECTION_HEADERS: [&str; 6] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// What the server allowed in its SETTINGS.
#[derive(Debug)]
struct Peer {
    max_streams: u32,
    stream_window: u32,
    max_frame: usize,
}

pub(crate) async fn single_packet(plan: &Plan, requests: Vec<Parts>) -> Settled {
    let n = requests.len();
    let fail_all = |e: RequestError| {
        let outcomes = (0..n).map(|_| RequestOutcome::failed(e.clone(), None));
        (outcomes.collect(), Duration::ZERO)
    };
    let connected = within(plan.timeout, "connecting", async {
        let mut stream = plan.connector.connect().await?;
        let peer = handshake(&mut stream).await?;
        let (prefix, last) = frames(plan, &peer, &requests)?;
        send(&mut stream, &prefix).await?;
        Ok((stream, last))
    });
    let (mut stream, last) = match connected.await {
        Ok(ready) => ready,
        Err(e) => return fail_all(e),
    };
    let start = Instant::now();
    if let Err(e) = send(&mut stream, &last).await {
        return fail_all(e);
    }
    let released = Instant::now();
    let mut responses = Responses::new(n, released, plan.request.is_head);
    let read = within(plan.timeout, "waiting for the responses", async {
        responses.read_all(&mut stream).await
    });
    if let Err(e) = read.await {
        responses.fail_open(&e);
    }
    (responses.finish(), released - start)
}

async fn handshake<S>(stream: &mut S) -> Result<Peer, RequestError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = frame::PREFACE.to_vec();
    frame::write_settings(
        &mut out,
        &[
            (frame::SETTINGS_ENABLE_PUSH, 0),
            (frame::SETTINGS_INITIAL_WINDOW_SIZE, frame::MAX_WINDOW),
        ],
    );
    let increment = frame::MAX_WINDOW - frame::DEFAULT_WINDOW;
    frame::write(&mut out, WINDOW_UPDATE, 0, 0, &increment.to_be_bytes());
    send(stream, &out).await?;
    loop {
        let f = frame::read(stream, OUR_MAX_FRAME).await?;
        match f.kind {
            SETTINGS if f.flags & ACK == 0 => {
                let mut peer = Peer {
                    max_streams: u32::MAX,
                    stream_window: frame::DEFAULT_WINDOW,
                    max_frame: OUR_MAX_FRAME,
                };
                for (id, value) in f.settings() {
                    match id {
                        frame::SETTINGS_MAX_CONCURRENT_STREAMS => peer.max_streams = value,
                        frame::SETTINGS_INITIAL_WINDOW_SIZE => peer.stream_window = value,
                        frame::SETTINGS_MAX_FRAME_SIZE => peer.max_frame = max_frame(value)?,
                        _ => {}
                    }
                }
                let mut ack = Vec::new();
                frame::write(&mut ack, SETTINGS, ACK, 0, &[]);
                send(stream, &ack).await?;
                return Ok(peer);
            }
            GOAWAY => return Err(bad("the server refused the connection (GOAWAY)")),
            _ => {}
        }
    }
}

/// The fuzz target's connection: the handshake, then the responses of `n` streams. The
/// largest frame the peer allows is returned too: [`frames`] cuts bodies by it.
#[cfg(feature = "fuzzing")]
pub(crate) async fn fuzz_connection<S>(
    mut stream: S,
    n: usize,
    head_request: bool,
) -> Result<(usize, Vec<RequestOutcome>), RequestError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let peer = handshake(&mut stream).await?;
    let mut responses = Responses::new(n, Instant::now(), head_request);
    if let Err(e) = responses.read_all(&mut stream).await {
        responses.fail_open(&e);
    }
    Ok((peer.max_frame, responses.finish()))
}

/// The peer's SETTINGS_MAX_FRAME_SIZE, which RFC 9113 §6.5.2 bounds to 2^14..2^24 (request
/// bodies are cut into frames of this size, so a 0 would never end).
fn max_frame(value: u32) -> Result<usize, RequestError> {
    usize::try_from(value)
        .ok()
        .filter(|v| (1 << 14..1 << 24).contains(v))
        .ok_or_else(|| bad(&format!("SETTINGS_MAX_FRAME_SIZE {value} is out of range")))
}

/// Everything but the final frames, and the final frames (one per request).
fn frames(
    plan: &Plan,
    peer: &Peer,
    requests: &[Parts],
) -> Result<(Vec<u8>, Vec<u8>), RequestError> {
    if u32::try_from(requests.len()).map_or(true, |n| n > peer.max_streams) {
        let max = peer.max_streams;
        return Err(bad(&format!(
            "the server allows only {max} concurrent streams"
        )));
    }
    let total: usize = requests.iter().map(|r| r.body.len()).sum();
    let too_big = |len: usize, window: u32| u32::try_from(len).map_or(true, |len| len > window);
    if too_big(total, frame::DEFAULT_WINDOW)
        || requests
            .iter()
            .any(|r| too_big(r.body.len(), peer.stream_window))
    {
        return Err(bad(
            "request bodies exceed the server's initial flow-control window",
        ));
    }
    let (mut prefix, mut last) = (Vec::new(), Vec::new());
    for (stream, request) in (1u32..).step_by(2).zip(requests) {
        let block = header_block(plan, request);
        if block.len() > peer.max_frame {
            return Err(bad("request headers larger than one frame"));
        }
        frame::write(&mut prefix, HEADERS, END_HEADERS, stream, &block);
        let (head, tail) = request.body.split_at(request.body.len().saturating_sub(1));
        for chunk in head.chunks(peer.max_frame) {
            frame::write(&mut prefix, DATA, 0, stream, chunk);
        }
        frame::write(&mut last, DATA, END_STREAM, stream, tail);
    }
    Ok((prefix, last))
}

fn header_block(plan: &Plan, request: &Parts) -> Vec<u8> {
    let scheme: &[u8] = if plan.connector.is_tls() {
        b"https"
    } else {
        b"http"
    };
    let mut block = Vec::with_capacity(256);
    frame::hpack_literal(&mut block, b":method", plan.request.method.as_bytes());
    frame::hpack_literal(&mut block, b":scheme", scheme);
    frame::hpack_literal(&mut block, b":authority", plan.request.authority.as_bytes());
    frame::hpack_literal(&mut block, b":path", &request.path);
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if !CONNECTION_HEADERS.contains(&name.as_str()) {
            frame::hpack_literal(&mut block, name.as_bytes(), value);
        }
    }
    block
}

/// The responses of one connection's streams (stream `2i + 1` is request `i`).
struct Responses {
    streams: Vec<StreamState>,
    open: usize,
    released: Instant,
    head_request: bool,
    decoder: loona_hpack::Decoder<'static>,
}

#[derive(Default)]
struct StreamState {
    status: Option<u16>,
    body: Vec<u8>,
    block: Vec<u8>,
    end_after_headers: bool,
    outcome: Option<RequestOutcome>,
}

impl Responses {
    fn new(n: usize, released: Instant, head_request: bool) -> Self {
        Self {
            streams: (0..n).map(|_| StreamState::default()).collect(),
            open: n,
            released,
            head_request,
            decoder: loona_hpack::Decoder::new(),
        }
    }

    async fn read_all<S>(&mut self, stream: &mut S) -> Result<(), RequestError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        while self.open > 0 {
            let f = frame::read(stream, OUR_MAX_FRAME).await?;
            match f.kind {
                HEADERS | CONTINUATION | DATA | RST_STREAM => self.on_stream_frame(&f)?,
                SETTINGS | PING if f.flags & ACK == 0 => {
                    let mut ack = Vec::new();
                    let payload: &[u8] = if f.kind == PING { &f.payload } else { &[] };
                    frame::write(&mut ack, f.kind, ACK, 0, payload);
                    send(stream, &ack).await?;
                }
                GOAWAY => {
                    let last = f.u32_at(0);
                    let error =
                        RequestError::new(ErrorKind::Reset, "HTTP/2 GOAWAY before a response");
                    for id in (1u32..).step_by(2).take(self.streams.len()) {
                        if id > last {
                            self.fail(id, error.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_stream_frame(&mut self, f: &Frame) -> Result<(), RequestError> {
        let index = (f.stream as usize).wrapping_sub(1) / 2;
        let Some(state) = self.streams.get_mut(index).filter(|_| f.stream % 2 == 1) else {
            return Ok(());
        };
        match f.kind {
            HEADERS | CONTINUATION => {
                if f.kind == HEADERS {
                    state.block.extend_from_slice(f.content()?);
                    state.end_after_headers = f.flags & END_STREAM != 0;
                } else {
                    state.block.extend_from_slice(&f.payload);
                }
                if f.flags & END_HEADERS == 0 {
                    return Ok(());
                }
                let block = std::mem::take(&mut state.block);
                let headers = self
                    .decoder
                    .decode(&block)
                    .map_err(|e| bad(&format!("HPACK: {e}")))?;
                let status = headers.iter().find(|(n, _)| n == b":status");
                let status =
                    status.and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u16>().ok());
                let state = &mut self.streams[index];
                if state.status.is_none() && !status.is_some_and(|s| (100..200).contains(&s)) {
                    state.status = status;
                }
                if state.end_after_headers {
                    self.finish_stream(f.stream);
                }
            }
            DATA => {
                if !self.head_request {
                    state.body.extend_from_slice(f.content()?);
                }
                if f.flags & END_STREAM != 0 {
                    self.finish_stream(f.stream);
                }
            }
            _ => {
                let code = f.u32_at(0);
                let message = format!("HTTP/2 stream reset by the server (error code {code})");
                self.fail(f.stream, RequestError::new(ErrorKind::Reset, message));
            }
        }
        Ok(())
    }

    /// The stream ended: a response if it had a status.
    fn finish_stream(&mut self, id: u32) {
        let index = (id as usize - 1) / 2;
        let state = &mut self.streams[index];
        let outcome = match state.status {
            Some(status) => {
                let body = std::mem::take(&mut state.body);
                RequestOutcome::response(Response { status, body }, self.released)
            }
            None => {
                RequestOutcome::failed(bad("stream ended without a :status"), Some(self.released))
            }
        };
        self.complete(id, outcome);
    }

    fn fail(&mut self, id: u32, error: RequestError) {
        self.complete(id, RequestOutcome::failed(error, Some(self.released)));
    }

    fn complete(&mut self, id: u32, outcome: RequestOutcome) {
        let state = &mut self.streams[(id as usize - 1) / 2];
        if state.outcome.is_none() {
            state.outcome = Some(outcome);
            self.open -= 1;
        }
    }

    fn fail_open(&mut self, error: &RequestError) {
        let released = Some(self.released);
        for state in &mut self.streams {
            state
                .outcome
                .get_or_insert_with(|| RequestOutcome::failed(error.clone(), released));
        }
        self.open = 0;
    }

    fn finish(self) -> Vec<RequestOutcome> {
        let error = RequestError::new(ErrorKind::Io, "request lost");
        let released = Some(self.released);
        let lost = || RequestOutcome::failed(error.clone(), released);
        self.streams
            .into_iter()
            .map(|s| s.outcome.unwrap_or_else(lost))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that sends one SETTINGS frame with SETTINGS_MAX_FRAME_SIZE = `max_frame`.
    async fn handshake_with(max_frame: u32) -> Result<Peer, RequestError> {
        let mut server = Vec::new();
        frame::write_settings(&mut server, &[(frame::SETTINGS_MAX_FRAME_SIZE, max_frame)]);
        let mut io = tokio::io::join(server.as_slice(), tokio::io::sink());
        handshake(&mut io).await
    }

    /// Found by the `http2_connection` fuzz target: 2298478600 was accepted (and a 0 would
    /// have cut request bodies into empty frames forever).
    #[tokio::test]
    async fn a_max_frame_size_out_of_range_is_refused() {
        for value in [0, 16_383, 1 << 24, 2_298_478_600] {
            let err = handshake_with(value).await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Protocol, "{value}");
            assert!(err.message.contains("out of range"), "{}", err.message);
        }
        for value in [16_384, (1 << 24) - 1] {
            assert_eq!(
                handshake_with(value).await.unwrap().max_frame,
                value as usize
            );
        }
    }
}
