//! Opening connections: plain TCP or TLS (rustls), with Nagle disabled so that a single
//! final byte leaves immediately.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use std::io::Write as _;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{ErrorKind, RaceError, RequestError};
use crate::target::Target;

/// An open connection to the target.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Opens connections to one resolved address.
#[derive(Clone)]
pub(crate) struct Connector {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Whether HTTP/2 is required (ALPN `h2` over TLS).
    http2: bool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("addr", &self.addr)
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .finish()
    }
}

impl Connector {
    /// Resolves the target's host and prepares TLS when the scheme is `https`.
    pub(crate) async fn new(
        target: &Target,
        insecure: bool,
        http2: bool,
    ) -> Result<Self, RaceError> {
        let resolve_err = |source| RaceError::Resolve {
            host: target.host.clone(),
            source,
        };
        let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(resolve_err)?
            .next()
            .ok_or_else(|| resolve_err(io::Error::other("no address found")))?;
        let tls = if target.tls {
            let name = ServerName::try_from(target.host.clone()).map_err(|e| RaceError::Url {
                url: target.host.clone(),
                reason: e.to_string(),
            })?;
            Some((tls::connector(insecure, http2)?, name))
        } else {
            None
        };
        Ok(Self { addr, tls, http2 })
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub(crate) async fn connect(&self) -> Result<Stream, RequestError> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| RequestError::new(ErrorKind::Connect, e.to_string()))?;
        tcp.set_nodelay(true).map_err(|e| RequestError::io(&e))?;
        let Some((connector, name)) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let tls = connector
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| RequestError::new(ErrorKind::Tls, tls::describe(&e)))?;
        if self.http2 && tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            let message = "the server did not negotiate HTTP/2 (ALPN h2); use --sync last-byte";
            return Err(RequestError::new(ErrorKind::Tls, message));
        }
        Ok(Stream::Tls(Box::new(tls)))
    }
}

impl Stream {
    /// Writes `byte` without waiting, from any thread. `Ok(false)`: the socket was not
    /// writable and [`Stream::finish_byte`] must complete the write.
    pub(crate) fn write_byte_now(&mut self, byte: u8) -> io::Result<bool> {
        match self {
            Self::Plain(tcp) => match tcp.try_write(&[byte]) {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                Err(e) => Err(e),
            },
            Self::Tls(tls) => {
                let (tcp, session) = tls.get_mut();
                session.writer().write_all(&[byte])?;
                while session.wants_write() {
                    match session.write_tls(&mut TryWriter(tcp)) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                        Err(e) => return Err(e),
                    }
                }
                Ok(true)
            }
        }
    }

    /// Completes a [`Stream::write_byte_now`] that returned `Ok(false)`.
    pub(crate) async fn finish_byte(&mut self, byte: u8) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.write_all(&[byte]).await,
            // The byte is already in the TLS session; only its record is still to be sent.
            Self::Tls(tls) => tls.flush().await,
        }
    }
}

/// `std::io::Write` over a tokio socket's non-blocking `try_write`.
struct TryWriter<'a>(&'a mut TcpStream);

impl io::Write for TryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

mod tls {
    use std::io;
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
    use tokio_rustls::TlsConnector;

    pub(super) fn connector(insecure: bool, http2: bool) -> Result<TlsConnector, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let mut config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth()
        } else {
            let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let alpn: &[u8] = if http2 { b"h2" } else { b"http/1.1" };
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(TlsConnector::from(Arc::new(config)))
    }

    /// A handshake error with a hint when the certificate is the problem.
    pub(super) fn describe(err: &io::Error) -> String {
        let cert_problem = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
        if cert_problem {
            format!(
                "TLS handshake failed: {err} (use --insecure to accept self-signed certificates)"
            )
        } else {
            format!("TLS handshake failed: {err}")
        }
    }

    /// `--insecure`: any certificate is accepted, but handshake signatures are still checked.
    #[derive(Debug)]
    struct AcceptAnyCert(WebPkiSupportedAlgorithms);

    impl ServerCertVerifier for AcceptAnyCert {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_schemes()
        }
    }
}
