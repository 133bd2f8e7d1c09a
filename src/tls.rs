//! Optional TLS with rustls (`service.tls_cert_path`, `service.tls_key_path`): PEM files read
//! at start-up. The REST port serves HTTP/1.1 over it; the gRPC port serves HTTP/2 (plain or
//! TLS) through the same accept loop, with the same graceful shutdown.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A client that connects but does not finish its handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The protocol a port speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    /// HTTP/2 only (gRPC).
    Http2,
}

impl Protocol {
    fn alpn(self) -> &'static [u8] {
        match self {
            Protocol::Http1 => b"http/1.1",
            Protocol::Http2 => b"h2",
        }
    }
}

/// Reads the certificate chain and private key; errors name the file and what is wrong.
pub fn acceptor(cert: &Path, key: &Path, protocol: Protocol) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the TLS private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not fit together")?;
    config.alpn_protocols = vec![protocol.alpn().to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` in `protocol`, over TLS when there is an `acceptor`, until `shutdown`
/// resolves; then waits for open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    protocol: Protocol,
    acceptor: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                // Out of file descriptors and the like: keep serving the open connections.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // gRPC sends small frames and waits for their answers: no Nagle delay.
        let _ = tcp.set_nodelay(protocol == Protocol::Http2);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return serve_connection(TokioIo::new(tcp), app, protocol, watcher).await;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => serve_connection(TokioIo::new(tls), app, protocol, watcher).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// Serves one connection until it closes or the server shuts down.
async fn serve_connection<IO>(
    io: TokioIo<IO>,
    app: Router,
    protocol: Protocol,
    watcher: hyper_util::server::graceful::Watcher,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let ended = match protocol {
        Protocol::Http1 => {
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
            watcher.watch(conn).await
        }
        Protocol::Http2 => {
            let executor = hyper_util::rt::TokioExecutor::new();
            let conn =
                hyper::server::conn::http2::Builder::new(executor).serve_connection(io, service);
            watcher.watch(conn).await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
