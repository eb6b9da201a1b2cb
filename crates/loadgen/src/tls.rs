//! TLS for the generator's connections (`run --tls-ca`): a connector that opens either a
//! plain TCP stream or a TLS stream over one, and [`Stream`], which is either, so the
//! closed loop serves both through the same code.
//!
//! The client verifies the server's certificate against the given CA and name, as a real
//! client would; there is no switch to turn verification off. Only the closed loop and
//! preloading take TLS: the open loop splits a TCP stream into owned halves, which a TLS
//! stream has no equivalent of without a lock on every read and write.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How the generator connects.
#[derive(Clone)]
pub enum Connector {
    /// Plain TCP.
    Plain,
    /// TLS, verifying the server as `name` against the configured CA.
    Tls {
        /// The connector with the client configuration.
        connector: TlsConnector,
        /// The name (or IP address) the certificate must be valid for.
        name: ServerName<'static>,
    },
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connector::Plain => f.write_str("Plain"),
            Connector::Tls { name, .. } => write!(f, "Tls({name:?})"),
        }
    }
}

impl Connector {
    /// A TLS connector trusting the PEM CA certificates in `ca`, expecting the server to be
    /// `name` (a DNS name or an IP address).
    pub fn tls(ca: &Path, name: &str) -> anyhow::Result<Connector> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("--tls-ca {}: {e:?}", ca.display()))?;
        if certs.is_empty() {
            bail!("--tls-ca {}: no certificate in it", ca.display());
        }
        for cert in certs {
            roots.add(cert).context("--tls-ca: unusable certificate")?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(name.to_string())
            .with_context(|| format!("--tls-name: bad server name {name:?}"))?;
        Ok(Connector::Tls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// Opens a connection (and runs the TLS handshake) to `addr`.
    pub async fn connect(&self, addr: SocketAddr) -> anyhow::Result<Stream> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        match self {
            Connector::Plain => Ok(Stream::Plain(tcp)),
            Connector::Tls { connector, name } => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .with_context(|| format!("TLS handshake with {addr}"))?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }
}

/// A plain or TLS connection.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
