//! A `lin-kv` (and `txn-list-append`) client of a Maelstrom node,
//! through the node's host.
//!
//! The client says hello with its id at every host (a node may forward a
//! request and another node answer it: Maelstrom routes by `dest` alone)
//! and sends its requests to one. Each answer maps to what the history
//! records by [`outcome_of`], the table of `docs/maelstrom.md`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;

use super::host::codec;
use crate::{Answer, KvClient, KvOp, MicroOp, Outcome, TxnAnswer};

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// One client, connected to every host, sending to one.
pub struct MaelstromClient {
    addr: SocketAddr,
    timeout: Duration,
    next: AtomicU64,
    send: mpsc::UnboundedSender<Bytes>,
    waiting: Waiting,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for MaelstromClient {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn hello(
    addr: SocketAddr,
    id: &str,
    timeout: Duration,
) -> Result<Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>, String> {
    let s = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let mut f = Framed::new(s, codec());
    f.send(Bytes::from(json!({ "hello": id }).to_string()))
        .await
        .map_err(|e| format!("saying hello to {addr}: {e}"))?;
    Ok(f)
}

fn deliver(waiting: &Waiting, frame: &[u8]) {
    let Ok(m) = serde_json::from_slice::<Value>(frame) else {
        return;
    };
    if let Some(r) = m["body"]["in_reply_to"].as_u64() {
        if let Some(tx) = waiting.lock().expect("not poisoned").remove(&r) {
            let _ = tx.send(m["body"].clone());
        }
    }
}

impl MaelstromClient {
    /// Connect as client `id` to the host at `addr`, and listen at `others`.
    pub async fn connect(
        id: String,
        addr: SocketAddr,
        others: &[SocketAddr],
        timeout: Duration,
    ) -> Result<MaelstromClient, String> {
        let main = hello(addr, &id, timeout).await?;
        let waiting: Waiting = Arc::new(Mutex::new(HashMap::new()));
        let (send, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let (mut sink, mut stream) = main.split();
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.send(m).await.is_err() {
                    return;
                }
            }
        }));
        let w = waiting.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(f)) = stream.next().await {
                deliver(&w, &f);
            }
        }));
        for &o in others {
            // A host that does not answer now only means answers from it
            // are not heard: the operation then times out, as info.
            if let Ok(mut f) = hello(o, &id, Duration::from_millis(500).min(timeout)).await {
                let w = waiting.clone();
                tasks.push(tokio::spawn(async move {
                    while let Some(Ok(fr)) = f.next().await {
                        deliver(&w, &fr);
                    }
                }));
            }
        }
        Ok(MaelstromClient {
            addr,
            timeout,
            next: AtomicU64::new(1),
            send,
            waiting,
            tasks,
        })
    }
}

/// The request body of an operation.
pub fn body_of(op: &KvOp, msg_id: u64) -> Value {
    match op {
        KvOp::Read(k) => json!({"type": "read", "msg_id": msg_id, "key": k}),
        KvOp::Write(k, v) => json!({"type": "write", "msg_id": msg_id, "key": k, "value": v}),
        KvOp::Cas(k, from, to) => {
            json!({"type": "cas", "msg_id": msg_id, "key": k, "from": from, "to": to})
        }
    }
}

/// Error codes that say the operation did not take place (Maelstrom's
/// `doc/protocol.md`): not-supported, temporarily-unavailable,
/// malformed-request, abort, key-does-not-exist, key-already-exists,
/// precondition-failed, txn-conflict.
pub const DEFINITE: &[u64] = &[10, 11, 12, 14, 20, 21, 22, 30];

/// What an answer means for the history.
pub fn outcome_of(op: &KvOp, body: &Value) -> Answer {
    let ty = body["type"].as_str().unwrap_or("");
    match (op, ty) {
        (KvOp::Read(_), "read_ok") => match &body["value"] {
            Value::Null => Answer::Ok(None),
            v => match v.as_i64() {
                Some(i) => Answer::Ok(Some(i)),
                None => Answer::Info(format!(
                    "read_ok with a value that is not an integer: {}",
                    short(v)
                )),
            },
        },
        (KvOp::Write(..), "write_ok") | (KvOp::Cas(..), "cas_ok") => Answer::Ok(None),
        (_, "error") => {
            let code = body["code"].as_u64();
            let text = body["text"].as_str().unwrap_or("");
            let said = match code {
                Some(c) => format!("error {c} ({}){}", name(c), detail(text)),
                None => format!("error without a code{}", detail(text)),
            };
            match (op, code) {
                // A read of a key nobody wrote: the register's initial value.
                (KvOp::Read(_), Some(20)) => Answer::Ok(None),
                (_, Some(c)) if DEFINITE.contains(&c) => Answer::Fail(said),
                _ => Answer::Info(said),
            }
        }
        _ => Answer::Info(format!("unexpected answer: {}", short(body))),
    }
}

