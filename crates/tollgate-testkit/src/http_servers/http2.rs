//! An HTTP/2 test server (the `h2` crate): prior knowledge, or TLS with ALPN `h2`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{Handler, Io, Seen, Server};

/// An HTTP/2 server (prior knowledge, or TLS with ALPN `h2`) running `app`; the counter
/// says how many connections it accepted.
pub async fn serve(app: Handler, tls: bool) -> (Server, Arc<AtomicUsize>) {
    serve_on(super::LOOPBACK, app, tls).await
}

/// [`serve`] on `addr`.
pub async fn serve_on(addr: SocketAddr, app: Handler, tls: bool) -> (Server, Arc<AtomicUsize>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let acceptor = tls.then(|| super::tls_acceptor(&[b"h2"]));
    let (log, count) = (Arc::clone(&seen), Arc::clone(&connections));
    let (addr, accept) = super::listen(addr, acceptor, move |io| {
        count.fetch_add(1, Ordering::SeqCst);
        connection(io, Arc::clone(&app), Arc::clone(&log))
    })
    .await;
    (Server::new(addr, seen, accept), connections)
}

async fn connection(io: Io, app: Handler, log: Arc<Mutex<Vec<Seen>>>) {
    let Ok(mut conn) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((request, respond))) = conn.accept().await {
        tokio::spawn(stream(request, respond, Arc::clone(&app), Arc::clone(&log)));
    }
}

async fn stream(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    app: Handler,
    log: Arc<Mutex<Vec<Seen>>>,
) {
    let (parts, mut body) = request.into_parts();
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let header = |(n, v): (&http::HeaderName, &http::HeaderValue)| {
        (
            n.to_string(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        )
    };
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        headers: parts.headers.iter().map(header).collect(),
        body: bytes,
    };
    log.lock().unwrap().push(seen.clone());
    let Some((status, text)) = app(seen).await else {
        respond.send_reset(h2::Reason::CANCEL);
        return;
    };
    let response = http::Response::builder().status(status).body(()).unwrap();
    if let Ok(mut send) = respond.send_response(response, false) {
        let _ = send.send_data(bytes::Bytes::from(text), true);
    }
}
