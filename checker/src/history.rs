//! Reading histories: the JSON Lines format of docs/history-format.md,
//! streamed line by line, turned into completed operations grouped by key.
//! (Over 600 lines, a third of them tests: every rule of the format is
//! checked here, with the line it failed on, and the rules read best in one
//! place.)
//!
//! Real-time order is the order of events in the file: an operation's
//! `call` and `ret` are the positions (0-based event numbers) of its invoke
//! and completion lines. Times are kept for reports.

use std::collections::HashMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// A position after every real event: where `info` operations "return".
pub const NEVER: u64 = u64::MAX;

/// A history that does not follow the format.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HistoryError {
    /// A line is wrong; `line` counts from 1.
    #[error("line {line}: {message}")]
    Line {
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("reading the history: {0}")]
    Io(String),
}

fn bad(line: usize, message: impl Into<String>) -> HistoryError {
    HistoryError::Line {
        line,
        message: message.into(),
    }
}

/// At most this many characters of a value from the input appear in a
/// message; a longer one is cut, and says so.
pub const SHOWN_CHARS: usize = 80;

/// `text` cut to [`SHOWN_CHARS`] characters (with `…` when cut).
pub fn brief(text: &str) -> String {
    let mut out: String = text.chars().take(SHOWN_CHARS).collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// A JSON value as JSON text, cut to [`SHOWN_CHARS`]; a whole number too
/// large for 64 bits (which JSON readers hold as a float) is shown whole.
pub fn brief_json(v: &Value) -> String {
    match v {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => match n.as_f64() {
            Some(f) if f.is_finite() && f.fract() == 0.0 => brief(&format!("{f:.0}")),
            _ => brief(&n.to_string()),
        },
        other => brief(&other.to_string()),
    }
}

/// The register operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Read the register.
    Read,
    /// Write the register.
    Write,
    /// Compare-and-set.
    Cas,
    /// A list-append transaction (in a transaction history's statistics;
    /// never checked against the register model).
    Txn,
    /// Take a lock (the key is the lock's name; an ok one's value is its
    /// fencing token, when the system gives one).
    Acquire,
    /// Give a lock back (its value: the token it was taken with, if any).
    Release,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect exactly once.
    Ok,
    /// Certainly did not take effect.
    Fail,
    /// Unknown: may take effect at any time after its invoke, or never.
    Info,
}

/// One operation of one process on one key, from invoke to completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Index of the operation in the whole history (order of invocation).
    pub id: usize,
    /// The logical process.
    pub process: u64,
    /// What it did.
    pub kind: OpKind,
    /// The key.
    pub key: String,
    /// For `write`: the value written; for `cas`: the expected value.
    pub arg: Option<i64>,
    /// For `cas`: the new value.
    pub arg2: Option<i64>,
    /// For an ok `read`: the value read (`None` for null).
    pub result: Option<i64>,
    /// How it ended.
    pub outcome: Outcome,
    /// Event position of the invoke.
    pub call: u64,
    /// Event position of the completion; [`NEVER`] for info.
    pub ret: u64,
    /// Invoke time, nanoseconds.
    pub call_time: u64,
    /// Completion time, nanoseconds (`None` for info with no completion time).
    pub ret_time: Option<u64>,
    /// Line of the invoke in the file, from 1.
    pub line: usize,
    /// The node the client talked to, if recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Op {
    /// The value this operation stores, if it stores one (write, cas).
    pub fn writes(&self) -> Option<i64> {
        match self.kind {
            OpKind::Write => self.arg,
            OpKind::Cas => self.arg2,
            OpKind::Read | OpKind::Txn | OpKind::Acquire | OpKind::Release => None,
        }
    }

    /// A short human description: `write 3`, `read -> 7`, `cas 3->4`.
    pub fn describe(&self) -> String {
        let v = |x: Option<i64>| x.map_or("null".to_string(), |v| v.to_string());
        let base = match self.kind {
            OpKind::Read if self.outcome == Outcome::Ok => format!("read {}", v(self.result)),
            OpKind::Read => "read".to_string(),
            OpKind::Write => format!("write {}", v(self.arg)),
            OpKind::Cas => format!("cas {}->{}", v(self.arg), v(self.arg2)),
            OpKind::Txn => format!("txn on {}", self.key),
            OpKind::Acquire if self.outcome == Outcome::Ok => match self.result {
                Some(t) => format!("acquire (token {t})"),
                None => "acquire".to_string(),
            },
            OpKind::Acquire => "acquire".to_string(),
            OpKind::Release => "release".to_string(),
        };
        match self.outcome {
            Outcome::Info => format!("{base} (info)"),
            Outcome::Fail => format!("{base} (fail)"),
            Outcome::Ok => base,
        }
    }
}

