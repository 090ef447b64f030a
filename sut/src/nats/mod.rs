//! NATS JetStream as a [`Target`]: `nats-server` members with JetStream on
//! and a cluster route to each other, and one KV bucket — a stream
//! `KV_faultline` over the subjects `$KV.faultline.<key>`, one message kept
//! per subject, a replica on every member — created before the workload
//! starts ([`Target::prepare`]). faultline speaks the NATS protocol itself
//! ([`wire`]): no client library, so every answer is mapped here.
//!
//! | operation | NATS call | ok | fail (definite) | info (unknown) |
//! |---|---|---|---|---|
//! | write | publish to `$KV.faultline.<key>`, wait for the JetStream ack | an ack with a sequence | "no responders" (503: no stream took it); never sent | no ack in time; connection lost after sending; any other error |
//! | read (`linearizable`, the default) | `$JS.API.STREAM.MSG.GET.KV_faultline` `{"last_by_subj": …}`, answered by the stream's leader | the message (value), or "no message found" (10037: null) | any other answer, or none: a read changes nothing | — |
//! | read (`direct`) | `$JS.API.DIRECT.GET.KV_faultline.$KV.faultline.<key>`, answered by any replica (the positive control) | the message, or 404 (null) | as above | — |
//! | cas(old, new) | a leader read of the value and its sequence; a different value fails without writing; else a publish with `Nats-Expected-Last-Subject-Sequence: <seq>` | an ack | the value differed; "wrong last sequence" (10071, or 10164 on newer servers); 503; the read failed | as a write |
//! | status | the monitoring port (the client port + 1): `/varz` (the server's name) and `/jsz?accounts=true&streams=true` (the stream's leader, its replicas and how long since each was heard from) | | | |
//!
//! The stream's leader is *the* leader for every leader-aware fault, the
//! observer and the leader timeline: it is the Raft group that orders the
//! bucket's writes and serves its linearizable reads. The meta leader
//! (JetStream's own metadata group) is not aimed at. NATS does not report
//! Raft terms: every status says term 0, and leaders are told apart by
//! name.

pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use faultline_node::protocol::NodeStatus;
use faultline_node::raft::{majority, Role};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};

use crate::{Answer, KvClient, KvOp, Member, Target, TargetKind};
use faultline_rundir::spec::ReadMode;
use wire::{Conn, Reply, ReqError};

/// The KV bucket's name.
pub const BUCKET: &str = "faultline";
/// Its stream.
pub const STREAM: &str = "KV_faultline";
/// The cluster's name (each run's members are the only ones on their
/// addresses).
pub const CLUSTER: &str = "faultline";
/// The oldest nats-server faultline drives (JetStream's direct get).
pub const OLDEST: (u32, u32) = (2, 9);
/// The header that makes a publish conditional on the subject's last
/// sequence.
pub const EXPECTED_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
/// "wrong last sequence" (2.9) and its newer code.
pub const WRONG_LAST_SEQUENCE: [u64; 2] = [10071, 10164];
/// "no message found".
pub const NO_MESSAGE: u64 = 10037;
/// "stream name already in use".
pub const STREAM_EXISTS: u64 = 10058;

/// The subject of a key.
pub fn subject(key: &str) -> String {
    format!("$KV.{BUCKET}.{key}")
}

/// Where a member's monitoring endpoint is: its client port + 1, on the
/// same address (a kernel-network member has its address to itself;
/// loopback allocations keep the port after each client port free).
pub fn monitor_addr(client: SocketAddr) -> SocketAddr {
    SocketAddr::new(client.ip(), client.port().wrapping_add(1))
}

/// nats-server and how to talk to its members.
pub struct Nats {
    bin: PathBuf,
    version: String,
    reads: ReadMode,
    /// Client address → the server's name (from `/varz`).
    names: Mutex<HashMap<SocketAddr, String>>,
    http: reqwest::Client,
}

/// Where nats-server is: `explicit` (`--bin`), or on PATH.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, String> {
    crate::program::locate(
        "nats-server",
        explicit,
        "--bin",
        "install the nats-server package (apt-get install nats-server) or pass --bin",
    )
}

/// The version `nats-server --version` prints (`nats-server: v2.9.10`),
/// checked against [`OLDEST`].
pub fn version_of(bin: &Path) -> Result<String, String> {
    crate::program::checked_version(bin, "nats-server", "nats-server: v", OLDEST)
}

