//! List-append transactions in the history format (docs/history-format.md,
//! "Transactions"): lines with `"f": "txn"` whose `value` is the list of
//! micro-operations, `["append", KEY, V]` or `["r", KEY, LIST-or-null]`;
//! invocations and completions paired per process as for registers.

use std::io::{BufRead, Read};

use serde_json::value::RawValue;
use serde_json::Value;

use super::{Columns, Mop, Txn, TxnOutcome};
use crate::edn::Edn;

/// The longest line read (a read of a long list is long).
pub const MAX_LINE: usize = 16 << 20;

/// Whether a history's first client line is a transaction (so the file is
/// for this checker, not the register one). Lines are read whole (up to
/// [`MAX_LINE`]: a transaction of many micro-operations can be a long
/// first line); nemesis lines before it are skipped, at most 10,000 of
/// them. A line that is not JSON ends the search: no.
pub fn starts_with_txn(mut reader: impl BufRead) -> bool {
    let mut buf = Vec::new();
    for _ in 0..10_000 {
        buf.clear();
        let read = std::io::Read::by_ref(&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf);
        if !matches!(read, Ok(n) if n > 0) {
            return false;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&buf) else {
            return false;
        };
        if v["process"] != "nemesis" {
            return v["f"] == "txn";
        }
    }
    false
}

fn mops(v: &Value, line: usize) -> Result<Vec<Mop>, String> {
    let list = v
        .as_array()
        .ok_or_else(|| format!("line {line}: a txn's value must be a list of micro-operations"))?;
    list.iter()
        .map(|m| {
            let parts = m.as_array().filter(|p| p.len() == 3).ok_or_else(|| {
                format!(
                    "line {line}: a micro-operation is [\"append\", KEY, V] or [\"r\", KEY, LIST]"
                )
            })?;
            let key = match &parts[1] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(format!("line {line}: a key is a string or a number")),
            };
            let int = |x: &Value| {
                x.as_i64()
                    .ok_or_else(|| format!("line {line}: {x} is not a 64-bit integer"))
            };
            match parts[0].as_str() {
                Some("append") => Ok(Mop::Append {
                    key,
                    value: int(&parts[2])?,
                }),
                Some("r") => Ok(Mop::Read {
                    key,
                    value: match &parts[2] {
                        Value::Null => None,
                        Value::Array(xs) => Some(xs.iter().map(int).collect::<Result<_, _>>()?),
                        other => {
                            return Err(format!(
                                "line {line}: a read's value is a list or null, not {other}"
                            ))
                        }
                    },
                }),
                _ => Err(format!(
                    "line {line}: a micro-operation is \"append\" or \"r\", not {}",
                    parts[0]
                )),
            }
        })
        .collect()
}

/// How a line ends its transaction, or starts one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// A committed read of `null` (Jepsen's `nil`) saw the key's initial
/// state, the empty list, as Elle reads it (Jepsen's clients answer `nil`
/// for a key never appended); only an invocation's, or an unknown
/// transaction's, `null` means "not known".
fn read_nothing_as_empty(mut ops: Vec<Mop>) -> Vec<Mop> {
    for m in &mut ops {
        if let Mop::Read {
            value: v @ None, ..
        } = m
        {
            *v = Some(Vec::new());
        }
    }
    ops
}

/// Invocations and completions paired per process, as both readers
/// need, into columns: a transaction takes its place at its invocation
/// and its micro-operations at its completion (the completion's when ok,
/// else the invocation's).
#[derive(Default)]
struct Pairing {
    c: Columns,
    /// Each process's outstanding invocation: its transaction, line and
    /// micro-operations.
    open: std::collections::HashMap<u64, (usize, usize, Vec<Mop>)>,
}

impl Pairing {
    fn event(
        &mut self,
        line: usize,
        process: u64,
        time: u64,
        kind: Kind,
        ops: Vec<Mop>,
    ) -> Result<(), String> {
        if kind == Kind::Invoke {
            if self.open.contains_key(&process) {
                return Err(format!(
                    "line {line}: process {process} invoked again before its transaction completed"
                ));
            }
            let t = self.c.begin(process, time, Some(line as u64));
            self.open.insert(process, (t, line, ops));
            return Ok(());
        }
        let (t, _, invoked) = self.open.remove(&process).ok_or_else(|| {
            format!("line {line}: process {process} completed a transaction it never invoked")
        })?;
        let (mops, complete, outcome) = match kind {
            Kind::Ok => (read_nothing_as_empty(ops), Some(time), TxnOutcome::Ok),
            Kind::Fail => (invoked, Some(time), TxnOutcome::Fail),
            Kind::Info | Kind::Invoke => (invoked, None, TxnOutcome::Info),
        };
        self.c.stage(&mops);
        self.c.complete(t, complete, outcome, Some(line as u64));
        Ok(())
    }

