//! Change a cluster's membership and wait until the change is complete:
//! the one routine that the nemesis and `faultline kv add-member` /
//! `remove-member` share.
//!
//! A change completes in steps (learners catch up, the joint configuration
//! commits, then the final one), and the node that takes the request only
//! answers once the first step's entry has committed. So the routine sends
//! the request, then polls the configuration — the leader's where the
//! answering node names one that is also askable — until it shows the change
//! done. Refusals are matched by their [`RefusalKind`], never by their words.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::client::{CallError, Client};
use crate::protocol::{ClientError, ClientRequest, ClientResponse, MembersInfo};
use crate::raft::{NodeId, RefusalKind};

/// How persistent to be.
#[derive(Clone, Copy, Debug)]
pub struct ChangeOptions {
    /// How long the whole change may take.
    pub within: Duration,
    /// How long one request may take.
    pub call_timeout: Duration,
    /// Ask again (any askable node, until `within` is up) when a node is
    /// busy, has no leader, does not answer, or the accepted change was
    /// lost with its leader; and take "already done" as the success of an
    /// earlier attempt. Without it, the first node's first refusal or error
    /// is the answer (what a person at a prompt wants to see).
    pub retry: bool,
}

/// A change that completed.
#[derive(Clone, Debug)]
pub struct Changed {
    /// The configuration that shows it complete.
    pub members: MembersInfo,
    /// Where its first configuration entry committed (none when an earlier
    /// attempt's change was found complete).
    pub first_index: Option<u64>,
}

/// A change that did not complete.
#[derive(Debug, Error)]
pub enum ChangeFailed {
    /// A node answered with an error (for a refusal, nothing changed).
    #[error("{0}")]
    Refused(ClientError),
    /// No answer from the node.
    #[error("{0}")]
    Unreachable(CallError),
    /// Accepted (or unanswered), but not seen complete in time; it may
    /// still complete.
    #[error("the change was not complete within {} s (last seen: {last})", within.as_secs_f64())]
    Incomplete {
        /// Where its first entry committed, if a node said so.
        first_index: Option<u64>,
        /// The time it had.
        within: Duration,
        /// The last configuration or error seen.
        last: String,
    },
}

impl ChangeFailed {
    /// Whether the change certainly did not happen.
    pub fn is_definite(&self) -> bool {
        match self {
            ChangeFailed::Refused(e) => e.is_definite(),
            ChangeFailed::Unreachable(e) => e.is_definite(),
            ChangeFailed::Incomplete { .. } => false,
        }
    }
}

