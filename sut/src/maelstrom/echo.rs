//! A trivial Maelstrom node for measuring the router: `faultline
//! maelstrom-echo`. It answers `init`, answers `echo` with `echo_ok`, and
//! passes `relay` on to the next node with the client kept as `src`, so
//! that the next node answers the client itself (a node answering a
//! request another node was asked, as Maelstrom allows).

use std::io::{BufRead, BufWriter, Write};

use serde_json::{json, Value};

/// Run on stdin and stdout until stdin closes.
pub fn run() -> std::io::Result<()> {
    let mut input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut me = String::new();
    let mut next = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return out.flush();
        }
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let body = &msg["body"];
        let src = msg["src"].as_str().unwrap_or_default();
        let reply = match body["type"].as_str().unwrap_or_default() {
            "init" => {
                me = body["node_id"].as_str().unwrap_or_default().to_string();
                let ids: Vec<&str> = body["node_ids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let i = ids.iter().position(|x| *x == me).unwrap_or(0);
                next = ids
                    .get((i + 1) % ids.len().max(1))
                    .unwrap_or(&"")
                    .to_string();
                json!({"src": me, "dest": src, "body": {"type": "init_ok", "in_reply_to": body["msg_id"]}})
            }
            "echo" => {
                json!({"src": me, "dest": src, "body": {"type": "echo_ok", "in_reply_to": body["msg_id"], "echo": body["echo"]}})
            }
            "relay" => {
                json!({"src": src, "dest": next, "body": {"type": "echo", "msg_id": body["msg_id"], "echo": body["echo"]}})
            }
            _ => continue,
        };
        serde_json::to_writer(&mut out, &reply)?;
        out.write_all(b"\n")?;
        if input.buffer().is_empty() {
            out.flush()?;
        }
    }
}