/// A nemesis event, kept for reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NemesisEvent {
    /// Time, nanoseconds.
    pub time: u64,
    /// The event's `f`.
    pub f: String,
    /// The event's `value`.
    pub value: Value,
}

/// A parsed history: operations (fails included) and nemesis events.
#[derive(Debug, Default)]
pub struct History {
    /// Every client operation, in invocation order.
    pub ops: Vec<Op>,
    /// Every nemesis event.
    pub nemesis: Vec<NemesisEvent>,
    /// Number of events read.
    pub events: u64,
    /// A torn last line that was skipped: its line number and length in
    /// bytes (what a writer killed in the middle of a line leaves).
    pub torn_last_line: Option<(usize, usize)>,
}

impl History {
    /// The time of the last client event (a completion, or an invoke that
    /// never completed), ns; 0 for a history without operations.
    pub fn last_op_time(&self) -> u64 {
        self.ops
            .iter()
            .filter_map(|o| o.ret_time.or(Some(o.call_time)))
            .max()
            .unwrap_or(0)
    }

    /// The operations grouped by key (fail operations left out), keys sorted.
    pub fn by_key(&self) -> Vec<(String, Vec<Op>)> {
        let mut map: HashMap<&str, Vec<Op>> = HashMap::new();
        for op in &self.ops {
            if op.outcome != Outcome::Fail {
                map.entry(&op.key).or_default().push(op.clone());
            }
        }
        let mut keys: Vec<(String, Vec<Op>)> =
            map.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    }
}

/// A client event, after its line was validated.
#[derive(Debug, Clone)]
pub struct RawEvent {
    /// Time, nanoseconds.
    pub time: Option<u64>,
    /// The process.
    pub process: u64,
    /// invoke / ok / fail / info.
    pub kind: EventType,
    /// The operation.
    pub f: OpKind,
    /// The key.
    pub key: String,
    /// The value, checked for shape.
    pub value: EventValue,
    /// The node, if given.
    pub node: Option<String>,
}

/// The `type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Started.
    Invoke,
    /// Completed: took effect.
    Ok,
    /// Completed: did not take effect.
    Fail,
    /// Completed: unknown.
    Info,
}

/// A register value of an event, shape-checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventValue {
    /// `null`.
    Null,
    /// One integer.
    Int(i64),
    /// `[expected, new]`.
    Pair(i64, i64),
}

impl std::fmt::Display for EventValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventValue::Null => f.write_str("null"),
            EventValue::Int(i) => write!(f, "{i}"),
            EventValue::Pair(a, b) => write!(f, "[{a}, {b}]"),
        }
    }
}

/// Builds operations from events, checking the rules of docs/history-format.md's Meaning.
#[derive(Default)]
pub struct Builder {
    history: History,
    /// Per process: the index into `history.ops` of its outstanding invoke.
    open: HashMap<u64, usize>,
    /// Processes whose last operation ended `info`: they may not invoke again.
    retired: HashMap<u64, usize>,
    position: u64,
}

