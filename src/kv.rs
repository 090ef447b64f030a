//! `faultline kv`: one request to one node.
//!
//! Exit status: 0 done; 1 a cas whose expected value did not match (nothing
//! changed); 2 bad usage; 3 the outcome is unknown (timed out, leadership
//! lost: the write may or may not have happened); 4 the request certainly
//! did not happen (no leader known, cannot connect, a membership change
//! refused).
//!
//! `add-member` and `remove-member` send the change to the node, which
//! forwards it to the leader; once its first configuration entry commits,
//! they poll the same node until its configuration shows the change complete
//! (learners caught up, the joint configuration and then the final one
//! committed), at most `--wait` seconds. Ask a node that stays in the
//! cluster: a removed node may never hear of its own removal.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use faultline_node::change::{self, ChangeFailed, ChangeOptions};
use faultline_node::client::Client;
use faultline_node::kv::MicroOp;
use faultline_node::protocol::{ClientRequest, ClientResponse, MembersInfo};

/// `faultline kv` flags.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// The node's client address (loopback only).
    #[arg(long, value_parser = parse_local_addr)]
    node: SocketAddr,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for the answer, milliseconds.
    #[arg(long, default_value_t = 5000, global = true)]
    timeout: u64,
    /// add-member / remove-member: how long to wait for the whole change to
    /// complete, seconds.
    #[arg(long, default_value_t = 30, global = true)]
    wait: u64,
    #[command(subcommand)]
    op: KvOp,
}