    /// The history, the transactions never completed ending unknown.
    fn done(mut self) -> Columns {
        let mut open: Vec<(usize, usize, Vec<Mop>)> = self.open.drain().map(|(_, o)| o).collect();
        open.sort_unstable_by_key(|o| o.0);
        for (t, line, mops) in open {
            self.c.stage(&mops);
            self.c
                .complete(t, None, TxnOutcome::Info, Some(line as u64));
        }
        self.c
    }
}

/// Read a list-append history in columns; errors name the line.
pub fn read_jsonl_columns(reader: impl BufRead) -> Result<Columns, String> {
    read_jsonl_full(reader).map(|h| h.columns)
}

/// Read a list-append history; errors name the line.
pub fn read_jsonl(reader: impl BufRead) -> Result<Vec<Txn>, String> {
    read_jsonl_full(reader).map(|h| h.columns.to_txns())
}

/// A list-append history as a run's report needs it.
#[derive(Debug, Default)]
pub struct TxnHistory {
    /// The transactions, in invocation order.
    pub columns: Columns,
    /// The nemesis events.
    pub nemesis: Vec<crate::history::NemesisEvent>,
    /// A torn last line that was skipped: its line number and length in
    /// bytes (what a writer killed in the middle of a line leaves).
    pub torn_last_line: Option<(usize, usize)>,
    /// Lines read.
    pub events: u64,
}

/// Read a list-append history with its nemesis events; a last line cut
/// short (no newline, not JSON) is skipped and said, as for registers.
pub fn read_jsonl_full(mut reader: impl BufRead) -> Result<TxnHistory, String> {
    let mut out = TxnHistory::default();
    let mut pairing = Pairing::default();
    let mut buf = Vec::new();
    let mut line = 0usize;
    let mut last_time = 0u64;
    loop {
        buf.clear();
        let n = std::io::Read::by_ref(&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("line {}: {e}", line + 1))?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.len() > MAX_LINE {
            return Err(format!("line {line}: longer than {MAX_LINE} bytes"));
        }
        let torn = !buf.ends_with(b"\n");
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(_) if torn => {
                out.torn_last_line = Some((line, buf.len()));
                break;
            }
            Err(_) => return Err(format!("line {line}: not UTF-8")),
        };
        if text.trim().is_empty() {
            continue;
        }
        if let Some(fast) = fast_line(text) {
            out.events += 1;
            in_order(line, fast.time, &mut last_time)?;
            pairing.event(line, fast.process, fast.time, fast.kind, fast.mops)?;
            continue;
        }
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) if torn => {
                out.torn_last_line = Some((line, buf.len()));
                break;
            }
            Err(e) => return Err(format!("line {line}: {e}")),
        };
        out.events += 1;
        let time = v["time"]
            .as_u64()
            .ok_or_else(|| format!("line {line}: no time (an integer of nanoseconds)"))?;
        in_order(line, time, &mut last_time)?;
        if v["process"] == "nemesis" {
            out.nemesis.push(crate::history::NemesisEvent {
                time,
                f: v["f"].as_str().unwrap_or_default().to_string(),
                value: v["value"].clone(),
            });
            continue;
        }
        let process = v["process"]
            .as_u64()
            .ok_or_else(|| format!("line {line}: process is a number or \"nemesis\""))?;
        if v["f"] != "txn" {
            return Err(format!(
                "line {line}: f is {}, but a list-append history has only \"txn\" operations",
                v["f"]
            ));
        }
        let ops = mops(&v["value"], line)?;
        let kind = match v["type"].as_str() {
            Some("invoke") => Kind::Invoke,
            Some("ok") => Kind::Ok,
            Some("fail") => Kind::Fail,
            Some("info") => Kind::Info,
            _ => {
                return Err(format!(
                    "line {line}: type is \"invoke\", \"ok\", \"fail\" or \"info\""
                ))
            }
        };
        pairing.event(line, process, time, kind, ops)?;
    }
    out.columns = pairing.done();
    Ok(out)
}

fn in_order(line: usize, time: u64, last_time: &mut u64) -> Result<(), String> {
    if time < *last_time {
        return Err(format!(
            "line {line}: time goes backwards ({time} after {last_time})"
        ));
    }
    *last_time = time;
    Ok(())
}

