//! A NATS client connection, as much of the protocol as faultline needs:
//! `CONNECT` with headers and "no responders" on, one wildcard inbox
//! subscription, and request/reply (`PUB`/`HPUB` with a reply subject, the
//! answer routed back by its inbox token). The server's `PING`s are
//! answered; `INFO`, `+OK` and `PONG` are read and dropped. Every read is
//! bounded: a control line at [`MAX_LINE`], a message at [`MAX_PAYLOAD`].
//!
//! A request ends in one of three ways ([`ReqError`]): answered, never sent
//! (definite: the server saw nothing), or sent without an answer (timed out,
//! or the connection was lost after the write began: the server may have
//! acted on it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// The longest control line read (`INFO` lines list the cluster's URLs).
pub const MAX_LINE: usize = 1 << 20;
/// The largest message read (the server's default `max_payload` is 1 MiB).
pub const MAX_PAYLOAD: usize = 8 << 20;

/// One answer: its status line's code and description (a header-only
/// message such as "503 No Responders"), its headers and its payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The status code of a `NATS/1.0 <code> <description>` header line.
    pub status: Option<u16>,
    /// Its description.
    pub description: String,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Reply {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReqError {
    /// Nothing was sent: the server cannot have acted on it.
    NotSent(String),
    /// Sent, and no answer came in time.
    Timeout,
    /// Sent (or partly), then the connection was lost.
    Lost(String),
}

impl std::fmt::Display for ReqError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReqError::NotSent(e) => write!(f, "not sent: {e}"),
            ReqError::Timeout => f.write_str("no answer in time"),
            ReqError::Lost(e) => write!(f, "connection lost after sending: {e}"),
        }
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// A connection to one server.
pub struct Conn {
    addr: SocketAddr,
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    pending: Pending,
    next: AtomicU64,
    inbox: String,
    closed: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A fresh inbox prefix: unique per connection in this process and run.
fn inbox_prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "_INBOX.fl{}x{:x}x{}",
        std::process::id(),
        t,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Read one `\r\n`-terminated line of at most [`MAX_LINE`] bytes.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<String, String> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("the server closed the connection".into());
    }
    if !buf.ends_with(b"\n") {
        return Err(format!("a protocol line longer than {MAX_LINE} bytes"));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| "a protocol line that is not UTF-8".to_string())
}

/// Split a header block (`NATS/1.0 503 No Responders\r\nK: V\r\n\r\n`)
/// into a reply's status, description and headers.
pub fn parse_headers(block: &[u8]) -> Result<Reply, String> {
    let text = std::str::from_utf8(block).map_err(|_| "headers that are not UTF-8")?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let rest = first
        .strip_prefix("NATS/1.0")
        .ok_or_else(|| format!("a header block that does not start with NATS/1.0: {first:?}"))?
        .trim();
    let (status, description) = match rest.split_once(' ') {
        Some((code, d)) => (code.parse().ok(), d.trim().to_string()),
        None if !rest.is_empty() => (rest.parse().ok(), String::new()),
        None => (None, String::new()),
    };
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Reply {
        status,
        description,
        headers,
        payload: Vec::new(),
    })
}

/// One message the server delivered: the subject and the answer.
fn parse_msg_line(line: &str) -> Result<(String, usize, usize), String> {
    // MSG <subject> <sid> [reply] <#bytes>
    // HMSG <subject> <sid> [reply] <#header bytes> <#total bytes>
    let parts: Vec<&str> = line.split_ascii_whitespace().collect();
    let num = |s: &str| {
        s.parse::<usize>()
            .map_err(|_| format!("a bad size in {line:?}"))
    };
    match parts.as_slice() {
        ["MSG", subject, _sid, n] | ["MSG", subject, _sid, _, n] => {
            Ok((subject.to_string(), 0, num(n)?))
        }
        ["HMSG", subject, _sid, h, n] | ["HMSG", subject, _sid, _, h, n] => {
            let (h, n) = (num(h)?, num(n)?);
            if h > n {
                return Err(format!("header bytes beyond the message in {line:?}"));
            }
            Ok((subject.to_string(), h, n))
        }
        _ => Err(format!("a message line it cannot read: {line:?}")),
    }
}

