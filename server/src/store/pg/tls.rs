//! TLS to PostgreSQL with rustls (ring), the TLS stack the rest of Fenlei uses (deny.toml bans
//! OpenSSL and aws-lc). tokio-postgres asks a `MakeTlsConnect` for a connector per host; this
//! one verifies the server's certificate against the Mozilla roots (webpki-roots), or against
//! the PEM bundle named by `FENLEI_DATABASE_CA` (a managed database's own CA).
//!
//! `sslmode=disable` never calls it; `prefer` uses TLS when the server offers it; `require`
//! insists. A URL naming a host other than this machine is switched from `prefer` to `require`
//! (see `super::open`), so scores and passwords never cross a network in clear text by default.

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The environment variable naming a PEM file of CA certificates to trust instead of the
/// public roots.
pub const CA_ENV: &str = "FENLEI_DATABASE_CA";

#[derive(Clone)]
pub struct RustlsMakeTls {
    config: Arc<rustls::ClientConfig>,
}

impl RustlsMakeTls {
    /// Trusts the PEM bundle `ca_pem` when given, else the public web roots.
    pub fn new(ca_pem: Option<&[u8]>) -> Result<RustlsMakeTls, String> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(pem) => {
                for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("{CA_ENV}: not a PEM certificate: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("{CA_ENV}: unusable certificate: {e}"))?;
                }
                if roots.is_empty() {
                    return Err(format!("{CA_ENV}: no certificate in the file"));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(RustlsMakeTls {
            config: Arc::new(config),
        })
    }

    /// From the environment: `FENLEI_DATABASE_CA` when set.
    pub fn from_env() -> Result<RustlsMakeTls, String> {
        match std::env::var_os(CA_ENV) {
            Some(path) if !path.is_empty() => {
                let pem = std::fs::read(&path)
                    .map_err(|e| format!("{CA_ENV} {}: {e}", path.to_string_lossy()))?;
                RustlsMakeTls::new(Some(&pem))
            }
            _ => RustlsMakeTls::new(None),
        }
    }
}

impl<S> MakeTlsConnect<S> for RustlsMakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            config: self.config.clone(),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

pub struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let stream = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(stream))
        })
    }
}

pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding (the server's default, channel_binding=prefer).
        ChannelBinding::none()
    }
}
