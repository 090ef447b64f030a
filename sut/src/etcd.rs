//! etcd as a [`Target`], through its v3 JSON gateway (plain HTTP/1.1 on the
//! client port, so that faultline builds with nothing but the Rust
//! toolchain: no protoc, no gRPC code generation).
//!
//! | operation | etcd call |
//! |---|---|
//! | read | `POST /v3/kv/range` (linearizable; `serializable: true` with `read_mode = "serializable"`) |
//! | write | `POST /v3/kv/put` |
//! | cas | `POST /v3/kv/txn`: compare the value, then put |
//! | txn (list-append) | two `POST /v3/kv/txn`: read every key at one revision, then compare each key's mod revision and put the new lists, retried from the start when a compare fails ([`append`]) |
//! | lock workload | its lock API with a lease ([`lock`]) |
//! | status | `POST /v3/maintenance/status` (leader, raft term, raft index, applied index) and `/v3/cluster/member/list` (member names); on the leader, a linearizable read of an unused key tells whether it still hears a majority |
//!
//! How answers become outcomes ([`classify`]): a Txn whose compare failed
//! is `fail` (nothing changed); a request etcd refused as invalid
//! (gRPC code 3) is `fail`; a connection that could not be made is `fail`
//! (nothing was sent); any failed read is `fail` (a read changes nothing);
//! every other error of a write or cas — a timeout, "leader changed", "no
//! leader", a connection lost — is `info`, since etcd may have applied it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use faultline_node::protocol::NodeStatus;
use faultline_node::raft::Role;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};

use crate::{Answer, KvClient, KvOp, Member, MicroOp, Outcome, Target, TargetKind, TxnAnswer};

pub mod append;
pub mod lock;

pub use faultline_rundir::spec::ReadMode;

/// The etcd binary and how to talk to its members.
pub struct Etcd {
    bin: PathBuf,
    version: String,
    reads: ReadMode,
    /// Member id (decimal, as the gateway prints it) → name.
    names: Mutex<HashMap<String, String>>,
    /// The status calls' client, kept across polls (its connections are
    /// reused); each call is bounded by its own time limit.
    status_http: reqwest::Client,
}

/// The key of the status probe's linearizable read (never written).
pub const PROBE_KEY: &str = "faultline-status-probe";

/// The oldest etcd faultline drives (the v3 JSON gateway at `/v3/`).
pub const OLDEST: (u32, u32) = (3, 4);

/// Where the etcd binary is: `explicit` (`--etcd-bin`, or `--bin`), or
/// `etcd` on PATH.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, String> {
    crate::program::locate(
        "etcd",
        explicit,
        "--etcd-bin",
        "install the etcd-server package (apt-get install etcd-server) or pass --etcd-bin",
    )
}

pub use crate::program::VERSION_TIMEOUT;

/// The version `etcd --version` prints, checked against [`OLDEST`] (the
/// call bounded as [`crate::program::version_text`] says).
pub fn version_of(bin: &Path) -> Result<String, String> {
    crate::program::checked_version(bin, "etcd", "etcd Version:", OLDEST)
}

impl Etcd {
    /// etcd at `bin` (or on PATH), its version checked.
    pub fn find(bin: Option<&Path>, reads: ReadMode) -> Result<Etcd, String> {
        let bin = locate(bin)?;
        let version = version_of(&bin)?;
        Ok(Etcd {
            bin,
            version,
            reads,
            names: Mutex::default(),
            status_http: crate::program::http_client(Duration::from_secs(30))?,
        })
    }

    async fn member_names(&self, http: &reqwest::Client, addr: SocketAddr) -> anyhow::Result<()> {
        let (code, v) = post(http, addr, "/v3/cluster/member/list", json!({}))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if code != 200 {
            bail!("member list: HTTP {code}: {v}");
        }
        let mut names = self.names.lock().expect("not poisoned");
        for m in v["members"].as_array().into_iter().flatten() {
            if let (Some(id), Some(name)) = (m["ID"].as_str(), m["name"].as_str()) {
                if !name.is_empty() {
                    names.insert(id.to_string(), name.to_string());
                }
            }
        }
        Ok(())
    }