impl Conn {
    /// Connect to `addr` (checked against the network policy first) and
    /// subscribe to this connection's inbox, all within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, String> {
        faultline_node::netpolicy::allowed(addr)?;
        tokio::time::timeout(timeout, Self::connect_now(addr))
            .await
            .map_err(|_| format!("nats at {addr}: no connection within {timeout:?}"))?
    }

    async fn connect_now(addr: SocketAddr) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("nats at {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let info = read_line(&mut r)
            .await
            .map_err(|e| format!("nats at {addr}: {e}"))?;
        if !info.starts_with("INFO ") {
            return Err(format!(
                "nats at {addr}: the server's first line is not INFO (is it nats-server?)"
            ));
        }
        let inbox = inbox_prefix();
        let hello = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"protocol\":1,\"lang\":\"rust\",\"version\":\"{}\",\"name\":\"faultline\"}}\r\nSUB {inbox}.* 1\r\nPING\r\n",
            env!("CARGO_PKG_VERSION")
        );
        w.write_all(hello.as_bytes())
            .await
            .map_err(|e| format!("nats at {addr}: {e}"))?;
        // The PONG says the CONNECT and the SUB were taken.
        loop {
            let line = read_line(&mut r)
                .await
                .map_err(|e| format!("nats at {addr}: {e}"))?;
            if line == "PONG" {
                break;
            }
            if let Some(e) = line.strip_prefix("-ERR") {
                return Err(format!("nats at {addr}: the server refused: {}", e.trim()));
            }
        }
        let writer = Arc::new(tokio::sync::Mutex::new(w));
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_loop(
            r,
            writer.clone(),
            pending.clone(),
            closed.clone(),
            format!("{inbox}."),
        ));
        Ok(Conn {
            addr,
            writer,
            pending,
            next: AtomicU64::new(1),
            inbox,
            closed,
            reader,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the connection is gone (the server closed it, or a request
    /// timed out while writing, which leaves the stream unusable).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Publish `payload` (with `headers`) to `subject` and wait up to
    /// `timeout` for the answer.
    pub async fn request(
        &self,
        subject: &str,
        headers: &[(&str, String)],
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Reply, ReqError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ReqError::NotSent("the connection is closed".into()));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("not poisoned").insert(id, tx);
        let reply = format!("{}.{id}", self.inbox);
        let mut frame = Vec::with_capacity(payload.len() + 128);
        if headers.is_empty() {
            frame.extend_from_slice(
                format!("PUB {subject} {reply} {}\r\n", payload.len()).as_bytes(),
            );
        } else {
            let mut h = String::from("NATS/1.0\r\n");
            for (k, v) in headers {
                h.push_str(&format!("{k}: {v}\r\n"));
            }
            h.push_str("\r\n");
            frame.extend_from_slice(
                format!(
                    "HPUB {subject} {reply} {} {}\r\n",
                    h.len(),
                    h.len() + payload.len()
                )
                .as_bytes(),
            );
            frame.extend_from_slice(h.as_bytes());
        }
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        let forget = || {
            self.pending.lock().expect("not poisoned").remove(&id);
        };
        let written = tokio::time::timeout(timeout, async {
            let mut w = self.writer.lock().await;
            w.write_all(&frame).await
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                forget();
                self.closed.store(true, Ordering::SeqCst);
                return Err(ReqError::Lost(e.to_string()));
            }
            Err(_) => {
                // Part of the frame may be out: nothing more may follow it
                // on this stream, or the server would read it as payload.
                forget();
                self.closed.store(true, Ordering::SeqCst);
                return Err(ReqError::Timeout);
            }
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(ReqError::Lost("the server closed the connection".into())),
            Err(_) => {
                forget();
                Err(ReqError::Timeout)
            }
        }
    }
}

async fn read_loop(
    mut r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    pending: Pending,
    closed: Arc<AtomicBool>,
    prefix: String,
) {
    let end = |pending: &Pending| {
        closed.store(true, Ordering::SeqCst);
        // Dropping the senders tells every waiting request.
        pending.lock().expect("not poisoned").clear();
    };
    loop {
        let Ok(line) = read_line(&mut r).await else {
            return end(&pending);
        };
        if line == "PING" {
            let mut w = writer.lock().await;
            if w.write_all(b"PONG\r\n").await.is_err() {
                return end(&pending);
            }
            continue;
        }
        if !(line.starts_with("MSG ") || line.starts_with("HMSG ")) {
            // INFO, +OK, PONG, -ERR (a fatal one is followed by the close).
            continue;
        }
        let Ok((subject, hlen, total)) = parse_msg_line(&line) else {
            return end(&pending);
        };
        if total > MAX_PAYLOAD {
            return end(&pending);
        }
        let mut body = vec![0u8; total + 2];
        if r.read_exact(&mut body).await.is_err() {
            return end(&pending);
        }
        body.truncate(total);
        let mut reply = if hlen > 0 {
            match parse_headers(&body[..hlen]) {
                Ok(r) => r,
                Err(_) => return end(&pending),
            }
        } else {
            Reply::default()
        };
        reply.payload = body[hlen..].to_vec();
        let id = subject
            .strip_prefix(&prefix)
            .and_then(|t| t.parse::<u64>().ok());
        if let Some(id) = id {
            if let Some(tx) = pending.lock().expect("not poisoned").remove(&id) {
                let _ = tx.send(reply);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lines_and_header_blocks_are_read() {
        assert_eq!(
            parse_msg_line("MSG _INBOX.a.1 1 26").unwrap(),
            ("_INBOX.a.1".to_string(), 0, 26)
        );
        assert_eq!(
            parse_msg_line("MSG s 1 reply.to 3").unwrap(),
            ("s".to_string(), 0, 3)
        );
        assert_eq!(
            parse_msg_line("HMSG _INBOX.a.2 1 16 16").unwrap(),
            ("_INBOX.a.2".to_string(), 16, 16)
        );
        assert!(parse_msg_line("HMSG s 1 20 10").is_err());
        assert!(parse_msg_line("MSG s 1 x").is_err());
        let r = parse_headers(b"NATS/1.0 503 No Responders\r\n\r\n").unwrap();
        assert_eq!(
            (r.status, r.description.as_str(), r.headers.len()),
            (Some(503), "No Responders", 0)
        );
        let r =
            parse_headers(b"NATS/1.0\r\nNats-Stream: KV_f\r\nNats-Sequence: 7\r\n\r\n").unwrap();
        assert_eq!(r.status, None);
        assert_eq!(r.header("nats-sequence"), Some("7"));
        assert!(parse_headers(b"HTTP/1.1 200\r\n\r\n").is_err());
    }
}