impl Nats {
    /// nats-server at `bin` (or on PATH), its version checked.
    pub fn find(bin: Option<&Path>, reads: ReadMode) -> Result<Nats, String> {
        let bin = locate(bin)?;
        let version = version_of(&bin)?;
        Ok(Nats {
            bin,
            version,
            reads,
            names: Mutex::default(),
            http: crate::program::http_client(Duration::from_secs(30))?,
        })
    }
}

/// The stream's configuration: one message per subject, a replica on each
/// of `replicas` members, kept on disk; direct gets only for the
/// `direct` read mode.
pub fn stream_config(replicas: usize, reads: ReadMode) -> Value {
    json!({
        "name": STREAM,
        "subjects": [format!("$KV.{BUCKET}.>")],
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msgs_per_subject": 1,
        "max_msg_size": -1,
        "discard": "new",
        "storage": "file",
        "num_replicas": replicas,
        "duplicate_window": 120_000_000_000u64,
        "allow_rollup_hdrs": true,
        "deny_delete": true,
        "allow_direct": reads == ReadMode::Direct,
    })
}

/// The JetStream API error of an answer: (err_code, description).
fn api_error(v: &Value) -> Option<(u64, String)> {
    let e = v.get("error")?;
    Some((
        e["err_code"].as_u64().unwrap_or(0),
        e["description"].as_str().unwrap_or("").to_string(),
    ))
}

/// The JSON of an answer's payload (Null when it is not JSON).
fn json_of(r: &Reply) -> Value {
    serde_json::from_slice(&r.payload).unwrap_or(Value::Null)
}

/// A value as the register stores it.
fn number(bytes: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .ok_or_else(|| {
            format!(
                "nats: the key holds {:?}, not a number",
                String::from_utf8_lossy(bytes)
            )
        })
}

/// A publish's answer as an outcome (writes and the write half of a cas).
pub fn classify_ack(answer: Result<Reply, ReqError>) -> Answer {
    let r = match answer {
        Ok(r) => r,
        Err(e @ ReqError::NotSent(_)) => return Answer::Fail(format!("nats: {e}")),
        Err(e) => return Answer::Info(format!("nats: {e}")),
    };
    if r.status == Some(503) {
        return Answer::Fail("nats: no responders (no stream took the publish)".into());
    }
    let v = json_of(&r);
    match api_error(&v) {
        Some((code, d)) if WRONG_LAST_SEQUENCE.contains(&code) => {
            Answer::Fail(format!("cas mismatch: {d} ({code})"))
        }
        Some((code, d)) => Answer::Info(format!("nats: {d} ({code})")),
        None if v["seq"].as_u64().is_some() => Answer::Ok(None),
        None => Answer::Info(format!(
            "nats: an answer that is not an ack: {}",
            String::from_utf8_lossy(&r.payload)
        )),
    }
}

/// A leader read's answer (`STREAM.MSG.GET`): the value and its sequence.
pub fn classify_get(answer: Result<Reply, ReqError>) -> Result<Option<(i64, u64)>, String> {
    let r = answer.map_err(|e| format!("nats: {e}"))?;
    if let Some(s) = r.status {
        return Err(format!("nats: {s} {}", r.description));
    }
    let v = json_of(&r);
    match api_error(&v) {
        Some((NO_MESSAGE, _)) => return Ok(None),
        Some((code, d)) => return Err(format!("nats: {d} ({code})")),
        None => {}
    }
    let m = &v["message"];
    let data = m["data"].as_str().unwrap_or("");
    let raw = B64
        .decode(data)
        .map_err(|_| format!("nats: a message whose data is not base64: {data:?}"))?;
    let seq = m["seq"]
        .as_u64()
        .ok_or("nats: a message without a sequence")?;
    Ok(Some((number(&raw)?, seq)))
}

/// A direct get's answer: the value (headers say where it came from).
pub fn classify_direct(answer: Result<Reply, ReqError>) -> Result<Option<i64>, String> {
    let r = answer.map_err(|e| format!("nats: {e}"))?;
    match r.status {
        Some(404) => Ok(None),
        Some(s) => Err(format!("nats: {s} {}", r.description)),
        None => number(&r.payload).map(Some),
    }
}

struct NatsClient {
    addr: SocketAddr,
    /// The connection, replaced by a fresh one when it is found closed
    /// before a request is sent (nothing was sent on it, so that is safe).
    conn: tokio::sync::Mutex<std::sync::Arc<Conn>>,
    reads: ReadMode,
    timeout: Duration,
}

impl NatsClient {
    /// The connection to send on: the open one, or a new one.
    async fn conn(&self) -> Result<std::sync::Arc<Conn>, String> {
        let mut c = self.conn.lock().await;
        if c.is_closed() {
            *c = std::sync::Arc::new(Conn::connect(self.addr, self.timeout).await?);
        }
        Ok(c.clone())
    }

