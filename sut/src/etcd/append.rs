//! List-append transactions on etcd. Each key's list is stored as its
//! value, the elements comma-separated (`1,2,5`). A transaction is two
//! etcd Txns:
//!
//! 1. one that reads every key it names (`requestRange` each, in one Txn:
//!    one revision for all of them), linearizably (or `serializable` under
//!    `read_mode = "serializable"`, the positive control);
//! 2. if it appends, one that compares each key's `mod_revision` with
//!    what step 1 saw (0 for a key never written) and puts the new lists.
//!
//! A compare that fails means another transaction wrote one of the keys
//! in between: nothing was written, and the transaction starts again from
//! step 1 (at most [`MAX_ATTEMPTS`] times, then `fail`). When step 2
//! succeeds, the whole transaction took effect at its revision, where the
//! keys still held what step 1 read: what etcd claims for its Txns,
//! strict serializability, is what the checker judges.
//!
//! Outcomes: a failed step 1 is `fail` (nothing written); step 2 follows
//! the cas rules of [`super::classify`] (a timeout or a lost connection is
//! `info`).

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Value};

use super::{b64, error_chain, int_of, post, said, unless_written, ReadMode, B64};
use crate::{MicroOp, Outcome, TxnAnswer};

/// How many times a transaction whose compare failed is tried in all.
pub const MAX_ATTEMPTS: usize = 10;

/// A key's list and its mod revision, as step 1 read them.
type Snapshot = BTreeMap<String, (Vec<i64>, u64)>;

/// Each micro-operation's result (a read's list, none for an append).
type Results = Vec<Option<Vec<i64>>>;

/// The list a value encodes.
pub fn decode_list(b64_value: &str) -> Result<Vec<i64>, String> {
    let raw = B64
        .decode(b64_value)
        .map_err(|_| format!("etcd: a list value '{b64_value}' is not base64"))?;
    let text = String::from_utf8(raw).map_err(|_| "etcd: a list value is not UTF-8".to_string())?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|x| {
            x.parse::<i64>()
                .map_err(|_| format!("etcd: the key holds '{text}', not a list of integers"))
        })
        .collect()
}

/// A list as a value.
pub fn encode_list(list: &[i64]) -> String {
    b64(&list
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(","))
}

/// Step 1's body: a range of each key in one Txn.
pub fn read_request(keys: &[&str], reads: ReadMode) -> Value {
    let ranges: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({"requestRange": {"key": b64(k), "serializable": reads == ReadMode::Serializable}})
        })
        .collect();
    json!({"compare": [], "success": ranges})
}

/// Step 1's answer: each key's list and mod revision.
pub fn read_answer(keys: &[&str], v: &Value) -> Result<Snapshot, String> {
    let responses = v["responses"]
        .as_array()
        .filter(|r| r.len() == keys.len())
        .ok_or("etcd: the read Txn's answer lacks a response per key")?;
    let mut out = Snapshot::new();
    for (k, r) in keys.iter().zip(responses) {
        let kv = &r["response_range"]["kvs"][0];
        let entry = match kv["value"].as_str() {
            Some(b) => (decode_list(b)?, int_of(&kv["mod_revision"])),
            // Absent, or present with an empty value (the gateway leaves
            // out empty fields).
            None if kv.is_null() => (Vec::new(), 0),
            None => (Vec::new(), int_of(&kv["mod_revision"])),
        };
        out.insert(k.to_string(), entry);
    }
    Ok(out)
}

/// The transaction run against `snap`: each read's list, and the new
/// lists of the keys it appends to.
pub fn apply(ops: &[MicroOp], snap: &Snapshot) -> (Results, BTreeMap<String, Vec<i64>>) {
    let mut lists: BTreeMap<String, Vec<i64>> = snap
        .iter()
        .map(|(k, (l, _))| (k.clone(), l.clone()))
        .collect();
    let mut written = BTreeMap::new();
    let results = ops
        .iter()
        .map(|op| match op {
            MicroOp::Append { key, value } => {
                let l = lists.entry(key.clone()).or_default();
                l.push(*value);
                written.insert(key.clone(), l.clone());
                None
            }
            MicroOp::Read { key } => Some(lists.get(key).cloned().unwrap_or_default()),
        })
        .collect();
    (results, written)
}

