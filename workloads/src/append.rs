//! The list-append workload (`--workload append`): each operation is a
//! transaction of a few micro-operations — `append(k, v)` with a value
//! unique per key, `read(k)` returning the key's whole list — recorded as
//! `"f": "txn"` in the history (docs/history-format.md, "Transactions").
//! The register workload's processes, rate and retirement on `info` drive
//! it ([`crate::register`]); this module makes and runs one transaction.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use faultline_sut::{KvClient, MicroOp, Outcome, Target};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::recorder::{Event, Process, Recorder};

/// The shape of the workload's transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnShape {
    /// Most micro-operations of one transaction (each has 1 to this many).
    pub max_len: usize,
    /// Most distinct keys one transaction names (1: single-key).
    pub max_keys: usize,
}

impl Default for TxnShape {
    fn default() -> Self {
        TxnShape {
            max_len: 4,
            max_keys: 1,
        }
    }
}

impl TxnShape {
    /// Check the bounds (`--txn-len`, `--txn-keys`).
    pub fn validate(&self, keys: usize) -> Result<(), String> {
        let most = faultline_node::kv::MAX_TXN_OPS;
        if !(1..=most).contains(&self.max_len) {
            return Err(format!(
                "--txn-len must be between 1 and {most} (got {})",
                self.max_len
            ));
        }
        if self.max_keys == 0 || self.max_keys > keys || self.max_keys > self.max_len {
            return Err(format!(
                "--txn-keys must be between 1 and the smaller of --keys ({keys}) and --txn-len ({}) (got {})",
                self.max_len, self.max_keys
            ));
        }
        Ok(())
    }
}

/// A transaction: 1 to `shape.max_len` micro-operations over at most
/// `shape.max_keys` keys drawn by `pick_key`, each a read with probability
/// `read_share`, else an append of the key's next unused value.
pub fn pick_txn(
    rng: &mut impl Rng,
    shape: TxnShape,
    read_share: f64,
    values: &[AtomicI64],
    mut pick_key: impl FnMut(&mut dyn FnMut() -> f64) -> usize,
) -> Vec<MicroOp> {
    let len = rng.gen_range(1..=shape.max_len);
    let mut keys: Vec<usize> = Vec::with_capacity(shape.max_keys);
    let mut ops = Vec::with_capacity(len);
    for _ in 0..len {
        let k = if keys.len() < shape.max_keys {
            let k = pick_key(&mut || rng.gen::<f64>());
            if !keys.contains(&k) {
                keys.push(k);
            }
            k
        } else {
            keys[rng.gen_range(0..keys.len())]
        };
        let key = format!("k{k}");
        if rng.gen::<f64>() < read_share {
            ops.push(MicroOp::Read { key });
        } else {
            let value = values[k].fetch_add(1, Ordering::Relaxed) + 1;
            ops.push(MicroOp::Append { key, value });
        }
    }
    ops
}

/// The micro-operations as the history writes them: `["append", K, V]`,
/// `["r", K, LIST]` (`null` before the answer).
pub fn mops_json(ops: &[MicroOp], reads: Option<&[Option<Vec<i64>>]>) -> Value {
    Value::Array(
        ops.iter()
            .enumerate()
            .map(|(i, op)| match op {
                MicroOp::Append { key, value } => json!(["append", key, value]),
                MicroOp::Read { key } => {
                    let list = reads.and_then(|r| r.get(i).cloned().flatten());
                    json!(["r", key, list])
                }
            })
            .collect(),
    )
}

/// Record the invoke, run the transaction, record the completion; the
/// outcome as a register answer (for counting and retiring the process).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn execute_txn(
    target: &dyn Target,
    recorder: &Recorder,
    client: &mut Option<Box<dyn KvClient>>,
    addr: SocketAddr,
    node: &str,
    process: u64,
    ops: &[MicroOp],
    timeout: Duration,
) -> Answer {
    let event = |kind: &'static str, value: Value, error: Option<String>| Event {
        process: Process::Client(process),
        kind,
        f: "txn".into(),
        key: None,
        value,
        node: Some(node.to_string()),
        error,
    };
    let invoked = mops_json(ops, None);
    recorder.record(&event("invoke", invoked.clone(), None));
    if client.as_ref().is_some_and(|c| c.addr() != addr) {
        *client = None;
    }
    let outcome = match client {
        Some(c) => c.txn(ops).await,
        None => match target.connect(addr, timeout).await {
            Ok(c) => {
                let o = c.txn(ops).await;
                *client = Some(c);
                o
            }
            Err(e) => Outcome::Fail(e),
        },
    };
    match outcome {
        Outcome::Ok(reads) if reads.len() == ops.len() => {
            recorder.record(&event("ok", mops_json(ops, Some(&reads)), None));
            Answer::Ok(None)
        }
        Outcome::Ok(reads) => {
            // An answer that does not match the request cannot be recorded
            // as a result: the transaction's fate is unknown.
            let e = format!(
                "the answer had {} results for {} micro-operations",
                reads.len(),
                ops.len()
            );
            recorder.record(&event("info", invoked, Some(e.clone())));
            *client = None;
            Answer::Info(e)
        }
        Outcome::Fail(e) => {
            recorder.record(&event("fail", invoked, Some(e.clone())));
            Answer::Fail(e)
        }
        Outcome::Info(e) => {
            recorder.record(&event("info", invoked, Some(e.clone())));
            *client = None;
            Answer::Info(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn transactions_keep_to_their_shape_and_append_unique_values() {
        let values: Vec<AtomicI64> = (0..5).map(|_| AtomicI64::new(0)).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let shape = TxnShape {
            max_len: 4,
            max_keys: 2,
        };
        let mut seen = std::collections::HashSet::new();
        let mut lens = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let ops = pick_txn(&mut rng, shape, 0.5, &values, |r| (r() * 5.0) as usize);
            lens.insert(ops.len());
            let keys: std::collections::HashSet<&str> = ops.iter().map(|o| o.key()).collect();
            assert!(keys.len() <= 2, "{ops:?}");
            for o in &ops {
                if let MicroOp::Append { key, value } = o {
                    assert!(seen.insert((key.clone(), *value)), "{key} {value} twice");
                }
            }
        }
        assert_eq!(lens, (1..=4).collect());
        assert_eq!(
            mops_json(
                &[
                    MicroOp::Append {
                        key: "k1".into(),
                        value: 3
                    },
                    MicroOp::Read { key: "k1".into() }
                ],
                Some(&[None, Some(vec![1, 3])])
            ),
            json!([["append", "k1", 3], ["r", "k1", [1, 3]]])
        );
        assert!(TxnShape {
            max_len: 2,
            max_keys: 3
        }
        .validate(5)
        .is_err());
        assert!(TxnShape {
            max_len: 0,
            max_keys: 1
        }
        .validate(5)
        .is_err());
        assert!(TxnShape::default().validate(5).is_ok());
    }
}
