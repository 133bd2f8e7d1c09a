//! A minimal blocking gRPC client for the load generator: unary calls over one HTTP/2
//! connection, each message encoded before the clock starts, as [`super::wire`] does for
//! HTTP/1.1. The connection runs on its own single-threaded runtime so that each load thread
//! stays one sequential client, like a REST keep-alive connection.

use anyhow::{bail, Context};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// One HTTP/2 connection to a gRPC port.
pub struct GrpcConn {
    base: String,
    runtime: tokio::runtime::Runtime,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// A message framed for gRPC: uncompressed, with its length.
pub fn frame(message: &impl prost::Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut framed = Vec::with_capacity(body.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(&body);
    framed
}

impl GrpcConn {
    /// A connection to the gRPC port at `base` (`http://host:port`); it connects on first use.
    pub fn new(base: &str) -> anyhow::Result<GrpcConn> {
        if !base.starts_with("http://") {
            bail!("only http:// URLs are supported by the load generator, got {base}");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(GrpcConn {
            base: base.trim_end_matches('/').to_string(),
            runtime,
            sender: None,
        })
    }

    async fn connect(base: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let addr = base.trim_start_matches("http://");
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .context("HTTP/2 handshake")?;
        tokio::spawn(conn);
        Ok(sender)
    }

    /// Calls `method` (`/qdrant.Points/Query`) with a framed message; the reply's message bytes.
    pub fn call(&mut self, method: &str, framed: &[u8]) -> anyhow::Result<Bytes> {
        let (base, runtime) = (&self.base, &self.runtime);
        let slot = &mut self.sender;
        runtime.block_on(async {
            let sender = match slot {
                Some(sender) if !sender.is_closed() => sender,
                _ => slot.insert(Self::connect(base).await?),
            };
            sender.ready().await.context("connection closed")?;
            let request = hyper::Request::post(format!("{base}{method}"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Full::new(Bytes::copy_from_slice(framed)))?;
            let response = sender.send_request(request).await?;
            let trailers_only = status(response.headers());
            let collected = response.into_body().collect().await?;
            let grpc_status = collected.trailers().and_then(status).or(trailers_only);
            let body = collected.to_bytes();
            match grpc_status {
                Some((0, _)) | None if body.len() >= 5 => Ok(body.slice(5..)),
                Some((code, message)) => bail!("{method}: gRPC status {code}: {message}"),
                None => bail!("{method}: no reply and no status"),
            }
        })
    }
}

/// The `grpc-status` and `grpc-message` of headers or trailers.
fn status(headers: &hyper::HeaderMap) -> Option<(u32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Some((code, message))
}