#[derive(Debug, Subcommand)]
enum KvOp {
    /// The node's Raft status.
    Status,
    /// Read a register (prints the value or null).
    Get {
        /// The register.
        key: String,
    },
    /// Write a register.
    Put {
        /// The register.
        key: String,
        /// The value.
        #[arg(allow_negative_numbers = true)]
        value: i64,
    },
    /// Set KEY to NEW only if it holds EXPECTED; exit 1 if it does not.
    Cas {
        /// The register.
        key: String,
        /// The value it must hold.
        #[arg(allow_negative_numbers = true)]
        expected: i64,
        /// The value to store.
        #[arg(allow_negative_numbers = true)]
        new: i64,
    },
    /// Append VALUE to the list at KEY (a one-append transaction).
    Append {
        /// The list.
        key: String,
        /// The element.
        #[arg(allow_negative_numbers = true)]
        value: i64,
    },
    /// Read the whole list at KEY (a one-read transaction through the log).
    List {
        /// The list.
        key: String,
    },
    /// The cluster configuration as the node knows it.
    Members,
    /// Add servers: ID PEER_ADDR, repeated for several at once. Start each
    /// new node first with --join. Waits until they are voters.
    AddMember {
        /// ID PEER_ADDR [ID PEER_ADDR ...]
        #[arg(required = true, num_args = 2.., value_names = ["ID", "PEER_ADDR"])]
        pairs: Vec<String>,
    },
    /// Remove voters (several at once allowed). Waits until the change is complete.
    RemoveMember {
        /// The servers to remove.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// A node address on this machine, refused before anything is sent otherwise.
fn parse_local_addr(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s.parse().map_err(|_| {
        format!(
            "{} is not an IP:PORT address",
            faultline_rundir::quote::quoted(s)
        )
    })?;
    faultline_node::client::local_address(addr)?;
    Ok(addr)
}

/// Text for a configuration.
fn members_text(m: &MembersInfo) -> String {
    change::describe_lines(m).join("\n")
}

/// Send a membership change to the node and wait for it to complete.
async fn change_members(
    args: &KvArgs,
    add: Vec<(String, String)>,
    remove: Vec<String>,
) -> (u8, serde_json::Value, String) {
    let opts = ChangeOptions {
        within: Duration::from_secs(args.wait),
        call_timeout: Duration::from_millis(args.timeout),
        retry: false,
    };
    let node = [(String::from("the node"), args.node)];
    match change::change_members(&node, &add, &remove, opts).await {
        Ok(done) => {
            let text = format!("change complete\n{}", members_text(&done.members));
            let mut json = serde_json::to_value(&done.members).unwrap_or_default();
            if let Some(index) = done.first_index {
                json["first_entry"] = index.into();
            }
            (0, json, text)
        }
        Err(ChangeFailed::Incomplete {
            first_index: Some(index),
            last,
            ..
        }) => failed(
            false,
            &format!(
                "the change's first entry committed at index {index}, but it was not complete within {} s (last seen: {last}); it may still complete",
                args.wait
            ),
        ),
        Err(e) => failed(e.is_definite(), &e),
    }
}

/// Exit code, JSON and text for a request that did not complete: 4 when it
/// certainly did not happen, 3 when its outcome is unknown.
fn failed(definite: bool, e: &dyn std::fmt::Display) -> (u8, serde_json::Value, String) {
    let (code, kind) = if definite {
        (4, "definite")
    } else {
        (3, "unknown")
    };
    (
        code,
        serde_json::json!({"error": e.to_string(), "outcome": kind}),
        format!("error: {e}"),
    )
}

/// Run `faultline kv`.
pub async fn run(args: KvArgs) -> anyhow::Result<ExitCode> {
    let request = match &args.op {
        KvOp::Status => Some(ClientRequest::Status),
        KvOp::Members => Some(ClientRequest::Members),
        KvOp::Get { key } => Some(ClientRequest::Get { key: key.clone() }),
        KvOp::Put { key, value } => Some(ClientRequest::Put {
            key: key.clone(),
            value: *value,
        }),
        KvOp::Cas { key, expected, new } => Some(ClientRequest::Cas {
            key: key.clone(),
            expected: *expected,
            new: *new,
        }),
        KvOp::Append { key, value } => Some(ClientRequest::Txn {
            ops: vec![MicroOp::Append {
                key: key.clone(),
                value: *value,
            }],
        }),
        KvOp::List { key } => Some(ClientRequest::Txn {
            ops: vec![MicroOp::Read { key: key.clone() }],
        }),
        KvOp::AddMember { .. } | KvOp::RemoveMember { .. } => None,
    };
    let timeout = Duration::from_millis(args.timeout);
    let (code, json, text) = match &request {
        Some(request) => single(&args, request.clone(), timeout).await?,
        None => {
            let (add, remove) = match &args.op {
                KvOp::AddMember { pairs } => {
                    if pairs.len() % 2 != 0 {
                        eprintln!("faultline kv: error: add-member takes ID PEER_ADDR pairs; got an odd number of words");
                        return Ok(ExitCode::from(2));
                    }
                    let mut add = Vec::new();
                    for p in pairs.chunks(2) {
                        match parse_local_addr(&p[1]) {
                            Ok(_) => add.push((p[0].clone(), p[1].clone())),
                            _ => {
                                eprintln!("faultline kv: error: peer address '{}' of {} is not a loopback IP:PORT", p[1], p[0]);
                                return Ok(ExitCode::from(2));
                            }
                        }
                    }
                    (add, Vec::new())
                }
                KvOp::RemoveMember { ids } => (Vec::new(), ids.clone()),
                _ => unreachable!("every other op is a single request"),
            };
            change_members(&args, add, remove).await
        }
    };
    if args.json {
        println!("{json}");
    } else if code >= 3 {
        eprintln!("faultline kv: {text}");
    } else {
        println!("{text}");
    }
    Ok(ExitCode::from(code))
}

/// One request, one answer.
async fn single(
    args: &KvArgs,
    request: ClientRequest,
    timeout: Duration,
) -> anyhow::Result<(u8, serde_json::Value, String)> {
    let result = match Client::connect(args.node, timeout).await {
        Ok(c) => c.call(request).await,
        Err(e) => Err(e),
    };
    let (code, json, text) = match result {
        Err(e) => failed(e.is_definite(), &e),
        Ok(ClientResponse::Status(s)) => {
            let text = format!(
                "id {} role {} term {} leader {} commit {} applied {} last_log {} voters {}",
                s.id,
                s.role,
                s.term,
                s.leader.as_deref().unwrap_or("-"),
                s.commit_index,
                s.applied_index,
                s.last_log_index,
                s.voters.join(",")
            );
            let mut text = text;
            if !s.outgoing.is_empty() {
                text.push_str(&format!(" old_voters {}", s.outgoing.join(",")));
            }
            if !s.learners.is_empty() {
                text.push_str(&format!(" learners {}", s.learners.join(",")));
            }
            if let Some(ms) = s.leader_heard_ms {
                text.push_str(&format!(" leader_heard_ms {ms}"));
            }
            if let Some(ms) = s.leading_ms {
                text.push_str(&format!(" leading_ms {ms}"));
            }
            if s.first_index > 0 {
                text.push_str(&format!(
                    " snapshot {}@{} first_index {} snapshots_taken {} snapshots_installed {}",
                    s.snapshot_index,
                    s.snapshot_term,
                    s.first_index,
                    s.snapshots_taken,
                    s.snapshots_installed
                ));
            }
            (0, serde_json::to_value(&s)?, text)
        }
        Ok(ClientResponse::Ok(v)) => {
            let text = match (&args.op, v) {
                (KvOp::Get { .. }, Some(v)) => v.to_string(),
                (KvOp::Get { .. }, None) => "null".to_string(),
                _ => "ok".to_string(),
            };
            (0, serde_json::json!({"ok": true, "value": v}), text)
        }
        Ok(ClientResponse::CasMismatch { actual }) => {
            let held = actual.map_or("nothing".to_string(), |v| v.to_string());
            (
                1,
                serde_json::json!({"ok": false, "actual": actual}),
                format!("cas failed: the register holds {held}"),
            )
        }
        Ok(ClientResponse::Members(m)) => (0, serde_json::to_value(&m)?, members_text(&m)),
        Ok(ClientResponse::Changed { index }) => (
            0,
            serde_json::json!({"ok": true, "index": index}),
            format!("committed at {index}"),
        ),
        Ok(ClientResponse::Txn(results)) => {
            let list = results.into_iter().flatten().next();
            let text = match &list {
                Some(l) => format!(
                    "[{}]",
                    l.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
                ),
                None => "ok".to_string(),
            };
            (0, serde_json::json!({"ok": true, "list": list}), text)
        }
        Ok(ClientResponse::Error(e)) => failed(e.is_definite(), &e),
    };
    Ok((code, json, text))
}