impl Builder {
    /// Add a nemesis event.
    pub fn nemesis(&mut self, time: u64, f: String, value: Value) {
        self.position += 1;
        self.history.events += 1;
        self.history.nemesis.push(NemesisEvent { time, f, value });
    }

    /// Add a client event found at `line`.
    pub fn event(&mut self, line: usize, ev: RawEvent) -> Result<(), HistoryError> {
        self.position += 1;
        self.history.events += 1;
        let pos = self.position;
        let time = ev.time.unwrap_or(pos);
        match ev.kind {
            EventType::Invoke => {
                if let Some(&i) = self.open.get(&ev.process) {
                    let prev = &self.history.ops[i];
                    return Err(bad(
                        line,
                        format!(
                        "process {} invokes a {} while its {} from line {} is still outstanding",
                        ev.process, fname(ev.f), fname(prev.kind), prev.line
                    ),
                    ));
                }
                if let Some(&l) = self.retired.get(&ev.process) {
                    return Err(bad(line, format!(
                        "process {} invokes again after its operation from line {l} ended info (an info operation stays outstanding forever; use a fresh process number)",
                        ev.process
                    )));
                }
                let (arg, arg2) = match (ev.f, ev.value) {
                    (OpKind::Read, _) | (OpKind::Acquire, _) => (None, None),
                    (OpKind::Release, EventValue::Null) => (None, None),
                    (OpKind::Release, EventValue::Int(t)) => (Some(t), None),
                    (OpKind::Write, EventValue::Int(v)) => (Some(v), None),
                    (OpKind::Cas, EventValue::Pair(a, b)) => (Some(a), Some(b)),
                    (f, v) => {
                        return Err(bad(
                            line,
                            format!("{} invoke with value {v}: {}", fname(f), expected_shape(f)),
                        ))
                    }
                };
                self.open.insert(ev.process, self.history.ops.len());
                self.history.ops.push(Op {
                    id: self.history.ops.len(),
                    process: ev.process,
                    kind: ev.f,
                    key: ev.key,
                    arg,
                    arg2,
                    result: None,
                    outcome: Outcome::Info,
                    call: pos,
                    ret: NEVER,
                    call_time: time,
                    ret_time: None,
                    line,
                    node: ev.node,
                });
            }
            kind => {
                let Some(i) = self.open.remove(&ev.process) else {
                    return Err(bad(
                        line,
                        format!(
                            "a completion for process {} with no invoke outstanding",
                            ev.process
                        ),
                    ));
                };
                let op = &mut self.history.ops[i];
                if op.kind != ev.f {
                    return Err(bad(
                        line,
                        format!(
                            "completion is a {} but the invoke on line {} was a {}",
                            fname(ev.f),
                            op.line,
                            fname(op.kind)
                        ),
                    ));
                }
                if op.key != ev.key {
                    return Err(bad(
                        line,
                        format!(
                            "completion is for key \"{}\" but the invoke on line {} was for \"{}\"",
                            brief(&ev.key),
                            op.line,
                            brief(&op.key)
                        ),
                    ));
                }
                match kind {
                    EventType::Ok => {
                        match (op.kind, ev.value) {
                            (OpKind::Read, EventValue::Null) => op.result = None,
                            (OpKind::Read, EventValue::Int(v)) => op.result = Some(v),
                            (OpKind::Acquire, EventValue::Null) => op.result = None,
                            (OpKind::Acquire, EventValue::Int(t)) => op.result = Some(t),
                            (OpKind::Release, EventValue::Null) if op.arg.is_none() => {}
                            (OpKind::Release, EventValue::Int(t)) if Some(t) == op.arg => {}
                            (OpKind::Write, EventValue::Int(v)) if Some(v) == op.arg => {}
                            (OpKind::Cas, EventValue::Pair(a, b))
                                if (Some(a), Some(b)) == (op.arg, op.arg2) => {}
                            (f, v) => {
                                return Err(bad(
                                    line,
                                    format!(
                                        "ok {} with value {v}: {}",
                                        fname(f),
                                        match f {
                                            OpKind::Read | OpKind::Acquire =>
                                                "expected an integer or null".to_string(),
                                            _ => format!(
                                                "expected the invoke's value from line {}",
                                                op.line
                                            ),
                                        }
                                    ),
                                ))
                            }
                        }
                        op.outcome = Outcome::Ok;
                        op.ret = pos;
                        op.ret_time = Some(time);
                    }
                    EventType::Fail => {
                        op.outcome = Outcome::Fail;
                        op.ret = pos;
                        op.ret_time = Some(time);
                    }
                    EventType::Info => {
                        op.outcome = Outcome::Info;
                        op.ret_time = Some(time);
                        self.retired.insert(ev.process, line);
                    }
                    EventType::Invoke => unreachable!("handled above"),
                }
            }
        }
        Ok(())
    }

