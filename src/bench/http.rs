//! The HTTP load generator of the benchmarks: each client keeps one HTTP/1.1 connection of its
//! own (hyper's connection-level client) and sends its requests on it one after another, as
//! `wrk` does. The clients share the two cores with the service they measure, so what they spend
//! is counted against it: reqwest (its pool, URL parsing and header building per request, a JSON
//! body serialized per request) was a sixth of the process's CPU in `bench query`.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One client's connection to one server, opened on first use and again if the server closed it.
pub struct Connection {
    addr: SocketAddr,
    host: HeaderValue,
    authorization: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// A response, its body read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Connection {
    /// A connection that sends `Authorization: Bearer <api_key>` with every request.
    pub fn new(addr: SocketAddr, api_key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            authorization: HeaderValue::from_str(&format!("Bearer {api_key}"))?,
            sender: None,
        })
    }

    /// Sends a JSON `body` to `path`, with one `extra` header if given, and reads the answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        extra: Option<(header::HeaderName, HeaderValue)>,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Reply> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.clone())
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some((name, value)) = extra {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body.into()))?;
        let sender = self.ready().await?;
        let response = sender.send_request(request).await.context("sending a request")?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.context("reading a response")?.to_bytes();
        Ok(Reply { status: parts.status, headers: parts.headers, body })
    }

    async fn ready(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            let stream = TcpStream::connect(self.addr).await.with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_nodelay(true)?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(error = %error, "benchmark connection closed");
                }
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("set above");
        sender.ready().await.context("waiting for the connection")?;
        Ok(sender)
    }
}
