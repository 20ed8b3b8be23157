//! One kept-alive HTTP/1.1 connection to the vault, reopened after a transport failure.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A connection's endpoint and credentials.
#[derive(Clone, Debug)]
pub struct Target {
    /// `host:port` of the vault.
    pub authority: String,
    /// The `X-Bunker-Token` sent with every call.
    pub token: String,
}

impl Target {
    /// Parses `http://host:port` (a trailing slash or `/v2` is ignored).
    pub fn parse(url: &str, token: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("the URL must start with http://: {url}"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(format!("no host in {url}"));
        }
        Ok(Target { authority: authority.to_owned(), token: token.to_owned() })
    }
}

/// One connection; requests on it go back to back.
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection opened lazily by the first request.
    pub fn new(target: Target) -> Conn {
        Conn { target, sender: None }
    }

    async fn open(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(&self.target.authority).await.map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let (sender, connection) =
            http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the server closes it; a failure
            // surfaces on the next request, which reopens.
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// POSTs `body` to `/v2/<operation>` and answers the HTTP status and the whole body.
    pub async fn post(&mut self, operation: &str, body: Bytes) -> Result<(u16, Bytes), String> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.open().await?,
        };
        sender.ready().await.map_err(|e| format!("connection: {e}"))?;
        let request = Request::post(format!("/v2/{operation}"))
            .header(header::HOST, &self.target.authority)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-bunker-token", &self.target.token)
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender.send_request(request).await.map_err(|e| format!("send: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        self.sender = Some(sender);
        Ok((status, bytes))
    }
}