    fn name_of(&self, id: &str) -> Option<String> {
        self.names.lock().expect("not poisoned").get(id).cloned()
    }
}

/// A POST of `body` to `path` on `addr`: (HTTP status, the JSON answer).
async fn post(
    http: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    body: Value,
) -> Result<(u16, Value), reqwest::Error> {
    let resp = http
        .post(format!("http://{addr}{path}"))
        .json(&body)
        .send()
        .await?;
    let code = resp.status().as_u16();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    Ok((code, v))
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

fn int_of(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64())
        .unwrap_or(0)
}

/// Map an etcd answer to an outcome (see the module's table).
pub fn classify(op: &KvOp, answer: Result<(u16, Value), reqwest::Error>) -> Answer {
    let read = matches!(op, KvOp::Read(_));
    let (code, v) = match answer {
        Ok(a) => a,
        Err(e) if e.is_connect() || read => {
            return Answer::Fail(format!("etcd: {}", error_chain(&e)))
        }
        Err(e) if e.is_timeout() => return Answer::Info("etcd: no answer in time".into()),
        Err(e) => return Answer::Info(format!("etcd: {}", error_chain(&e))),
    };
    if code != 200 {
        let definite = read || v["code"].as_u64() == Some(3);
        let what = said(code, &v);
        return if definite {
            Answer::Fail(what)
        } else {
            Answer::Info(what)
        };
    }
    match op {
        KvOp::Read(_) => {
            let value = v["kvs"][0]["value"].as_str();
            match value {
                None => Answer::Ok(None),
                Some(b) => match B64
                    .decode(b)
                    .ok()
                    .and_then(|raw| String::from_utf8(raw).ok())
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    Some(n) => Answer::Ok(Some(n)),
                    None => {
                        Answer::Fail(format!("etcd: the key holds '{b}' (base64), not a number"))
                    }
                },
            }
        }
        KvOp::Write(..) => Answer::Ok(None),
        KvOp::Cas(..) => {
            if v["succeeded"].as_bool() == Some(true) {
                Answer::Ok(None)
            } else {
                Answer::Fail("cas mismatch: the compare failed".into())
            }
        }
    }
}

/// An etcd error answer in words: `etcd: HTTP 503: etcdserver: …`.
pub(crate) fn said(code: u16, v: &Value) -> String {
    let msg = v["error"]
        .as_str()
        .or_else(|| v["message"].as_str())
        .unwrap_or("no error message");
    format!("etcd: HTTP {code}: {msg}")
}