fn detail(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(
            ": {}",
            faultline_rundir::quote::quoted(&text.chars().take(200).collect::<String>())
        )
    }
}

fn short(v: &Value) -> String {
    super::host::shown_line(&v.to_string())
}

/// Maelstrom's name for an error code.
pub fn name(code: u64) -> &'static str {
    match code {
        0 => "timeout",
        1 => "node-not-found",
        10 => "not-supported",
        11 => "temporarily-unavailable",
        12 => "malformed-request",
        13 => "crash",
        14 => "abort",
        20 => "key-does-not-exist",
        21 => "key-already-exists",
        22 => "precondition-failed",
        30 => "txn-conflict",
        c if c >= 1000 => "the node's own",
        _ => "unknown",
    }
}

impl KvClient for MaelstromClient {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn call<'a>(&'a self, op: &'a KvOp) -> BoxFuture<'a, Answer> {
        async move {
            match self.exchange(|id| body_of(op, id)).await {
                Ok(body) => outcome_of(op, &body),
                Err(Unanswered::Unsent(e)) => Answer::Fail(e),
                Err(Unanswered::Unknown(e)) => Answer::Info(e),
            }
        }
        .boxed()
    }

    fn txn<'a>(&'a self, ops: &'a [MicroOp]) -> BoxFuture<'a, TxnAnswer> {
        async move {
            match self.exchange(|id| txn_body(ops, id)).await {
                Ok(body) => txn_outcome(ops, &body),
                Err(Unanswered::Unsent(e)) => Outcome::Fail(e),
                Err(Unanswered::Unknown(e)) => Outcome::Info(e),
            }
        }
        .boxed()
    }
}

/// Why a request has no answer.
enum Unanswered {
    /// It was never sent.
    Unsent(String),
    /// It was sent; no answer came in time.
    Unknown(String),
}

impl MaelstromClient {
    /// Send the body `make` builds for a fresh message id; its answer.
    async fn exchange(&self, make: impl FnOnce(u64) -> Value) -> Result<Value, Unanswered> {
        let msg_id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .expect("not poisoned")
            .insert(msg_id, tx);
        let frame = json!({ "body": make(msg_id) }).to_string();
        if self.send.send(Bytes::from(frame)).is_err() {
            self.waiting.lock().expect("not poisoned").remove(&msg_id);
            return Err(Unanswered::Unsent(format!(
                "the connection to {} is closed",
                self.addr
            )));
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(_)) => Err(Unanswered::Unknown("the client was dropped".into())),
            Err(_) => {
                self.waiting.lock().expect("not poisoned").remove(&msg_id);
                Err(Unanswered::Unknown(format!(
                    "no answer within {:?}",
                    self.timeout
                )))
            }
        }
    }
}

/// A key as Maelstrom's `txn-list-append` workload names it: `k7` is the
/// integer 7 (its nodes are written for integer keys); any other name
/// stays a string.
pub fn txn_key(key: &str) -> Value {
    match key.strip_prefix('k').and_then(|n| n.parse::<u64>().ok()) {
        Some(n) if format!("k{n}") == key => json!(n),
        _ => json!(key),
    }
}

/// The `txn` request of `txn-list-append`: `[["append", K, V], ["r", K, null]]`.
pub fn txn_body(ops: &[MicroOp], msg_id: u64) -> Value {
    let txn: Vec<Value> = ops
        .iter()
        .map(|op| match op {
            MicroOp::Append { key, value } => json!(["append", txn_key(key), value]),
            MicroOp::Read { key } => json!(["r", txn_key(key), null]),
        })
        .collect();
    json!({"type": "txn", "msg_id": msg_id, "txn": txn})
}

