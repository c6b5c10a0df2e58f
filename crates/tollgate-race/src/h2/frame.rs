//! HTTP/2 frames (RFC 9113 §4, §6): just what a client racing requests needs.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{ErrorKind, RequestError};

pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub(crate) const DATA: u8 = 0x0;
pub(crate) const HEADERS: u8 = 0x1;
pub(crate) const RST_STREAM: u8 = 0x3;
pub(crate) const SETTINGS: u8 = 0x4;
pub(crate) const PING: u8 = 0x6;
pub(crate) const GOAWAY: u8 = 0x7;
pub(crate) const WINDOW_UPDATE: u8 = 0x8;
pub(crate) const CONTINUATION: u8 = 0x9;

pub(crate) const END_STREAM: u8 = 0x1;
pub(crate) const ACK: u8 = 0x1;
pub(crate) const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

pub(crate) const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub(crate) const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub(crate) const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub(crate) const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// The largest flow-control window (2^31 - 1).
pub(crate) const MAX_WINDOW: u32 = 0x7fff_ffff;
/// The window every stream and the connection start with.
pub(crate) const DEFAULT_WINDOW: u32 = 65_535;

/// One received frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) stream: u32,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    /// The payload without padding and priority fields (for DATA and HEADERS).
    pub(crate) fn content(&self) -> Result<&[u8], RequestError> {
        let mut body = self.payload.as_slice();
        let mut pad = 0;
        if self.flags & PADDED != 0 && matches!(self.kind, DATA | HEADERS) {
            let (&len, rest) = body
                .split_first()
                .ok_or_else(|| bad("empty padded frame"))?;
            pad = usize::from(len);
            body = rest;
        }
        if self.flags & PRIORITY != 0 && self.kind == HEADERS {
            body = body.get(5..).ok_or_else(|| bad("short priority fields"))?;
        }
        body.get(..body.len().wrapping_sub(pad))
            .filter(|_| pad <= body.len())
            .ok_or_else(|| bad("padding longer than the frame"))
    }

    /// `(identifier, value)` pairs of a SETTINGS frame.
    pub(crate) fn settings(&self) -> impl Iterator<Item = (u16, u32)> + '_ {
        self.payload.chunks_exact(6).map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
    }

    /// A 32-bit big-endian field at `at` (error codes, stream ids, increments).
    pub(crate) fn u32_at(&self, at: usize) -> u32 {
        let b = self.payload.get(at..at + 4).unwrap_or(&[0; 4]);
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & MAX_WINDOW
    }
}

pub(crate) fn bad(message: &str) -> RequestError {
    RequestError::new(ErrorKind::Protocol, format!("HTTP/2: {message}"))
}

/// Appends one frame to `out`.
pub(crate) fn write(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    out.extend_from_slice(&len[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&(stream & MAX_WINDOW).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Appends a SETTINGS frame with the given pairs.
pub(crate) fn write_settings(out: &mut Vec<u8>, pairs: &[(u16, u32)]) {
    let payload: Vec<u8> = pairs
        .iter()
        .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
        .collect();
    write(out, SETTINGS, 0, 0, &payload);
}

/// Reads one frame, refusing payloads larger than `max_len`.
pub(crate) async fn read<R: AsyncRead + Unpin>(
    stream: &mut R,
    max_len: usize,
) -> Result<Frame, RequestError> {
    let mut head = [0u8; 9];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|e| RequestError::io(&e))?;
    if head.starts_with(b"HTTP/1.") {
        return Err(bad(
            "the server answered in HTTP/1.x; it does not accept HTTP/2 \
                        with prior knowledge (use --sync last-byte)",
        ));
    }
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    if len > max_len {
        return Err(bad("frame larger than the advertised maximum"));
    }
    let mut payload = vec![0; len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| RequestError::io(&e))?;
    Ok(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & MAX_WINDOW,
        payload,
    })
}

/// HPACK (RFC 7541) encoding with literals only ("literal header field without indexing",
/// no Huffman): stateless, so every header block stands alone.
pub(crate) fn hpack_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    hpack_string(out, name);
    hpack_string(out, value);
}

fn hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    // 7-bit prefix integer (§5.1), Huffman bit clear.
    let mut len = s.len();
    if len < 127 {
        out.push(len as u8);
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push((len % 128 + 128) as u8);
            len /= 128;
        }
        out.push(len as u8);
    }
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_frame_header() {
        let mut out = Vec::new();
        write(&mut out, DATA, END_STREAM, 3, b"x");
        assert_eq!(out, [0, 0, 1, 0, 1, 0, 0, 0, 3, b'x']);
    }

    #[tokio::test]
    async fn reads_frames_and_strips_padding() {
        let mut raw = Vec::new();
        write(
            &mut raw,
            DATA,
            PADDED | END_STREAM,
            5,
            &[2, b'h', b'i', 0, 0],
        );
        let frame = read(&mut raw.as_slice(), 16_384).await.unwrap();
        assert_eq!(
            (frame.kind, frame.stream, frame.content().unwrap()),
            (DATA, 5, &b"hi"[..])
        );
        assert_eq!(
            read(&mut raw.as_slice(), 2).await.unwrap_err().kind,
            ErrorKind::Protocol
        );
    }

    #[test]
    fn hpack_literals_use_prefix_integers() {
        let mut out = Vec::new();
        hpack_literal(&mut out, b":path", &[b'a'; 130]);
        assert_eq!(&out[..8], &[0, 5, b':', b'p', b'a', b't', b'h', 127]);
        assert_eq!((out[8], out.len()), (3, 9 + 130));
    }
}