/// A client line as [`fast_line`] reads it.
#[derive(serde::Deserialize)]
struct FastLine<'a> {
    time: u64,
    process: u64,
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    f: &'a str,
    #[serde(borrow)]
    value: Vec<(&'a str, &'a RawValue, &'a RawValue)>,
}

/// What a client line says.
struct Fast {
    time: u64,
    process: u64,
    kind: Kind,
    mops: Vec<Mop>,
}

/// A well-formed client line of the usual shape, read without building a
/// JSON value for it (most of the time of reading a big history went
/// there); none for anything else — a nemesis line, a string with escapes,
/// a field of another type, a torn line — which the general reader then
/// reads, or names what is wrong with.
fn fast_line(text: &str) -> Option<Fast> {
    let l: FastLine<'_> = serde_json::from_str(text).ok()?;
    if l.f != "txn" {
        return None;
    }
    let kind = match l.kind {
        "invoke" => Kind::Invoke,
        "ok" => Kind::Ok,
        "fail" => Kind::Fail,
        "info" => Kind::Info,
        _ => return None,
    };
    let mops = l
        .value
        .iter()
        .map(|(f, key, x)| {
            let key = match key.get().as_bytes().first() {
                Some(b'"') => serde_json::from_str::<&str>(key.get()).ok()?.to_string(),
                _ => serde_json::from_str::<serde_json::Number>(key.get())
                    .ok()?
                    .to_string(),
            };
            match *f {
                "append" => Some(Mop::Append {
                    key,
                    value: serde_json::from_str(x.get()).ok()?,
                }),
                "r" => Some(Mop::Read {
                    key,
                    value: serde_json::from_str(x.get()).ok()?,
                }),
                _ => None,
            }
        })
        .collect::<Option<Vec<Mop>>>()?;
    Some(Fast {
        time: l.time,
        process: l.process,
        kind,
        mops,
    })
}

/// Whether [`fast_line`] reads `text` (for the tests).
#[cfg(test)]
pub(crate) fn fast_line_reads(text: &str) -> bool {
    fast_line(text).is_some()
}

fn mops_json(mops: &[Mop], with_reads: bool) -> Value {
    Value::Array(
        mops.iter()
            .map(|m| match m {
                Mop::Append { key, value } => serde_json::json!(["append", key, value]),
                Mop::Read { key, value } => {
                    let v = if with_reads {
                        serde_json::json!(value)
                    } else {
                        Value::Null
                    };
                    serde_json::json!(["r", key, v])
                }
            })
            .collect(),
    )
}

/// Write `txns` as a history file: each transaction's invocation (reads
/// null) and completion, in time order.
pub fn write_jsonl(txns: &[Txn], out: &mut impl std::io::Write) -> std::io::Result<()> {
    write_jsonl_by(
        txns.len(),
        |i| (txns[i].invoke_ns, txns[i].complete_ns),
        |i| std::borrow::Cow::Borrowed(&txns[i]),
        out,
    )
}

/// [`write_jsonl`] of a history in columns, one transaction at a time.
pub fn write_jsonl_columns(c: &Columns, out: &mut impl std::io::Write) -> std::io::Result<()> {
    write_jsonl_by(
        c.len(),
        |i| (c.invoke(i), c.completed(i)),
        |i| std::borrow::Cow::Owned(c.txn(i)),
        out,
    )
}

