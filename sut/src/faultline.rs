//! faultline's own Raft node as a [`Target`]: the flags it takes, its
//! client protocol, and its status request.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use faultline_node::client::Client;
use faultline_node::protocol::{ClientRequest, ClientResponse, NodeStatus};
use futures::future::BoxFuture;
use futures::FutureExt;

use crate::answer::{classify, classify_txn};
use crate::{Answer, KvClient, KvOp, Member, MicroOp, Program, Target, TargetKind, TxnAnswer};

/// faultline's node, run by a program.
#[derive(Clone, Debug)]
pub struct FaultlineNode {
    program: Program,
    /// The cluster its clients greet (none: they name none, and any node
    /// answers them).
    cluster: Option<String>,
}

impl FaultlineNode {
    /// The node run by `program`.
    pub fn new(program: Program) -> Self {
        FaultlineNode {
            program,
            cluster: None,
        }
    }

    /// Its clients name `cluster` when they connect.
    pub fn in_cluster(mut self, cluster: Option<&str>) -> Self {
        self.cluster = cluster.map(str::to_string);
        self
    }
}

struct NodeClient(Client);

impl KvClient for NodeClient {
    fn addr(&self) -> SocketAddr {
        self.0.addr()
    }

    fn call<'a>(&'a self, op: &'a KvOp) -> BoxFuture<'a, Answer> {
        let request = match op {
            KvOp::Read(key) => ClientRequest::Get { key: key.clone() },
            KvOp::Write(key, value) => ClientRequest::Put {
                key: key.clone(),
                value: *value,
            },
            KvOp::Cas(key, expected, new) => ClientRequest::Cas {
                key: key.clone(),
                expected: *expected,
                new: *new,
            },
        };
        async move { classify(self.0.call(request).await) }.boxed()
    }

    fn txn<'a>(&'a self, ops: &'a [MicroOp]) -> BoxFuture<'a, TxnAnswer> {
        let request = ClientRequest::Txn { ops: ops.to_vec() };
        async move { classify_txn(self.0.call(request).await) }.boxed()
    }
}

impl Target for FaultlineNode {
    fn kind(&self) -> TargetKind {
        TargetKind::Faultline
    }

    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    fn command(&self, m: &Member<'_>) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program.program);
        cmd.args(&self.program.args);
        m.address_args(&mut cmd);
        cmd.arg("--data-dir").arg(m.data_dir);
        if m.join {
            cmd.arg("--join");
        } else if !m.voters.is_empty() {
            cmd.arg("--voters").arg(m.voters.join(","));
        }
        cmd.args(m.settings);
        cmd
    }

    fn connect<'a>(
        &'a self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Box<dyn KvClient>, String>> {
        async move {
            Client::connect_in(addr, timeout, self.cluster.as_deref())
                .await
                .map(|c| Box::new(NodeClient(c)) as Box<dyn KvClient>)
                .map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn status<'a>(
        &'a self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<NodeStatus>> {
        async move {
            let c = Client::connect_in(addr, timeout, self.cluster.as_deref()).await?;
            match c.call(ClientRequest::Status).await? {
                ClientResponse::Status(s) => Ok(s),
                other => bail!(
                    "the node answered a status request with {}",
                    other.describe()
                ),
            }
        }
        .boxed()
    }
}
