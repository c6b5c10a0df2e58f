//! Loopback HTTP servers started inside tests: racy, guarded, recording, silent, TLS, and
//! HTTP/2 ([`http2`]). The race tester's tests and the CLI's run against the same servers.
//! They panic on setup failure, like the tests themselves.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod http2;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request's method.
    pub method: String,
    /// The request's path (and query).
    pub path: String,
    /// Its headers, in order, as sent.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

impl Seen {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }
}

/// `None` closes the connection without a response.
pub type Reply = Option<(u16, String)>;
/// The application behind a test server, whatever the protocol.
pub type Handler = Arc<dyn Fn(Seen) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// Boxes an async closure into a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    Arc::new(move |seen| Box::pin(f(seen)))
}

/// A running server; stops accepting when dropped.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every request it read, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    accept: JoinHandle<()>,
}

impl Server {
    /// A server whose accept loop is `accept`, recording requests into `seen`.
    pub fn new(addr: SocketAddr, seen: Arc<Mutex<Vec<Seen>>>, accept: JoinHandle<()>) -> Self {
        Self { addr, seen, accept }
    }

    /// `http://` its address `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `https://` its address `path`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The S3 bug: check "exists?", then the slow paid call, then insert. Every request that
/// checks before the first insert gets 201; this one makes sure all `racers` requests of a path
/// (a trial of `tollgate race -n racers`) check before any of them inserts, so a race tool that
/// sends them together sees exactly `racers` 201s a trial, not a count that depends on how the
/// machine schedules them (see [`racy_app`]).
pub async fn racy(racers: usize) -> Server {
    serve(None, racy_app(racers)).await
}

/// How long a request of [`racy_app`] waits for the other racers of its path to check. A
/// tool that does not send them together (one at a time) makes each path wait this long once,
/// then gets one 201 and 409s: it finds no race, and its test fails.
pub const RACERS_WAIT: Duration = Duration::from_secs(5);

/// The racy application alone (see [`racy`]): after its "exists?" check, a request waits until
/// `racers` requests of its path have checked (or [`RACERS_WAIT`] has passed, after which the
/// path waits no more), then makes the paid call and inserts.
pub fn racy_app(racers: usize) -> Handler {
    let stored = Arc::new(Mutex::new(HashSet::new()));
    // One count per path, kept for the server's life (like `stored`): a test server's paths
    // are a test's trials.
    let checked = Arc::new(Mutex::new(HashMap::<String, watch::Sender<usize>>::new()));
    handler(move |seen| {
        let (stored, checked) = (Arc::clone(&stored), Arc::clone(&checked));
        async move {
            if stored.lock().unwrap().contains(&seen.path) {
                return Some((409, "report already exists".to_owned()));
            }
            let mut all_checked = {
                let mut checked = checked.lock().unwrap();
                let count = checked
                    .entry(seen.path.clone())
                    .or_insert_with(|| watch::channel(0).0);
                count.send_modify(|n| *n = n.saturating_add(1));
                count.subscribe()
            };
            let waited = all_checked.wait_for(|&n| n >= racers);
            if tokio::time::timeout(RACERS_WAIT, waited).await.is_err() {
                // The others are not coming: no later request of this path waits.
                let checked = checked.lock().unwrap();
                if let Some(count) = checked.get(&seen.path) {
                    count.send_replace(usize::MAX);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await; // the paid API call
            stored.lock().unwrap().insert(seen.path);
            Some((201, "report created".to_owned()))
        }
    })
}

/// The fix: an atomic claim (insert under one lock) before the slow call.
pub async fn guarded() -> Server {
    serve(None, guarded_app()).await
}

/// The guarded application alone (see [`guarded`]).
pub fn guarded_app() -> Handler {
    let claimed = Arc::new(Mutex::new(HashSet::new()));
    handler(move |seen| {
        let claimed = Arc::clone(&claimed);
        async move {
            if !claimed.lock().unwrap().insert(seen.path) {
                return Some((409, "report already exists".to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await; // the paid API call
            Some((201, "report created".to_owned()))
        }
    })
}

/// Answers 200 with the request index found in the `X-Index` header, if any.
pub async fn ok() -> Server {
    serve(None, ok_app()).await
}

/// The application of [`ok`].
pub fn ok_app() -> Handler {
    handler(|seen| async move {
        let body = format!("ok {}", seen.header("x-index").unwrap_or("-"));
        Some((200, body))
    })
}

/// Reads requests and never answers.
pub async fn silent() -> Server {
    serve(None, handler(|_| std::future::pending())).await
}

/// Reads each request and closes the connection without answering.
pub async fn hangs_up() -> Server {
    serve(None, handler(|_| async { None })).await
}

/// A TLS server (self-signed certificate for `localhost` and `127.0.0.1`) answering 200 to everything.
pub async fn tls_ok() -> Server {
    let app = handler(|_| async { Some((200, "secure".to_owned())) });
    serve(Some(tls_acceptor(&[])), app).await
}

/// A port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A connection as a server sees it: plain TCP, or TLS after the handshake.
pub type Io = Box<dyn IoStream>;

/// What [`Io`] boxes.
pub trait IoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> IoStream for T {}

/// Loopback, any free port: where the test servers listen.
pub const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Binds `addr` (the send-spread example serves on a veth address) and hands every accepted
/// connection (after the TLS handshake when `tls` is given) to `serve_one`, each on its own
/// task.
pub async fn listen<F, Fut>(
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    serve_one: F,
) -> (SocketAddr, JoinHandle<()>)
where
    F: Fn(Io) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve_one = Arc::new(serve_one);
    let accept = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (serve_one, tls) = (Arc::clone(&serve_one), tls.clone());
            tokio::spawn(async move {
                let io: Io = match tls {
                    None => Box::new(tcp),
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => Box::new(stream),
                        Err(_) => return,
                    },
                };
                serve_one(io).await;
            });
        }
    });
    (addr, accept)
}

/// An HTTP/1.1 server (over TLS when `tls` is given) running `handler`.
pub async fn serve(tls: Option<tokio_rustls::TlsAcceptor>, handler: Handler) -> Server {
    serve_on(LOOPBACK, tls, handler).await
}

/// [`serve`] on `addr`.
pub async fn serve_on(
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: Handler,
) -> Server {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let (addr, accept) = listen(addr, tls, move |io| {
        connection(io, Arc::clone(&handler), Arc::clone(&log))
    })
    .await;
    Server { addr, seen, accept }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    handler: Handler,
    log: Arc<Mutex<Vec<Seen>>>,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    log.lock().unwrap().push(request.clone());
    let Some((status, body)) = handler(request).await else {
        return;
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads one request (head and `Content-Length` body); `None` if the client closed first.
pub async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, path) = (
        request_line.next()?.to_owned(),
        request_line.next()?.to_owned(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut seen = Seen {
        method,
        path,
        headers,
        body: buf.split_off(head_end + 4),
    };
    let len: usize = seen
        .header("content-length")
        .map_or(Some(0), |v| v.parse().ok())?;
    while seen.body.len() < len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        seen.body.extend_from_slice(&chunk[..n]);
    }
    Some(seen)
}

/// A TLS acceptor with a fresh self-signed certificate, offering the `alpn` protocols.
pub fn tls_acceptor(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let key = PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Makes sure this process may hold `needed` open files (sockets included): raises the soft
/// limit up to the hard one if it is lower, and panics, naming both, if even the hard limit is
/// too low. A test with hundreds of loopback connections holds two descriptors for each (the
/// client's and the server's); the usual soft limit is 1024 on Linux and 256 on macOS.
pub fn allow_open_files(needed: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (
        limit.current.unwrap_or(u64::MAX),
        limit.maximum.unwrap_or(u64::MAX),
    );
    if soft >= needed {
        return;
    }
    assert!(
        hard >= needed,
        "this test needs {needed} open files; the hard limit is {hard} (`ulimit -Hn`)"
    );
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised)
        .unwrap_or_else(|e| panic!("raising the open-files limit from {soft} to {hard}: {e}"));
}