    async fn request(
        &self,
        subject: &str,
        headers: &[(&str, String)],
        payload: &[u8],
    ) -> Result<Reply, ReqError> {
        let conn = self.conn().await.map_err(ReqError::NotSent)?;
        conn.request(subject, headers, payload, self.timeout).await
    }

    async fn leader_get(&self, key: &str) -> Result<Option<(i64, u64)>, String> {
        let body = json!({ "last_by_subj": subject(key) }).to_string();
        let subj = format!("$JS.API.STREAM.MSG.GET.{STREAM}");
        classify_get(self.request(&subj, &[], body.as_bytes()).await)
    }

    async fn run(&self, op: &KvOp) -> Answer {
        match op {
            KvOp::Read(k) => {
                let got = match self.reads {
                    ReadMode::Direct => {
                        let subj = format!("$JS.API.DIRECT.GET.{STREAM}.{}", subject(k));
                        classify_direct(self.request(&subj, &[], b"").await)
                    }
                    _ => self.leader_get(k).await.map(|o| o.map(|(v, _)| v)),
                };
                match got {
                    Ok(v) => Answer::Ok(v),
                    Err(e) => Answer::Fail(e),
                }
            }
            KvOp::Write(k, v) => classify_ack(
                self.request(&subject(k), &[], v.to_string().as_bytes())
                    .await,
            ),
            KvOp::Cas(k, old, new) => {
                let (value, seq) = match self.leader_get(k).await {
                    Err(e) => return Answer::Fail(format!("{e} (reading before the cas)")),
                    Ok(None) => return Answer::Fail("cas mismatch: the register held null".into()),
                    Ok(Some(x)) => x,
                };
                if value != *old {
                    return Answer::Fail(format!("cas mismatch: the register held {value}"));
                }
                classify_ack(
                    self.request(
                        &subject(k),
                        &[(EXPECTED_SEQ, seq.to_string())],
                        new.to_string().as_bytes(),
                    )
                    .await,
                )
            }
        }
    }
}

impl KvClient for NatsClient {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn call<'a>(&'a self, op: &'a KvOp) -> BoxFuture<'a, Answer> {
        self.run(op).boxed()
    }
}

