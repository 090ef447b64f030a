//! Jepsen/Knossos histories in EDN: a sequence (or one vector) of maps with
//! `:type`, `:f`, `:value`, `:process`, optional `:time` and `:index`.
//! A single register, or independent keys given as `[key value]` tuples.
//!
//! The reader covers the EDN that Jepsen writes: maps, vectors, lists, sets,
//! keywords, symbols, strings, integers, floats, `nil`, booleans, comments,
//! `#_` discards and tagged literals (the tag is dropped).

use std::collections::BTreeMap;

use crate::history::{Builder, EventType, EventValue, History, HistoryError, OpKind, RawEvent};

/// An EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (kept for completeness).
    Float(f64),
    /// A string.
    Str(String),
    /// `:keyword` (without the colon).
    Keyword(String),
    /// A symbol.
    Symbol(String),
    /// `[...]` or `(...)`.
    Vector(Vec<Edn>),
    /// `#{...}`.
    Set(Vec<Edn>),
    /// `{...}`, with keys rendered to strings for lookup.
    Map(BTreeMap<String, Edn>),
}

/// Reads EDN values one at a time, tracking line numbers.
pub struct Reader<'a> {
    s: &'a [u8],
    at: usize,
    line: usize,
    depth: usize,
}

fn key_string(k: &Edn) -> String {
    match k {
        Edn::Keyword(s) => format!(":{s}"),
        Edn::Str(s) => s.clone(),
        Edn::Int(i) => i.to_string(),
        other => other.brief(),
    }
}

/// How deeply collections may nest in an EDN history (a register history
/// needs three levels; the bound keeps a hostile file from exhausting the
/// stack).
pub const MAX_DEPTH: usize = 128;

impl Edn {
    /// The value written back as EDN, cut to
    /// [`crate::history::SHOWN_CHARS`] characters for a message.
    pub fn brief(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        crate::history::brief(&out)
    }

    fn write(&self, out: &mut String) {
        use std::fmt::Write as _;
        // Far enough for a message; stops a huge value from being rendered whole.
        if out.len() > 2 * crate::history::SHOWN_CHARS {
            return;
        }
        let seq =
            |out: &mut String, open: &str, items: &mut dyn Iterator<Item = &Edn>, close: &str| {
                out.push_str(open);
                for (i, v) in items.enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write(out);
                    if out.len() > 2 * crate::history::SHOWN_CHARS {
                        break;
                    }
                }
                out.push_str(close);
            };
        match self {
            Edn::Nil => out.push_str("nil"),
            Edn::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Edn::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Edn::Float(f) => {
                let _ = write!(out, "{f}");
            }
            Edn::Str(s) => {
                let _ = write!(out, "{s:?}");
            }
            Edn::Keyword(k) => {
                let _ = write!(out, ":{k}");
            }
            Edn::Symbol(s) => out.push_str(s),
            Edn::Vector(v) => seq(out, "[", &mut v.iter(), "]"),
            Edn::Set(v) => seq(out, "#{", &mut v.iter(), "}"),
            Edn::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push(' ');
                    v.write(out);
                    if out.len() > 2 * crate::history::SHOWN_CHARS {
                        break;
                    }
                }
                out.push('}');
            }
        }
    }
}

impl<'a> Reader<'a> {
    /// A reader over `text`.
    pub fn new(text: &'a str) -> Self {
        Reader {
            s: text.as_bytes(),
            at: 0,
            line: 1,
            depth: 0,
        }
    }

