//! A minimal HTTP/1.1 keep-alive client for the load generator. Client and server share this
//! machine's cores, so every microsecond the client spends is taken from the server being
//! measured: this client writes a pre-serialised request with one `write` and reads a
//! `Content-Length` response, nothing more (as wrk and oha do).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};

/// One keep-alive connection to `host:port`.
pub struct Conn {
    addr: String,
    reader: Option<BufReader<TcpStream>>,
    request: Vec<u8>,
}

impl Conn {
    /// A connection to the server at `base` (`http://host:port`); it connects on first use.
    pub fn new(base: &str) -> anyhow::Result<Conn> {
        let Some(rest) = base.strip_prefix("http://") else {
            bail!("only http:// URLs are supported by the load generator, got {base}");
        };
        let addr = rest.trim_end_matches('/').to_string();
        if addr.contains('/') {
            bail!("the server URL must not have a path: {base}");
        }
        Ok(Conn {
            addr,
            reader: None,
            request: Vec::new(),
        })
    }

    /// Sends one request and returns the status and body. Reconnects when the server closed
    /// the connection after the previous response.
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let reader = match &mut self.reader {
            Some(r) => r,
            None => {
                let stream = TcpStream::connect(&self.addr)
                    .with_context(|| format!("connecting to {}", self.addr))?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(600)))?;
                self.reader
                    .insert(BufReader::with_capacity(64 * 1024, stream))
            }
        };
        self.request.clear();
        write!(
            self.request,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )?;
        self.request.extend_from_slice(body);
        reader.get_mut().write_all(&self.request)?;
        let (status, length, close) = read_head(reader)?;
        let mut out = vec![0; length];
        reader.read_exact(&mut out)?;
        if close {
            self.reader = None;
        }
        Ok((status, out))
    }
}

/// Reads a status line and headers: (status, content length, whether the server closes).
fn read_head(reader: &mut BufReader<TcpStream>) -> anyhow::Result<(u16, usize, bool)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let (mut length, mut close) = (None, false);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("connection closed in the response headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>()?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported by the load generator");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok((
        status,
        length.context("response without Content-Length")?,
        close,
    ))
}