    /// Finish: invokes with no completion are `info`.
    pub fn finish(self) -> History {
        self.history
    }
}

impl OpKind {
    /// Its name in the history file (`read`, `write`, `cas`, `txn`).
    pub fn name(self) -> &'static str {
        fname(self)
    }
}

fn fname(f: OpKind) -> &'static str {
    match f {
        OpKind::Read => "read",
        OpKind::Write => "write",
        OpKind::Cas => "cas",
        OpKind::Txn => "txn",
        OpKind::Acquire => "acquire",
        OpKind::Release => "release",
    }
}

fn expected_shape(f: OpKind) -> &'static str {
    match f {
        OpKind::Read => "expected null",
        OpKind::Write => "expected an integer",
        OpKind::Cas => "expected [expected, new], two integers",
        OpKind::Txn => "expected a list of micro-operations",
        OpKind::Acquire | OpKind::Release => "expected null or an integer (the fencing token)",
    }
}

/// A register value from JSON, or why it is not one.
fn json_value(v: Option<&Value>) -> Result<EventValue, &'static str> {
    match v {
        None | Some(Value::Null) => Ok(EventValue::Null),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(EventValue::Int)
            .ok_or("is not an integer that fits in 64 bits"),
        Some(Value::Array(a)) if a.len() == 2 => match (a[0].as_i64(), a[1].as_i64()) {
            (Some(x), Some(y)) => Ok(EventValue::Pair(x, y)),
            _ => Err("is not a pair of integers that fit in 64 bits"),
        },
        Some(_) => Err("is not null, an integer or a pair of integers"),
    }
}

/// The text of field `field` as it stands in `line` (a JSON number keeps
/// every digit there, where a parsed one may have become a float), cut for
/// a message.
fn raw_field(line: &str, field: &str) -> String {
    serde_json::from_str::<HashMap<&str, &serde_json::value::RawValue>>(line)
        .ok()
        .and_then(|m| m.get(field).map(|r| brief(r.get())))
        .unwrap_or_else(|| "(unreadable)".into())
}

/// The longest line a history may have: an operation is a few hundred
/// bytes; a line without end (a link to `/dev/zero`) stops here instead of
/// filling memory.
pub const MAX_LINE: usize = 1 << 20;

/// `read_until(b'\n')`, but holding at most `limit + 1` bytes: a longer
/// line leaves `buf` over `limit` and is not read further.
fn read_line_bounded(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(consumed);
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let take = take.min(limit + 1 - buf.len());
        buf.extend_from_slice(&avail[..take]);
        r.consume(take);
        consumed += take;
        if done || buf.len() > limit {
            return Ok(consumed);
        }
    }
}