/// Transaction `i`'s (invocation, completion) times by `times`, the
/// transaction by `txn`.
fn write_jsonl_by<'a>(
    n: usize,
    times: impl Fn(usize) -> (u64, Option<u64>),
    txn: impl Fn(usize) -> std::borrow::Cow<'a, Txn>,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    // (time, 0 = invocation, 1 = completion, index)
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(n * 2);
    for i in 0..n {
        let (invoke, complete) = times(i);
        events.push((invoke, 0, i));
        if let Some(c) = complete {
            events.push((c, 1, i));
        }
    }
    events.sort_unstable();
    for (time, kind, i) in events {
        let t = txn(i);
        let (ty, with_reads) = match (kind, t.outcome) {
            (0, _) => ("invoke", false),
            (_, TxnOutcome::Ok) => ("ok", true),
            (_, TxnOutcome::Fail) => ("fail", false),
            (_, TxnOutcome::Info) => ("info", false),
        };
        let line = serde_json::json!({
            "time": time,
            "process": t.process,
            "type": ty,
            "f": "txn",
            "value": mops_json(&t.mops, with_reads),
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Whether an EDN history's first client operation is a `:txn`.
pub fn is_txn_edn(text: &str) -> bool {
    crate::edn::op_maps(text).is_ok_and(|maps| {
        maps.iter()
            .find(|(_, m)| !matches!(m.get(":process"), Some(Edn::Keyword(k)) if k == "nemesis"))
            .is_some_and(|(_, m)| matches!(m.get(":f"), Some(Edn::Keyword(f)) if f == "txn"))
    })
}

fn edn_key(k: &Edn) -> Result<String, String> {
    match k {
        Edn::Int(i) => Ok(i.to_string()),
        Edn::Str(s) | Edn::Keyword(s) => Ok(s.clone()),
        other => Err(format!(
            "a key is an integer, string or keyword, not {}",
            other.brief()
        )),
    }
}

fn edn_mops(v: Option<&Edn>, line: usize) -> Result<Vec<Mop>, String> {
    let Some(Edn::Vector(items)) = v else {
        return Err(format!(
            "line {line}: a :txn's :value is a vector of micro-operations"
        ));
    };
    items
        .iter()
        .map(|m| {
            let Edn::Vector(p) = m else {
                return Err(format!(
                    "line {line}: a micro-operation is [:append k v] or [:r k list]"
                ));
            };
            let [f, k, x] = p.as_slice() else {
                return Err(format!("line {line}: a micro-operation has three parts"));
            };
            let key = edn_key(k).map_err(|e| format!("line {line}: {e}"))?;
            let int = |x: &Edn| match x {
                Edn::Int(i) => Ok(*i),
                other => Err(format!("line {line}: {} is not an integer", other.brief())),
            };
            match f {
                Edn::Keyword(f) if f == "append" => Ok(Mop::Append {
                    key,
                    value: int(x)?,
                }),
                Edn::Keyword(f) if f == "r" => Ok(Mop::Read {
                    key,
                    value: match x {
                        Edn::Nil => None,
                        Edn::Vector(xs) => Some(xs.iter().map(int).collect::<Result<_, _>>()?),
                        other => {
                            return Err(format!(
                                "line {line}: a read's value is a vector or nil, not {}",
                                other.brief()
                            ))
                        }
                    },
                }),
                other => Err(format!(
                    "line {line}: a micro-operation is :append or :r, not {}",
                    other.brief()
                )),
            }
        })
        .collect()
}

/// Read a Jepsen list-append history in EDN (`{:type :invoke, :f :txn,
/// :value [[:append 1 2] [:r 3 nil]], :process 0, :time 123}` …). Without
/// `:time`, an operation's position stands in for it (real-time order is
/// the order of the file).
pub fn read_edn(text: &str) -> Result<Vec<Txn>, String> {
    read_edn_columns(text).map(|c| c.to_txns())
}

/// [`read_edn`]'s history in columns.
pub fn read_edn_columns(text: &str) -> Result<Columns, String> {
    let maps = crate::edn::op_maps(text).map_err(|e| e.to_string())?;
    let mut pairing = Pairing::default();
    for (pos, (line, m)) in maps.iter().enumerate() {
        let line = *line;
        let process = match m.get(":process") {
            Some(Edn::Int(p)) if *p >= 0 => *p as u64,
            Some(Edn::Keyword(k)) if k == "nemesis" => continue,
            _ => {
                return Err(format!(
                    "line {line}: missing :process (an integer or :nemesis)"
                ))
            }
        };
        if !matches!(m.get(":f"), Some(Edn::Keyword(f)) if f == "txn") {
            return Err(format!(
                "line {line}: :f is not :txn, but a list-append history has only :txn operations"
            ));
        }
        let time = match m.get(":time") {
            Some(Edn::Int(t)) if *t >= 0 => *t as u64,
            _ => pos as u64,
        };
        let ops = edn_mops(m.get(":value"), line)?;
        let kind = match m.get(":type") {
            Some(Edn::Keyword(t)) if t == "invoke" => Kind::Invoke,
            Some(Edn::Keyword(t)) if t == "ok" => Kind::Ok,
            Some(Edn::Keyword(t)) if t == "fail" => Kind::Fail,
            Some(Edn::Keyword(t)) if t == "info" => Kind::Info,
            _ => {
                return Err(format!(
                    "line {line}: :type is :invoke, :ok, :fail or :info"
                ))
            }
        };
        pairing.event(line, process, time, kind, ops)?;
    }
    Ok(pairing.done())
}