/// A write's answer (a put, a Txn that writes, an unlock) that is not a
/// success, as the module's table maps it: refused as invalid (gRPC code
/// 3) or never connected is `fail`; anything else may have taken effect,
/// `info`. `Ok` carries the body of an HTTP 200.
pub(crate) fn unless_written<T>(
    answer: Result<(u16, Value), reqwest::Error>,
) -> Result<Value, crate::Outcome<T>> {
    use crate::Outcome;
    match answer {
        Ok((200, v)) => Ok(v),
        Ok((code, v)) if v["code"].as_u64() == Some(3) => Err(Outcome::Fail(said(code, &v))),
        Ok((code, v)) => Err(Outcome::Info(said(code, &v))),
        Err(e) if e.is_connect() => Err(Outcome::Fail(format!("etcd: {}", error_chain(&e)))),
        Err(e) if e.is_timeout() => Err(Outcome::Info("etcd: no answer in time".into())),
        Err(e) => Err(Outcome::Info(format!("etcd: {}", error_chain(&e)))),
    }
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

/// The JSON body of an operation.
pub fn request(op: &KvOp, reads: ReadMode) -> (&'static str, Value) {
    match op {
        KvOp::Read(k) => (
            "/v3/kv/range",
            json!({"key": b64(k), "serializable": reads == ReadMode::Serializable}),
        ),
        KvOp::Write(k, v) => (
            "/v3/kv/put",
            json!({"key": b64(k), "value": b64(&v.to_string())}),
        ),
        KvOp::Cas(k, e, n) => (
            "/v3/kv/txn",
            json!({
                "compare": [{"key": b64(k), "target": "VALUE", "result": "EQUAL", "value": b64(&e.to_string())}],
                "success": [{"requestPut": {"key": b64(k), "value": b64(&n.to_string())}}],
            }),
        ),
    }
}

struct EtcdClient {
    addr: SocketAddr,
    http: reqwest::Client,
    reads: ReadMode,
    /// The per-operation time limit (a lock call waits longer).
    timeout: Duration,
}

impl KvClient for EtcdClient {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn call<'a>(&'a self, op: &'a KvOp) -> BoxFuture<'a, Answer> {
        async move {
            let (path, body) = request(op, self.reads);
            classify(op, post(&self.http, self.addr, path, body).await)
        }
        .boxed()
    }

    fn txn<'a>(&'a self, ops: &'a [MicroOp]) -> BoxFuture<'a, TxnAnswer> {
        append::run(&self.http, self.addr, self.reads, ops).boxed()
    }

    fn lock_prepare<'a>(&'a self, _lock: &'a str) -> BoxFuture<'a, Result<(), String>> {
        async { Ok(()) }.boxed()
    }

    fn lock_acquire<'a>(
        &'a self,
        lock: &'a str,
        ttl: Duration,
        now: &'a (dyn Fn() -> u64 + Send + Sync),
        deadline_ms: u64,
    ) -> BoxFuture<'a, Outcome<crate::lock::Held>> {
        let wait = Duration::from_millis(deadline_ms.saturating_sub(now()).max(1));
        lock::acquire(&self.http, self.addr, lock, ttl, wait, self.timeout).boxed()
    }

    fn lock_renew<'a>(
        &'a self,
        held: &'a mut crate::lock::Held,
        _ttl: Duration,
        _now_ms: u64,
    ) -> BoxFuture<'a, Result<(), String>> {
        lock::renew(&self.http, self.addr, held, self.timeout).boxed()
    }

    fn lock_release<'a>(&'a self, held: &'a crate::lock::Held) -> BoxFuture<'a, Answer> {
        lock::release(&self.http, self.addr, held, self.timeout).boxed()
    }

    fn fenced_write<'a>(
        &'a self,
        key: &'a str,
        held: &'a crate::lock::Held,
        value: i64,
    ) -> BoxFuture<'a, Answer> {
        lock::write(&self.http, self.addr, key, Some(held), value, self.timeout).boxed()
    }
}

