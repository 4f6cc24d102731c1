//! The HTTP load generator of the benchmarks: each client keeps one HTTP/1.1 connection of its
//! own and sends its requests on it one after another, as `wrk` does, and like `wrk` it does
//! no more than that takes: the request is written as one buffer, the answer parsed with
//! `httparse` and its body read by its `Content-Length`. The clients share the two cores with
//! the service they measure, so what they spend is counted against it: reqwest (its pool, URL
//! parsing and header building per request) was a sixth of the process's CPU in `bench query`,
//! hyper's connection-level client (a task per connection, requests and answers handed to it
//! through channels) still 7 % (docs/benchmarks.md).

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The most response headers a reply may have.
const MAX_HEADERS: usize = 32;

/// One client's connection to one server, opened on first use and again if the server closed it.
pub struct Connection {
    addr: SocketAddr,
    /// `Host`, `Authorization` and `Content-Type`, written out once.
    fixed_headers: Vec<u8>,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    received: BytesMut,
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
        // Checked as header values: no line breaks can end up in the request.
        let authorization = HeaderValue::from_str(&format!("Bearer {api_key}"))?;
        let mut fixed_headers =
            format!("Host: {addr}\r\nContent-Type: application/json\r\nAuthorization: ").into_bytes();
        fixed_headers.extend_from_slice(authorization.as_bytes());
        fixed_headers.extend_from_slice(b"\r\n");
        Ok(Self {
            addr,
            fixed_headers,
            stream: None,
            request: Vec::with_capacity(1024),
            received: BytesMut::with_capacity(16 * 1024),
        })
    }

    /// Sends a JSON `body` to `path`, with one `extra` header if given, and reads the answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        extra: Option<(HeaderName, HeaderValue)>,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Reply> {
        let body = body.into();
        self.request.clear();
        for part in [method.as_str().as_bytes(), b" ", path.as_bytes(), b" HTTP/1.1\r\n", &self.fixed_headers] {
            self.request.extend_from_slice(part);
        }
        if let Some((name, value)) = &extra {
            for part in [name.as_str().as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                self.request.extend_from_slice(part);
            }
        }
        self.request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        self.request.extend_from_slice(&body);

        // A kept-alive connection the server has since closed fails before any answer arrives:
        // then the request is sent again on a new one, as HTTP/1.1 clients do.
        let reused = self.stream.is_some();
        match self.exchange().await {
            Err(Exchange::ClosedBeforeAnswer(_)) if reused => {
                self.stream = None;
                self.exchange().await.map_err(Exchange::into_error)
            }
            answer => answer.map_err(Exchange::into_error),
        }
    }

    async fn exchange(&mut self) -> Result<Reply, Exchange> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))
                .map_err(Exchange::Failed)?;
            stream.set_nodelay(true).map_err(|e| Exchange::Failed(e.into()))?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("set above");
        self.received.clear();
        if let Err(error) = stream.write_all(&self.request).await {
            self.stream = None;
            return Err(Exchange::ClosedBeforeAnswer(error.into()));
        }
        let answer = read_reply(stream, &mut self.received).await;
        let keep = matches!(&answer, Ok((_, keep_alive)) if *keep_alive);
        if !keep {
            self.stream = None;
        }
        answer.map(|(reply, _)| reply)
    }
}

/// Why an exchange failed: before any byte of an answer came back, or after.
enum Exchange {
    ClosedBeforeAnswer(anyhow::Error),
    Failed(anyhow::Error),
}

impl Exchange {
    fn into_error(self) -> anyhow::Error {
        match self {
            Exchange::ClosedBeforeAnswer(error) => error.context("the server closed the connection"),
            Exchange::Failed(error) => error,
        }
    }
}

/// Reads one answer, and whether the connection stays open after it.
async fn read_reply(stream: &mut TcpStream, received: &mut BytesMut) -> Result<(Reply, bool), Exchange> {
    let failed = |message: String| Exchange::Failed(anyhow::anyhow!(message));
    let (status, headers, header_len, content_length) = loop {
        let closed = match stream.read_buf(received).await {
            Ok(0) => Some(anyhow::anyhow!("the connection closed after {} bytes of an answer", received.len())),
            Ok(_) => None,
            Err(error) => Some(anyhow::Error::from(error)),
        };
        if let Some(error) = closed {
            // Only an answer not begun may be asked for again.
            return Err(if received.is_empty() {
                Exchange::ClosedBeforeAnswer(error)
            } else {
                Exchange::Failed(error)
            });
        }
        let mut parsed = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut parsed);
        match response.parse(received) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(header_len)) => {
                let status = StatusCode::from_u16(response.code.unwrap_or(0)).map_err(|e| failed(e.to_string()))?;
                let mut headers = HeaderMap::with_capacity(response.headers.len());
                for parsed in response.headers.iter() {
                    let name = HeaderName::from_bytes(parsed.name.as_bytes()).map_err(|e| failed(e.to_string()))?;
                    headers.append(name, HeaderValue::from_bytes(parsed.value).map_err(|e| failed(e.to_string()))?);
                }
                let Some(length) = headers.get(header::CONTENT_LENGTH) else {
                    // The services answer every request with a length; chunked bodies are not read.
                    return Err(failed(format!("an answer ({status}) without Content-Length")));
                };
                let length = length.to_str().ok().and_then(|v| v.parse::<usize>().ok());
                let length = length.ok_or_else(|| failed("an unreadable Content-Length".into()))?;
                break (status, headers, header_len, length);
            }
            Err(error) => return Err(failed(format!("an answer that is not HTTP/1.1: {error}"))),
        }
    };
    while received.len() < header_len + content_length {
        if stream.read_buf(received).await.map_err(|e| Exchange::Failed(e.into()))? == 0 {
            return Err(failed(format!("the connection closed {} bytes into a body", received.len() - header_len)));
        }
    }
    received.advance(header_len);
    let body = received.split_to(content_length).freeze();
    let keep_alive = !headers.get(header::CONNECTION).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    Ok((Reply { status, headers, body }, keep_alive))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;

    /// Echoes the body, and the `x-seen` header if sent.
    async fn server() -> SocketAddr {
        let app = Router::new().route(
            "/echo",
            post(|headers: HeaderMap, body: Bytes| async move {
                let seen = headers.get("x-seen").cloned().unwrap_or(HeaderValue::from_static("none"));
                ([(HeaderName::from_static("x-seen"), seen)], body)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn sends_requests_one_after_another_and_reads_whole_answers() {
        let addr = server().await;
        let mut connection = Connection::new(addr, "ffk_a_b").unwrap();
        let large = "x".repeat(100_000);
        for (i, body) in ["{}", large.as_str(), "[1]"].into_iter().enumerate() {
            let extra = (i == 1).then(|| (HeaderName::from_static("x-seen"), HeaderValue::from_static("yes")));
            let reply = connection.send(Method::POST, "/echo", extra, body.to_owned()).await.unwrap();
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.body, body.as_bytes());
            assert_eq!(reply.headers["x-seen"], if i == 1 { "yes" } else { "none" });
        }
        let missing = connection.send(Method::POST, "/nowhere", None, "{}").await.unwrap();
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn sends_again_when_the_server_closed_a_kept_alive_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Answers one request per connection, then closes it without saying so.
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buffer = vec![0; 4096];
                let _ = socket.read(&mut buffer).await.unwrap();
                socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.unwrap();
            }
        });
        let mut connection = Connection::new(addr, "ffk_a_b").unwrap();
        for _ in 0..3 {
            let reply = connection.send(Method::POST, "/", None, "{}").await.unwrap();
            assert_eq!(reply.body, "ok");
        }
    }
}