/// Ask the node at `addr` for its configuration.
pub async fn members_at(addr: SocketAddr, timeout: Duration) -> Result<MembersInfo, String> {
    let c = Client::connect(addr, timeout)
        .await
        .map_err(|e| e.to_string())?;
    match c.call(ClientRequest::Members).await {
        Ok(ClientResponse::Members(m)) => Ok(m),
        Ok(other) => Err(format!(
            "the node answered a members request with {}",
            other.describe()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The configuration as the leader knows it, asked of `nodes` in order: the
/// first answer, or the answer of the leader it names when that leader is
/// one of `nodes`.
pub async fn leader_view(
    nodes: &[(NodeId, SocketAddr)],
    timeout: Duration,
) -> Result<MembersInfo, String> {
    let mut last = String::from("no node to ask");
    for (id, addr) in nodes {
        match members_at(*addr, timeout).await {
            Ok(m) => {
                let leader = m.leader.clone().filter(|l| l != id);
                if let Some((_, laddr)) = nodes.iter().find(|(n, _)| Some(n) == leader.as_ref()) {
                    if let Ok(lm) = members_at(*laddr, timeout).await {
                        return Ok(lm);
                    }
                }
                return Ok(m);
            }
            Err(e) => last = format!("{id}: {e}"),
        }
    }
    Err(last)
}

/// Add `add` (id, peer address) and remove `remove`, asking `nodes` (the
/// servers that stay, in the order to ask them), and wait until the
/// configuration shows the change complete.
pub async fn change_members(
    nodes: &[(NodeId, SocketAddr)],
    add: &[(NodeId, String)],
    remove: &[NodeId],
    opts: ChangeOptions,
) -> Result<Changed, ChangeFailed> {
    let deadline = Instant::now() + opts.within;
    let added: Vec<NodeId> = add.iter().map(|(id, _)| id.clone()).collect();
    let mut first_index = None;
    let mut last = String::from("no node answered");
    let poll = Duration::from_millis(100);
    while Instant::now() < deadline {
        // Has it happened already (an earlier answer was lost)? Ask the
        // leader first.
        let mut order = nodes.to_vec();
        if opts.retry {
            if let Ok(m) = leader_view(nodes, opts.call_timeout).await {
                if m.shows_done(&added, remove) {
                    return Ok(Changed {
                        members: m,
                        first_index,
                    });
                }
                if let Some(pos) = order
                    .iter()
                    .position(|(id, _)| Some(id) == m.leader.as_ref())
                {
                    order.swap(0, pos);
                }
            }
        }
        let mut accepted = false;
        for (id, addr) in &order {
            let request = ClientRequest::ChangeMembers {
                add: add.to_vec(),
                remove: remove.to_vec(),
            };
            let answer = match Client::connect(*addr, opts.call_timeout).await {
                Ok(c) => c.call(request).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(ClientResponse::Changed { index }) => {
                    first_index = Some(index);
                    accepted = true;
                    break;
                }
                Ok(ClientResponse::Error(ClientError::ChangeRefused {
                    kind: RefusalKind::AlreadyDone,
                    ..
                })) if opts.retry => {
                    // An earlier attempt went through: wait for it below.
                    accepted = true;
                    break;
                }
                Ok(ClientResponse::Error(e)) => {
                    let retry_later = matches!(
                        e,
                        ClientError::ChangeRefused {
                            kind: RefusalKind::Busy,
                            ..
                        }
                    ) || !matches!(e, ClientError::ChangeRefused { .. });
                    if !opts.retry || !retry_later {
                        return Err(ChangeFailed::Refused(e));
                    }
                    last = format!("{id}: {e}");
                }
                Ok(other) => {
                    let e = format!(
                        "{id}: answered a membership change with {}",
                        other.describe()
                    );
                    if !opts.retry {
                        return Err(ChangeFailed::Incomplete {
                            first_index,
                            within: opts.within,
                            last: e,
                        });
                    }
                    last = e;
                }
                Err(e) if !opts.retry => return Err(ChangeFailed::Unreachable(e)),
                Err(e) => last = format!("{id}: {e}"),
            }
        }
        if !accepted {
            tokio::time::sleep(2 * poll).await;
            continue;
        }
        // Wait for the later steps, or (when retrying) for the change to
        // vanish because its leader lost it, in which case ask again.
        while Instant::now() < deadline {
            match leader_view(nodes, opts.call_timeout).await {
                Ok(m) if m.shows_done(&added, remove) => {
                    return Ok(Changed {
                        members: m,
                        first_index,
                    })
                }
                Ok(m) if opts.retry && m.committed && !m.changing => break,
                Ok(m) => last = describe(&m),
                Err(e) => last = e,
            }
            tokio::time::sleep(poll).await;
        }
    }
    Err(ChangeFailed::Incomplete {
        first_index,
        within: opts.within,
        last,
    })
}

/// A configuration in words, one line per fact: the entry and its state,
/// the voters, the old voters while joint, learners, servers being removed,
/// and the leader.
pub fn describe_lines(m: &MembersInfo) -> Vec<String> {
    let mut lines = vec![
        format!(
            "config entry {} ({}{})",
            m.config_index,
            if m.committed {
                "committed"
            } else {
                "not committed yet"
            },
            if m.changing {
                ", change in progress"
            } else {
                ""
            }
        ),
        format!("voters {}", m.voters.join(",")),
    ];
    let mut add = |what: &str, ids: &[NodeId]| {
        if !ids.is_empty() {
            lines.push(format!("{what} {}", ids.join(",")));
        }
    };
    add("old voters (joint)", &m.outgoing);
    add("learners", &m.learners);
    add("removing", &m.removing);
    lines.push(format!("leader {}", m.leader.as_deref().unwrap_or("-")));
    lines
}

/// A configuration in one line.
pub fn describe(m: &MembersInfo) -> String {
    describe_lines(m).join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{self, ClientEnvelope, ClientReply};
    use futures::{SinkExt, StreamExt};
    use tokio_util::codec::Framed;

    /// A server that answers every request with `Ok(Some(7))`.
    async fn wrong_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((s, _)) = listener.accept().await {
                let mut f = Framed::new(s, protocol::codec());
                while let Some(Ok(frame)) = f.next().await {
                    let Ok(env) = protocol::decode::<ClientEnvelope>(&frame) else {
                        return;
                    };
                    let reply = ClientReply {
                        id: env.id,
                        response: ClientResponse::Ok(Some(7)),
                    };
                    if f.send(protocol::encode(&reply)).await.is_err() {
                        return;
                    }
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_wrong_answer_is_described_in_words_not_debug_formatting() {
        let addr = wrong_server().await;
        let e = members_at(addr, Duration::from_secs(5)).await.unwrap_err();
        assert!(e.contains("a register value (7)"), "{e}");
        assert!(!e.contains("Ok(Some"), "{e}");
    }
}