impl Target for Etcd {
    fn kind(&self) -> TargetKind {
        TargetKind::Etcd
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn command(&self, m: &Member<'_>) -> std::process::Command {
        let url = |a: &SocketAddr| format!("http://{a}");
        let mut cluster = vec![format!("{}={}", m.id, url(&m.listen))];
        cluster.extend(
            m.peers
                .iter()
                .filter(|(id, _)| m.voters.is_empty() || m.voters.contains(id))
                .map(|(id, a)| format!("{id}={}", url(a))),
        );
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.arg("--name")
            .arg(m.id)
            .arg("--data-dir")
            .arg(m.data_dir)
            .arg("--listen-peer-urls")
            .arg(url(&m.listen))
            .arg("--initial-advertise-peer-urls")
            .arg(url(&m.listen))
            .arg("--listen-client-urls")
            .arg(url(&m.client))
            .arg("--advertise-client-urls")
            .arg(url(&m.client))
            .arg("--initial-cluster")
            .arg(cluster.join(","))
            .arg("--initial-cluster-state")
            .arg("new")
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .args(m.settings);
        cmd
    }

    fn connect<'a>(
        &'a self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Box<dyn KvClient>, String>> {
        async move {
            faultline_node::netpolicy::allowed(addr)?;
            Ok(Box::new(EtcdClient {
                addr,
                http: crate::program::http_client(timeout)?,
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
                    anyhow::anyhow!("etcd status at {addr}: no answer within {timeout:?}")
                })?
        }
        .boxed()
    }
}

impl Etcd {
    /// One status call, unbounded in time (see [`Target::status`]).
    async fn status_now(&self, addr: SocketAddr) -> anyhow::Result<NodeStatus> {
        let http = &self.status_http;
        let (code, v) = post(http, addr, "/v3/maintenance/status", json!({}))
            .await
            .with_context(|| format!("etcd status at {addr}"))?;
        if code != 200 {
            bail!("etcd status at {addr}: HTTP {code}: {v}");
        }
        let me = v["header"]["member_id"].as_str().unwrap_or("").to_string();
        let leader = v["leader"].as_str().unwrap_or("0").to_string();
        if self.name_of(&me).is_none() || (leader != "0" && self.name_of(&leader).is_none()) {
            self.member_names(http, addr).await?;
        }
        let id = self
            .name_of(&me)
            .with_context(|| format!("etcd at {addr}: member {me} has no name yet"))?;
        let voters: Vec<String> = {
            let mut v: Vec<String> = self
                .names
                .lock()
                .expect("not poisoned")
                .values()
                .cloned()
                .collect();
            v.sort();
            v
        };
        let raft_index = int_of(&v["raftIndex"]);
        // etcd does not say when its leader last heard from a majority;
        // a linearizable read does (ReadIndex needs a quorum's answer to
        // a heartbeat): a leader that cannot serve one in time is not
        // working, whatever its followers still believe.
        let quorum_heard_ms = if leader == me {
            let probe = KvOp::Read(PROBE_KEY.into());
            let (path, body) = request(&probe, ReadMode::Linearizable);
            match post(http, addr, path, body).await {
                Ok((200, _)) => Some(0),
                _ => Some(u64::MAX),
            }
        } else {
            None
        };
        Ok(NodeStatus {
            role: if leader == me {
                Role::Leader
            } else {
                Role::Follower
            },
            leader: if leader == "0" {
                None
            } else {
                self.name_of(&leader)
            },
            term: int_of(&v["raftTerm"]),
            commit_index: raft_index,
            applied_index: int_of(&v["raftAppliedIndex"]),
            last_log_index: raft_index,
            voters,
            outgoing: Vec::new(),
            learners: Vec::new(),
            config_index: 0,
            leader_heard_ms: None,
            leading_ms: None,
            quorum_heard_ms,
            // etcd's status does not say where its snapshot or log start.
            snapshot_index: 0,
            snapshot_term: 0,
            first_index: 0,
            snapshots_taken: 0,
            snapshots_installed: 0,
            id,
        })
    }
}

/// etcd's election timeout and heartbeat, ms, from a setting's range `A..B`
/// and heartbeat: `A` becomes `--election-timeout` (etcd randomizes within
/// [A, 2A)); etcd wants at least 5 heartbeats per election timeout.
pub fn timeouts(
    election_timeout: faultline_rundir::spec::MillisRange,
    heartbeat_ms: u64,
) -> Result<(u64, u64), String> {
    let (t, h) = (election_timeout.min, heartbeat_ms);
    if h < 1 {
        return Err("--heartbeat must be at least 1 ms".into());
    }
    if t < 5 * h || t > 50_000 {
        return Err(format!(
            "etcd needs an election timeout of at least 5 heartbeats and at most 50000 ms (got {t} ms, heartbeat {h} ms)"
        ));
    }
    Ok((t, h))
}

/// The flags every etcd member gets for a setting.
pub fn member_args(
    election_timeout: faultline_rundir::spec::MillisRange,
    heartbeat_ms: u64,
    pre_vote: bool,
    snapshot_entries: Option<u64>,
) -> Result<Vec<String>, String> {
    let (t, h) = timeouts(election_timeout, heartbeat_ms)?;
    let mut args = vec![
        "--election-timeout".to_string(),
        t.to_string(),
        "--heartbeat-interval".to_string(),
        h.to_string(),
    ];
    if pre_vote {
        args.push("--pre-vote".into());
    }
    if let Some(n) = snapshot_entries {
        args.extend(["--snapshot-count".to_string(), n.to_string()]);
    }
    Ok(args)
}

#[cfg(test)]
mod tests;