/// What a `txn` answer means for the history: `txn_ok` with one
/// micro-operation per request's, in order, same keys, reads filled in
/// (null for a key never appended to is the empty list).
pub fn txn_outcome(ops: &[MicroOp], body: &Value) -> TxnAnswer {
    match body["type"].as_str().unwrap_or("") {
        "txn_ok" => {
            let Some(got) = body["txn"].as_array().filter(|g| g.len() == ops.len()) else {
                return Outcome::Info(format!(
                    "txn_ok without a micro-operation per one asked: {}",
                    short(body)
                ));
            };
            let mut out = Vec::with_capacity(ops.len());
            for (op, m) in ops.iter().zip(got) {
                let same_key = m[1] == txn_key(op.key());
                match op {
                    MicroOp::Append { .. } if same_key && m[0] == "append" => out.push(None),
                    MicroOp::Read { .. } if same_key && m[0] == "r" => match &m[2] {
                        Value::Null => out.push(Some(Vec::new())),
                        Value::Array(xs) => match xs.iter().map(Value::as_i64).collect() {
                            Some(l) => out.push(Some(l)),
                            None => {
                                return Outcome::Info(format!(
                                    "txn_ok with a read that is not a list of integers: {}",
                                    short(m)
                                ))
                            }
                        },
                        other => {
                            return Outcome::Info(format!(
                                "txn_ok with a read that is not a list: {}",
                                short(other)
                            ))
                        }
                    },
                    _ => {
                        return Outcome::Info(format!(
                            "txn_ok whose micro-operation {} does not match the one asked",
                            short(m)
                        ))
                    }
                }
            }
            Outcome::Ok(out)
        }
        "error" => {
            let code = body["code"].as_u64();
            let text = body["text"].as_str().unwrap_or("");
            let said = match code {
                Some(c) => format!("error {c} ({}){}", name(c), detail(text)),
                None => format!("error without a code{}", detail(text)),
            };
            match code {
                Some(c) if DEFINITE.contains(&c) => Outcome::Fail(said),
                _ => Outcome::Info(said),
            }
        }
        _ => Outcome::Info(format!("unexpected answer: {}", short(body))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_txn_goes_out_with_integer_keys_and_its_answer_is_matched_op_by_op() {
        let ops = [
            MicroOp::Append {
                key: "k3".into(),
                value: 9,
            },
            MicroOp::Read { key: "k3".into() },
            MicroOp::Read { key: "x".into() },
        ];
        assert_eq!(
            txn_body(&ops, 4),
            json!({"type": "txn", "msg_id": 4, "txn": [["append", 3, 9], ["r", 3, null], ["r", "x", null]]})
        );
        assert_eq!(
            txn_outcome(
                &ops,
                &json!({"type": "txn_ok", "txn": [["append", 3, 9], ["r", 3, [1, 9]], ["r", "x", null]]})
            ),
            Outcome::Ok(vec![None, Some(vec![1, 9]), Some(vec![])])
        );
        // Answers that do not fit what was asked are unknown, never ok.
        for bad in [
            json!({"type": "txn_ok", "txn": [["append", 3, 9]]}),
            json!({"type": "txn_ok", "txn": [["append", 3, 9], ["r", 4, [1]], ["r", "x", null]]}),
            json!({"type": "txn_ok", "txn": [["append", 3, 9], ["r", 3, ["a"]], ["r", "x", null]]}),
            json!({"type": "read_ok", "value": 1}),
        ] {
            assert!(matches!(txn_outcome(&ops, &bad), Outcome::Info(_)), "{bad}");
        }
        assert!(matches!(
            txn_outcome(&ops, &json!({"type": "error", "code": 30})),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            txn_outcome(&ops, &json!({"type": "error", "code": 0})),
            Outcome::Info(_)
        ));
        assert_eq!(txn_key("k07"), json!("k07"));
    }

    fn read() -> KvOp {
        KvOp::Read("k".into())
    }
    fn cas() -> KvOp {
        KvOp::Cas("k".into(), 1, 2)
    }

    #[test]
    fn every_row_of_the_answer_table() {
        let ok = |o: &Answer| matches!(o, Answer::Ok(_));
        let fail = |o: &Answer| matches!(o, Answer::Fail(_));
        let info = |o: &Answer| matches!(o, Answer::Info(_));
        assert_eq!(
            outcome_of(&read(), &json!({"type": "read_ok", "value": 3})),
            Answer::Ok(Some(3))
        );
        assert_eq!(
            outcome_of(&read(), &json!({"type": "read_ok", "value": null})),
            Answer::Ok(None)
        );
        assert!(info(&outcome_of(
            &read(),
            &json!({"type": "read_ok", "value": "x"})
        )));
        assert!(ok(&outcome_of(
            &KvOp::Write("k".into(), 1),
            &json!({"type": "write_ok"})
        )));
        assert!(ok(&outcome_of(&cas(), &json!({"type": "cas_ok"}))));
        // 20 on a read: a read of nothing; on a cas: it did not happen.
        assert_eq!(
            outcome_of(&read(), &json!({"type": "error", "code": 20})),
            Answer::Ok(None)
        );
        for c in DEFINITE {
            assert!(
                fail(&outcome_of(&cas(), &json!({"type": "error", "code": c}))),
                "{c}"
            );
        }
        for c in [0u64, 13, 1000, 1234, 99] {
            assert!(
                info(&outcome_of(&cas(), &json!({"type": "error", "code": c}))),
                "{c}"
            );
        }
        assert!(info(&outcome_of(&cas(), &json!({"type": "error"}))));
        // An answer of the wrong kind is not taken as a success.
        assert!(info(&outcome_of(&cas(), &json!({"type": "write_ok"}))));
        assert!(info(&outcome_of(&read(), &json!({"type": "echo_ok"}))));
    }
}
