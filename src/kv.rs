//! `faultline kv`: one request to one node.
//!
//! Exit status: 0 done; 1 a cas whose expected value did not match (nothing
//! changed); 2 bad usage; 3 the outcome is unknown (timed out, leadership
//! lost: the write may or may not have happened); 4 the request certainly
//! did not happen (no leader known, cannot connect).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use faultline_node::client::Client;
use faultline_node::protocol::{ClientRequest, ClientResponse};

/// `faultline kv` flags.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// The node's client address.
    #[arg(long)]
    node: SocketAddr,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for the answer, milliseconds.
    #[arg(long, default_value_t = 5000, global = true)]
    timeout: u64,
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
        KvOp::Status => ClientRequest::Status,
        KvOp::Get { key } => ClientRequest::Get { key: key.clone() },
        KvOp::Put { key, value } => ClientRequest::Put {
            key: key.clone(),
            value: *value,
        },
        KvOp::Cas { key, expected, new } => ClientRequest::Cas {
            key: key.clone(),
            expected: *expected,
            new: *new,
        },
    };
    let timeout = Duration::from_millis(args.timeout);
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
        Ok(ClientResponse::Error(e)) => failed(e.is_definite(), &e),
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