/// A member's status from its `/jsz?accounts=true&streams=true` answer,
/// `name` being the member's own server name (see the module's notes).
pub fn status_from_jsz(name: &str, jsz: &Value) -> NodeStatus {
    let stream = jsz["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
        .find(|s| s["name"] == STREAM);
    let cluster = stream.map(|s| &s["cluster"]);
    let leader = cluster
        .and_then(|c| c["leader"].as_str())
        .filter(|l| !l.is_empty())
        .map(str::to_string);
    let replicas: Vec<(String, u64)> = cluster
        .and_then(|c| c["replicas"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let n = r["name"].as_str()?.to_string();
            // `active`: nanoseconds since this member last heard from it.
            let ms = r["active"].as_u64().map_or(u64::MAX, |ns| ns / 1_000_000);
            Some((n, ms))
        })
        .filter(|(n, _)| n != name)
        .collect();
    let mut voters: Vec<String> = replicas.iter().map(|(n, _)| n.clone()).collect();
    if stream.is_some() {
        voters.push(name.to_string());
    }
    voters.sort();
    voters.dedup();
    let leading = leader.as_deref() == Some(name);
    let heard = |who: &str| replicas.iter().find(|(n, _)| n == who).map(|(_, ms)| *ms);
    let quorum_heard_ms = leading.then(|| {
        let mut heard: Vec<u64> = replicas.iter().map(|(_, ms)| *ms).collect();
        heard.sort_unstable();
        // The leader counts itself: majority − 1 followers make a quorum.
        let need = majority(voters.len().max(1)) - 1;
        if need == 0 {
            0
        } else {
            heard.get(need - 1).copied().unwrap_or(u64::MAX)
        }
    });
    let last = stream.map_or(0, |s| s["state"]["last_seq"].as_u64().unwrap_or(0));
    NodeStatus {
        role: if leading {
            Role::Leader
        } else {
            Role::Follower
        },
        leader_heard_ms: match &leader {
            Some(l) if l == name => Some(0),
            Some(l) => heard(l),
            None => None,
        },
        leader,
        term: 0,
        commit_index: last,
        applied_index: last,
        last_log_index: last,
        voters,
        outgoing: Vec::new(),
        learners: Vec::new(),
        config_index: 0,
        leading_ms: None,
        quorum_heard_ms,
        snapshot_index: 0,
        snapshot_term: 0,
        first_index: 0,
        snapshots_taken: 0,
        snapshots_installed: 0,
        id: name.to_string(),
    }
}

impl Nats {
    async fn get_json(&self, addr: SocketAddr, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .with_context(|| format!("nats monitoring at {addr}"))?;
        let code = resp.status().as_u16();
        if code != 200 {
            bail!("nats monitoring at {addr}{path}: HTTP {code}");
        }
        resp.json::<Value>()
            .await
            .with_context(|| format!("nats monitoring at {addr}{path}: not JSON"))
    }

    async fn status_now(&self, client: SocketAddr) -> anyhow::Result<NodeStatus> {
        let mon = monitor_addr(client);
        let known = self
            .names
            .lock()
            .expect("not poisoned")
            .get(&client)
            .cloned();
        let name = match known {
            Some(n) => n,
            None => {
                let v = self.get_json(mon, "/varz").await?;
                let n = v["server_name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .with_context(|| format!("nats at {mon}: /varz names no server"))?
                    .to_string();
                self.names
                    .lock()
                    .expect("not poisoned")
                    .insert(client, n.clone());
                n
            }
        };
        let jsz = self
            .get_json(mon, "/jsz?accounts=true&streams=true")
            .await?;
        Ok(status_from_jsz(&name, &jsz))
    }

    async fn create_stream(&self, clients: &[SocketAddr], deadline: Instant) -> Result<(), String> {
        let config = stream_config(clients.len(), self.reads).to_string();
        let subj = format!("$JS.API.STREAM.CREATE.{STREAM}");
        let mut last = String::from("no member answered");
        let mut i = 0usize;
        while Instant::now() < deadline {
            let addr = clients[i % clients.len()];
            i += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let step = left.min(Duration::from_secs(5));
            match Conn::connect(addr, step).await {
                Ok(conn) => match conn.request(&subj, &[], config.as_bytes(), step).await {
                    Ok(r) if r.status.is_some() => {
                        last = format!("{addr}: {} {}", r.status.unwrap_or(0), r.description)
                    }
                    Ok(r) => match api_error(&json_of(&r)) {
                        None => return Ok(()),
                        Some((STREAM_EXISTS, _)) => return Ok(()),
                        Some((code, d)) => last = format!("{addr}: {d} ({code})"),
                    },
                    Err(e) => last = format!("{addr}: {e}"),
                },
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!(
            "nats: the stream {STREAM} could not be created (last: {last})"
        ))
    }
}

impl Target for Nats {
    fn kind(&self) -> TargetKind {
        TargetKind::Nats
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn command(&self, m: &Member<'_>) -> std::process::Command {
        let mut routes = vec![format!("nats-route://{}", m.listen)];
        routes.extend(m.peers.iter().map(|(_, a)| format!("nats-route://{a}")));
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.arg("--addr")
            .arg(m.client.ip().to_string())
            .arg("--port")
            .arg(m.client.port().to_string())
            .arg("--http_port")
            .arg(monitor_addr(m.client).port().to_string())
            .arg("--server_name")
            .arg(m.id)
            .arg("--jetstream")
            .arg("--store_dir")
            .arg(m.data_dir)
            .arg("--cluster")
            .arg(format!("nats://{}", m.listen))
            .arg("--cluster_name")
            .arg(CLUSTER)
            .arg("--routes")
            .arg(routes.join(","))
            .args(m.settings);
        cmd
    }

    fn connect<'a>(
        &'a self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Box<dyn KvClient>, String>> {
        async move {
            let conn = Conn::connect(addr, timeout).await?;
            Ok(Box::new(NatsClient {
                addr,
                conn: tokio::sync::Mutex::new(std::sync::Arc::new(conn)),
                reads: self.reads,
                timeout,
            }) as Box<dyn KvClient>)
        }
        .boxed()
    }

    fn status<'a>(
        &'a self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<NodeStatus>> {
        async move {
            faultline_node::netpolicy::allowed(addr).map_err(anyhow::Error::msg)?;
            tokio::time::timeout(timeout, self.status_now(addr))
                .await
                .map_err(|_| {
                    anyhow::anyhow!("nats status at {addr}: no answer within {timeout:?}")
                })?
        }
        .boxed()
    }

    fn prepare<'a>(
        &'a self,
        clients: &'a [SocketAddr],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>> {
        async move {
            if clients.is_empty() {
                return Err("nats: no member to create the stream on".into());
            }
            self.create_stream(clients, Instant::now() + timeout).await
        }
        .boxed()
    }
}