/// Step 2's body: every key unchanged since `snap`, then the new lists.
pub fn write_request(snap: &Snapshot, written: &BTreeMap<String, Vec<i64>>) -> Value {
    let compare: Vec<Value> = snap
        .iter()
        .map(|(k, (_, rev))| {
            json!({"key": b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string()})
        })
        .collect();
    let puts: Vec<Value> = written
        .iter()
        .map(|(k, l)| json!({"requestPut": {"key": b64(k), "value": encode_list(l)}}))
        .collect();
    json!({"compare": compare, "success": puts})
}

/// Run `ops` on the member at `addr`.
pub async fn run(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    reads: ReadMode,
    ops: &[MicroOp],
) -> TxnAnswer {
    let mut keys: Vec<&str> = ops.iter().map(MicroOp::key).collect();
    keys.sort_unstable();
    keys.dedup();
    let appends = ops.iter().any(|o| matches!(o, MicroOp::Append { .. }));
    for _ in 0..MAX_ATTEMPTS {
        // Step 1: nothing is written, so any failure is definite.
        let snap = match post(http, addr, "/v3/kv/txn", read_request(&keys, reads)).await {
            Ok((200, v)) => match read_answer(&keys, &v) {
                Ok(s) => s,
                Err(e) => return Outcome::Fail(e),
            },
            Ok((code, v)) => return Outcome::Fail(said(code, &v)),
            Err(e) => return Outcome::Fail(format!("etcd: {}", error_chain(&e))),
        };
        let (results, written) = apply(ops, &snap);
        if !appends {
            return Outcome::Ok(results);
        }
        // Step 2: as a cas.
        match unless_written(post(http, addr, "/v3/kv/txn", write_request(&snap, &written)).await) {
            Ok(v) if v["succeeded"].as_bool() == Some(true) => return Outcome::Ok(results),
            // Another transaction wrote a key in between: nothing changed.
            Ok(_) => continue,
            Err(failed) => return failed,
        }
    }
    Outcome::Fail(format!(
        "etcd: the keys changed under the transaction {MAX_ATTEMPTS} times in a row (nothing written)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_reads_its_snapshot_and_its_own_appends_and_compares_every_key() {
        let keys = ["k1", "k2"];
        let answer = json!({"succeeded": true, "responses": [
            {"response_range": {"kvs": [{"key": b64("k1"), "value": encode_list(&[1, 2]), "mod_revision": "7"}]}},
            {"response_range": {}}
        ]});
        let snap = read_answer(&keys, &answer).unwrap();
        assert_eq!(snap["k1"], (vec![1, 2], 7));
        assert_eq!(snap["k2"], (vec![], 0));
        let ops = [
            MicroOp::Read { key: "k2".into() },
            MicroOp::Append {
                key: "k2".into(),
                value: 4,
            },
            MicroOp::Read { key: "k2".into() },
            MicroOp::Read { key: "k1".into() },
        ];
        let (results, written) = apply(&ops, &snap);
        assert_eq!(
            results,
            vec![Some(vec![]), None, Some(vec![4]), Some(vec![1, 2])]
        );
        assert_eq!(written.len(), 1);
        let w = write_request(&snap, &written);
        assert_eq!(w["compare"].as_array().unwrap().len(), 2, "{w}");
        assert_eq!(w["compare"][1]["mod_revision"], "0");
        assert_eq!(w["success"][0]["requestPut"]["value"], encode_list(&[4]));
        assert_eq!(decode_list(&encode_list(&[-3, 5])).unwrap(), vec![-3, 5]);
        assert_eq!(decode_list(&encode_list(&[])).unwrap(), Vec::<i64>::new());
        assert!(decode_list(&b64("1,x")).is_err());
        assert!(read_answer(&keys, &json!({"responses": []})).is_err());
        let r = read_request(&keys, ReadMode::Serializable);
        assert_eq!(r["success"][0]["requestRange"]["serializable"], true);
    }
}