    /// The current line, from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    fn err(&self, m: impl Into<String>) -> HistoryError {
        HistoryError::Line {
            line: self.line,
            message: m.into(),
        }
    }

    fn skip_ws(&mut self) {
        while self.at < self.s.len() {
            match self.s[self.at] {
                b'\n' => {
                    self.line += 1;
                    self.at += 1;
                }
                b' ' | b'\t' | b'\r' | b',' => self.at += 1,
                b';' => {
                    while self.at < self.s.len() && self.s[self.at] != b'\n' {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// The next top-level value, or `None` at the end.
    pub fn next_value(&mut self) -> Result<Option<Edn>, HistoryError> {
        self.skip_ws();
        if self.at >= self.s.len() {
            return Ok(None);
        }
        self.value().map(Some)
    }

    /// One value. Every recursive path of the reader (collections, tagged
    /// literals, `#_` discards) goes through here, so one depth bound
    /// keeps the stack small whatever the input.
    fn value(&mut self) -> Result<Edn, HistoryError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!(
                "values nested deeper than {MAX_DEPTH} levels (collections, tags and #_ discards count)"
            )));
        }
        self.depth += 1;
        let out = self.value_at_depth();
        self.depth -= 1;
        out
    }

    fn value_at_depth(&mut self) -> Result<Edn, HistoryError> {
        self.skip_ws();
        let Some(&c) = self.s.get(self.at) else {
            return Err(self.err("unexpected end of input"));
        };
        match c {
            b'{' => {
                self.at += 1;
                let items = self.seq(b'}')?;
                if items.len() % 2 != 0 {
                    return Err(self.err("a map with an odd number of forms"));
                }
                let mut m = BTreeMap::new();
                for pair in items.chunks(2) {
                    m.insert(key_string(&pair[0]), pair[1].clone());
                }
                Ok(Edn::Map(m))
            }
            b'[' => {
                self.at += 1;
                Ok(Edn::Vector(self.seq(b']')?))
            }
            b'(' => {
                self.at += 1;
                Ok(Edn::Vector(self.seq(b')')?))
            }
            b'#' => {
                self.at += 1;
                match self.s.get(self.at) {
                    Some(b'{') => {
                        self.at += 1;
                        Ok(Edn::Set(self.seq(b'}')?))
                    }
                    Some(b'_') => {
                        self.at += 1;
                        self.value()?;
                        self.value()
                    }
                    _ => {
                        // A tagged literal: read the tag symbol, keep the value.
                        self.token();
                        self.value()
                    }
                }
            }
            b'"' => self.string(),
            b':' => {
                self.at += 1;
                let t = self.token();
                if t.is_empty() {
                    return Err(self.err("an empty keyword"));
                }
                Ok(Edn::Keyword(t))
            }
            b'}' | b']' | b')' => Err(self.err(format!("unexpected '{}'", c as char))),
            _ => {
                let t = self.token();
                if t.is_empty() {
                    return Err(self.err(format!("unexpected character '{}'", c as char)));
                }
                Ok(match t.as_str() {
                    "nil" => Edn::Nil,
                    "true" => Edn::Bool(true),
                    "false" => Edn::Bool(false),
                    _ => {
                        let num = t.trim_end_matches('N').trim_end_matches('M');
                        let digits = num.strip_prefix(['-', '+']).unwrap_or(num);
                        if let Ok(i) = num.parse::<i64>() {
                            Edn::Int(i)
                        } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(self.err(format!(
                                "integer {} does not fit in 64 bits",
                                crate::history::brief(num)
                            )));
                        } else if let Ok(f) = num.parse::<f64>() {
                            Edn::Float(f)
                        } else {
                            Edn::Symbol(t)
                        }
                    }
                })
            }
        }
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Edn>, HistoryError> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            match self.s.get(self.at) {
                None => {
                    return Err(
                        self.err(format!("unclosed collection: expected '{}'", close as char))
                    )
                }
                Some(&c) if c == close => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(_) => out.push(self.value()?),
            }
        }
    }

    fn token(&mut self) -> String {
        let start = self.at;
        while self.at < self.s.len() {
            match self.s[self.at] {
                b' ' | b'\t' | b'\r' | b'\n' | b',' | b'{' | b'}' | b'[' | b']' | b'(' | b')'
                | b'"' | b';' => break,
                _ => self.at += 1,
            }
        }
        String::from_utf8_lossy(&self.s[start..self.at]).into_owned()
    }

    fn string(&mut self) -> Result<Edn, HistoryError> {
        self.at += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.at) {
            self.at += 1;
            match c {
                b'"' => return Ok(Edn::Str(String::from_utf8_lossy(&out).into_owned())),
                b'\\' => {
                    let Some(&e) = self.s.get(self.at) else { break };
                    self.at += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                b'\n' => {
                    self.line += 1;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        Err(self.err("unterminated string"))
    }
}

fn int_or_nil(v: &Edn) -> Option<EventValue> {
    match v {
        Edn::Nil => Some(EventValue::Null),
        Edn::Int(i) => Some(EventValue::Int(*i)),
        Edn::Vector(p) if p.len() == 2 => match (&p[0], &p[1]) {
            (Edn::Int(a), Edn::Int(b)) => Some(EventValue::Pair(*a, *b)),
            _ => None,
        },
        _ => None,
    }
}

fn edn_key(k: &Edn) -> String {
    match k {
        Edn::Int(i) => i.to_string(),
        Edn::Str(s) => s.clone(),
        Edn::Keyword(s) => s.clone(),
        Edn::Symbol(s) => s.clone(),
        other => other.brief(),
    }
}

/// Whether the history uses independent `[key value]` tuples: any write or
/// read completion whose value is a vector.
fn independent(ops: &[(usize, BTreeMap<String, Edn>)]) -> bool {
    ops.iter().any(|(_, m)| {
        matches!(m.get(":f"), Some(Edn::Keyword(f)) if f == "write" || f == "read")
            && matches!(m.get(":value"), Some(Edn::Vector(_)))
    })
}

/// One operation map of an EDN history and its line.
pub(crate) type OpMap = (usize, BTreeMap<String, Edn>);

/// The operation maps of an EDN history (top-level maps, or one vector of
/// them), each with its line.
pub(crate) fn op_maps(text: &str) -> Result<Vec<OpMap>, HistoryError> {
    let mut r = Reader::new(text);
    let mut maps: Vec<OpMap> = Vec::new();
    loop {
        let line = {
            r.skip_ws();
            r.line()
        };
        let Some(v) = r.next_value()? else { break };
        match v {
            Edn::Map(m) => maps.push((line, m)),
            Edn::Vector(items) => {
                for item in items {
                    match item {
                        Edn::Map(m) => maps.push((line, m)),
                        other => {
                            return Err(HistoryError::Line {
                                line,
                                message: format!(
                                    "expected an operation map, found {}",
                                    other.brief()
                                ),
                            })
                        }
                    }
                }
            }
            other => {
                return Err(HistoryError::Line {
                    line,
                    message: format!("expected an operation map, found {}", other.brief()),
                })
            }
        }
    }
    Ok(maps)
}

/// Read a Jepsen EDN history.
pub fn read_edn(text: &str) -> Result<History, HistoryError> {
    let maps = op_maps(text)?;
    let indep = independent(&maps);
    let mut b = Builder::default();
    for (line, m) in maps {
        let bad = |message: String| HistoryError::Line { line, message };
        let ty = match m.get(":type") {
            Some(Edn::Keyword(t)) => match t.as_str() {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                "info" => EventType::Info,
                other => {
                    return Err(bad(format!(
                        ":type :{other} is not :invoke, :ok, :fail or :info"
                    )))
                }
            },
            _ => return Err(bad("missing :type".into())),
        };
        let time = match m.get(":time") {
            Some(Edn::Int(t)) if *t >= 0 => Some(*t as u64),
            _ => None,
        };
        let f = match m.get(":f") {
            Some(Edn::Keyword(f)) | Some(Edn::Symbol(f)) | Some(Edn::Str(f)) => f.clone(),
            _ => return Err(bad("missing :f".into())),
        };
        let process = match m.get(":process") {
            Some(Edn::Int(p)) if *p >= 0 => *p as u64,
            Some(Edn::Keyword(k)) if k == "nemesis" => {
                b.nemesis(
                    time.unwrap_or(0),
                    f,
                    serde_json::Value::String(m.get(":value").map_or("nil".into(), Edn::brief)),
                );
                continue;
            }
            _ => return Err(bad("missing :process (an integer or :nemesis)".into())),
        };
        let kind = match f.as_str() {
            "read" => OpKind::Read,
            "write" => OpKind::Write,
            "cas" => OpKind::Cas,
            "acquire" => OpKind::Acquire,
            "release" => OpKind::Release,
            other => {
                return Err(bad(format!(
                    ":f :{other} is not :read, :write, :cas, :acquire or :release"
                )))
            }
        };
        let raw = m.get(":value").cloned().unwrap_or(Edn::Nil);
        let (key, value) = if indep {
            match raw {
                Edn::Vector(t) if t.len() == 2 => (edn_key(&t[0]), t[1].clone()),
                other => {
                    return Err(bad(format!(
                        "expected a [key value] tuple in an independent-keys history, found {}",
                        other.brief()
                    )))
                }
            }
        } else {
            let name = match kind {
                OpKind::Acquire | OpKind::Release => "lock",
                _ => "register",
            };
            (name.to_string(), raw)
        };
        let value = match (kind, ty, &value) {
            // Jepsen leaves the value of a failed or crashed op as the invoke's.
            (OpKind::Read | OpKind::Acquire, EventType::Invoke, _) => EventValue::Null,
            // A Knossos mutex history's values are nil; anything else is not
            // a token faultline can use.
            (OpKind::Acquire | OpKind::Release, _, v) => int_or_nil(v)
                .filter(|x| !matches!(x, EventValue::Pair(..)))
                .unwrap_or(EventValue::Null),
            (_, EventType::Info | EventType::Fail, v) => int_or_nil(v).unwrap_or(EventValue::Null),
            (_, _, v) => int_or_nil(v).ok_or_else(|| {
                bad(format!(
                    "value {} is not nil, an integer or [expected new]",
                    v.brief()
                ))
            })?,
        };
        b.event(
            line,
            RawEvent {
                time,
                process,
                kind: ty,
                f: kind,
                key,
                value,
                node: None,
            },
        )?;
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_knossos_style_single_register_history() {
        let h = read_edn(
            r#"[{:process 0, :type :invoke, :f :write, :value 1}
                {:process 1, :type :invoke, :f :read, :value nil}
                {:process 0, :type :ok, :f :write, :value 1}
                {:process 1, :type :ok, :f :read, :value 1}
                {:process :nemesis, :type :info, :f :start, :value nil}
                {:process 2, :type :invoke, :f :cas, :value [1 2]}
                {:process 2, :type :info, :f :cas, :value [1 2]}]"#,
        )
        .unwrap();
        assert_eq!(h.ops.len(), 3);
        assert_eq!(h.ops[1].result, Some(1));
        assert_eq!(h.ops[2].arg2, Some(2));
        assert_eq!(h.nemesis.len(), 1);
    }

    #[test]
    fn independent_keys_and_one_map_per_line() {
        let h = read_edn(
            "{:type :invoke, :f :write, :value [3 5], :process 0, :time 10, :index 0}\n\
             {:type :ok, :f :write, :value [3 5], :process 0, :time 20, :index 1}\n\
             ; a comment\n\
             {:type :invoke, :f :cas, :value [4 [1 2]], :process 1, :time 30, :index 2}\n\
             {:type :fail, :f :cas, :value [4 [1 2]], :process 1, :time 40, :index 3}\n",
        )
        .unwrap();
        assert_eq!(h.ops[0].key, "3");
        assert_eq!(h.ops[1].key, "4");
        assert_eq!(h.ops[1].arg, Some(1));
    }

    #[test]
    fn errors_name_the_line() {
        let err = read_edn("{:type :invoke :f :write :value 1 :process 0}\n{:type :ok :f :write :value \"x\" :process 0}").unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
        let err = read_edn("{:type :invoke :f :write").unwrap_err();
        assert!(err.to_string().contains("unclosed"), "{err}");
    }
}