/// Read a JSON Lines history (docs/history-format.md) from `reader`, one line at a time.
pub fn read_jsonl(reader: impl BufRead) -> Result<History, HistoryError> {
    let mut b = Builder::default();
    let mut last_time: Option<u64> = None;
    let mut saw_blank = None;
    let mut reader = reader;
    let mut raw = Vec::new();
    for n in 1.. {
        raw.clear();
        let read = read_line_bounded(&mut reader, &mut raw, MAX_LINE)
            .map_err(|e| HistoryError::Io(format!("line {n}: {e}")))?;
        if read == 0 {
            break;
        }
        if raw.len() > MAX_LINE {
            return Err(bad(
                n,
                format!("longer than {MAX_LINE} bytes (no operation line is)"),
            ));
        }
        let complete = raw.last() == Some(&b'\n');
        let text = std::str::from_utf8(&raw).ok();
        // A last line without its newline that does not parse is what a
        // writer killed in the middle of a line leaves: skip it and say so.
        if !complete && text.is_none_or(|t| serde_json::from_str::<Value>(t).is_err()) {
            b.history.torn_last_line = Some((n, raw.len()));
            break;
        }
        let line = text
            .ok_or_else(|| {
                HistoryError::Io(format!("line {n}: stream did not contain valid UTF-8"))
            })?
            .trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            saw_blank = Some(n);
            continue;
        }
        if let Some(blank) = saw_blank {
            return Err(bad(
                blank,
                "blank line in the middle of the history (only one at the end is allowed)",
            ));
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| bad(n, format!("not valid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| bad(n, "not a JSON object"))?;
        let time = match obj.get("time") {
            Some(t) => t.as_u64().ok_or_else(|| {
                bad(
                    n,
                    format!("\"time\" {} is not a non-negative integer", brief_json(t)),
                )
            })?,
            None => return Err(bad(n, "missing field \"time\"")),
        };
        if let Some(prev) = last_time {
            if time < prev {
                return Err(bad(n, format!("\"time\" {time} is earlier than the previous line's {prev}; lines must be in time order")));
            }
        }
        last_time = Some(time);
        let ty = match obj.get("type").and_then(Value::as_str) {
            Some("invoke") => EventType::Invoke,
            Some("ok") => EventType::Ok,
            Some("fail") => EventType::Fail,
            Some("info") => EventType::Info,
            Some(other) => {
                return Err(bad(
                    n,
                    format!(
                        "\"type\" \"{}\" is not invoke, ok, fail or info",
                        brief(other)
                    ),
                ))
            }
            None => return Err(bad(n, "missing field \"type\" (or not a string)")),
        };
        let f = obj
            .get("f")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(n, "missing field \"f\" (or not a string)"))?;
        let process = match obj.get("process") {
            Some(Value::String(s)) if s == "nemesis" => {
                b.nemesis(
                    time,
                    f.to_string(),
                    obj.get("value").cloned().unwrap_or(Value::Null),
                );
                continue;
            }
            Some(p) => p.as_u64().ok_or_else(|| {
                bad(
                    n,
                    format!(
                        "\"process\" {} is not a non-negative integer or \"nemesis\"",
                        brief_json(p)
                    ),
                )
            })?,
            None => return Err(bad(n, "missing field \"process\"")),
        };
        let f = match f {
            "read" => OpKind::Read,
            "write" => OpKind::Write,
            "cas" => OpKind::Cas,
            "acquire" => OpKind::Acquire,
            "release" => OpKind::Release,
            other => {
                return Err(bad(
                    n,
                    format!(
                        "\"f\" \"{}\" is not read, write, cas, acquire or release",
                        brief(other)
                    ),
                ))
            }
        };
        let key = match obj.get("key") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(bad(
                    n,
                    format!("\"key\" {} is not a string", brief_json(other)),
                ))
            }
            None => return Err(bad(n, "missing field \"key\"")),
        };
        if !obj.contains_key("value") {
            return Err(bad(n, "missing field \"value\""));
        }
        let value = json_value(obj.get("value"))
            .map_err(|why| bad(n, format!("value {} {why}", raw_field(line, "value"))))?;
        let node = obj.get("node").and_then(Value::as_str).map(str::to_string);
        b.event(
            n,
            RawEvent {
                time: Some(time),
                process,
                kind: ty,
                f,
                key,
                value,
                node,
            },
        )?;
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<History, HistoryError> {
        read_jsonl(s.as_bytes())
    }

    #[test]
    fn the_example_of_history_md_parses() {
        let h = parse(r#"{"time":1200,"process":0,"type":"invoke","f":"write","key":"k1","value":3,"node":"n1"}
{"time":1500,"process":1,"type":"invoke","f":"read","key":"k1","value":null,"node":"n2"}
{"time":5300,"process":0,"type":"ok","f":"write","key":"k1","value":3,"node":"n1"}
{"time":6100,"process":1,"type":"ok","f":"read","key":"k1","value":3,"node":"n2"}
{"time":7000,"process":"nemesis","type":"info","f":"start-partition","value":[["n1"],["n2","n3"]]}
{"time":7400,"process":2,"type":"invoke","f":"cas","key":"k1","value":[3,4],"node":"n1"}
{"time":1007400,"process":2,"type":"info","f":"cas","key":"k1","value":[3,4],"node":"n1","error":"timeout"}
"#)
        .unwrap();
        assert_eq!(h.ops.len(), 3);
        assert_eq!(h.nemesis.len(), 1);
        assert_eq!(h.ops[1].result, Some(3));
        assert_eq!(h.ops[2].outcome, Outcome::Info);
        assert_eq!(h.ops[2].ret, NEVER);
    }

    #[test]
    fn malformed_lines_name_the_line_and_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("{\"time\":1", "line 1: not valid JSON"),
            (r#"{"process":0,"type":"invoke","f":"read","key":"k","value":null}"#, "missing field \"time\""),
            (r#"{"time":1,"process":0,"type":"invoke","f":"read","value":null}"#, "missing field \"key\""),
            (r#"{"time":1,"process":0,"type":"ok","f":"read","key":"k","value":1}"#, "no invoke outstanding"),
            (
                "{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"value\":null}\n{\"time\":2,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"value\":null}",
                "line 2: process 0 invokes a read while its read from line 1 is still outstanding",
            ),
            (r#"{"time":1,"process":0,"type":"invoke","f":"cas","key":"k","value":3}"#, "expected [expected, new]"),
            (r#"{"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":"x"}"#, "not null, an integer"),
            (r#"{"time":1,"process":-1,"type":"invoke","f":"write","key":"k","value":1}"#, "\"process\" -1"),
            (r#"{"time":1,"process":0,"type":"begin","f":"write","key":"k","value":1}"#, "\"type\" \"begin\""),
            (r#"{"time":1,"process":0,"type":"invoke","f":"append","key":"k","value":1}"#, "\"f\" \"append\""),
        ];
        for (text, want) in cases {
            // Each line ends with its newline: without one, a last line
            // that does not parse is a torn write, skipped (tested below).
            let text = format!("{text}\n");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}\n  gave: {err}\n  want: {want}");
        }
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_said() {
        let h = parse("{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"value\":null}\n{\"time\":1").unwrap();
        assert_eq!(h.torn_last_line, Some((2, 9)));
        assert_eq!(h.ops.len(), 1);
        // A complete last line without its newline is kept.
        let h = parse("{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"value\":null}").unwrap();
        assert_eq!(h.torn_last_line, None);
        assert_eq!(h.ops.len(), 1);
    }

    #[test]
    fn an_info_process_may_not_invoke_again() {
        let err = parse("{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":1}\n{\"time\":2,\"process\":0,\"type\":\"info\",\"f\":\"write\",\"key\":\"k\",\"value\":1}\n{\"time\":3,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":2}\n").unwrap_err();
        assert!(err.to_string().starts_with("line 3:"), "{err}");
    }

    #[test]
    fn one_blank_line_at_the_end_is_allowed() {
        assert!(parse("{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"value\":null}\n\n").is_ok());
        assert!(parse("\n{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"value\":null}\n").is_err());
    }
}
