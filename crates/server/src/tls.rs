//! TLS for the `*-tls-listen` listeners: loading the certificate, key and client CA into a
//! rustls configuration, replacing it on SIGHUP, and the bounded server handshake.
//!
//! The current configuration is an `Arc<ServerConfig>` behind a lock that each accepted
//! connection reads once to start its handshake. A reload builds a complete new
//! configuration from the files and swaps the `Arc`: handshakes that start afterwards use
//! it, while connections already established (or mid-handshake) keep the one they started
//! with, because a TLS session never looks at the configuration again. Swapping the whole
//! configuration rather than only the certificate (a `ResolvesServerCert` over a lock)
//! means a changed client CA takes effect on reload too. A reload that fails (a missing
//! file, a key that does not match) changes nothing and is reported to the caller, which
//! logs it; the server keeps the configuration it had.
//!
//! Only the `ring` provider is used, and only rustls's safe defaults (TLS 1.2 and 1.3).
//! The TLS session cache lives in the configuration, so a reload also forgets it: a client
//! cannot resume into a session that a since-replaced CA verified.
//!
//! What this module deliberately does not do: serve connections. [`Tls::handshake`] turns
//! a TCP stream into a TLS stream, and the connection layer (`conn::serve`) serves that as
//! it serves a plain one.

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{ClientAuth, TlsConfig};
use crate::stats::{ListenerStats, Stats, bump};

/// The TLS material of a running server, replaceable while it runs.
pub struct Tls {
    settings: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the files named by `settings`; fails with a message naming the file and the
    /// problem (missing, unreadable, not PEM, key not matching the certificate).
    pub fn load(settings: TlsConfig) -> anyhow::Result<Tls> {
        let config = build(&settings)?;
        Ok(Tls {
            settings,
            current: RwLock::new(config),
        })
    }

    /// Reads the files again and, if they make a valid configuration, uses it for every
    /// handshake from now on. On error the current configuration stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = build(&self.settings)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs the server side of the handshake on `stream`, within the handshake timeout.
    /// A failure or timeout is counted (`ssl_handshake_errors`, memcached's name) and logged
    /// at debug level, since any port scanner or misconfigured client causes them, and the
    /// connection is dropped. The socket is closed only after the count, so a client that
    /// sees its connection end can rely on the counter already including it.
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        stats: &Stats,
        listener: &ListenerStats,
    ) -> Option<TlsStream<TcpStream>> {
        let peer = stream.peer_addr().ok();
        let limit = self.settings.handshake_timeout;
        // `into_fallible` hands the socket back on failure instead of dropping it inside the
        // future, and the pinned future (holding the socket until the handshake ends) lives
        // until this function returns, after the counter is bumped.
        let accept = TlsAcceptor::from(self.current())
            .accept(stream)
            .into_fallible();
        tokio::pin!(accept);
        // `_socket` is named, not `_`, so it lives to the end of the function.
        let (outcome, _socket) = tokio::select! {
            biased;
            done = &mut accept => match done {
                Ok(stream) => (Ok(stream), None),
                Err((error, socket)) => (Err(error.to_string()), Some(socket)),
            },
            _ = tokio::time::sleep(limit) => (Err(format!("no handshake within {limit:?}")), None),
        };
        match outcome {
            Ok(stream) => {
                bump(&listener.tls_handshakes);
                Some(stream)
            }
            Err(error) => {
                bump(&stats.ssl_handshake_errors);
                bump(&listener.tls_handshake_errors);
                tracing::debug!(?peer, %error, "TLS handshake failed");
                None
            }
        }
    }
}

/// Builds a server configuration from the files `settings` names.
fn build(settings: &TlsConfig) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = certified_key(&settings.cert, &settings.key, &provider)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no safe protocol version")?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some((ca, auth)) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca, "--tls-ca")? {
                roots.add(cert).with_context(|| {
                    format!("--tls-ca {}: unusable CA certificate", ca.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match auth {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .with_context(|| format!("--tls-ca {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    Ok(Arc::new(config))
}

/// Reads the certificate chain and the private key, and checks that they belong together.
fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let chain = read_certs(cert, "--tls-cert")?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        let hint = match e {
            rustls::pki_types::pem::Error::Io(_) => "",
            _ => " (expected a PEM private key: PKCS#8, PKCS#1 or SEC1)",
        };
        anyhow::anyhow!("--tls-key {}: {}{hint}", key.display(), pem_error(e))
    })?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .with_context(|| format!("--tls-key {}: unsupported private key", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => {}
        // The provider cannot tell which public key a private key has; the handshake will
        // fail if they differ, so accept and let the first client find out.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => bail!(
            "--tls-key {} does not match the certificate in --tls-cert {}",
            key.display(),
            cert.display()
        ),
    }
    Ok(certified)
}

/// Every `CERTIFICATE` block of a PEM file; none at all is an error.
fn read_certs(path: &Path, flag: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{flag} {}: {}", path.display(), pem_error(e)))?;
    if certs.is_empty() {
        bail!(
            "{flag} {}: no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks)",
            path.display()
        );
    }
    Ok(certs)
}

/// A PEM reading error in words (rustls-pki-types's `Display` for I/O errors omits the
/// operating system's reason).
fn pem_error(error: rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of the expected kind".into(),
        other => other.to_string(),
    }
}
