//! `faultline check` as a user runs it: exit codes, messages, --json, EDN.

mod common;
use common::faultline;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

const VALID: &str = r#"{"time":1200,"process":0,"type":"invoke","f":"write","key":"k1","value":3,"node":"n1"}
{"time":1500,"process":1,"type":"invoke","f":"read","key":"k1","value":null,"node":"n2"}
{"time":5300,"process":0,"type":"ok","f":"write","key":"k1","value":3,"node":"n1"}
{"time":6100,"process":1,"type":"ok","f":"read","key":"k1","value":3,"node":"n2"}
{"time":7000,"process":"nemesis","type":"info","f":"start-partition","value":[["n1"],["n2","n3"]]}
{"time":7400,"process":2,"type":"invoke","f":"cas","key":"k1","value":[3,4],"node":"n1"}
{"time":1007400,"process":2,"type":"info","f":"cas","key":"k1","value":[3,4],"node":"n1","error":"timeout"}
"#;

const STALE: &str = r#"{"time":1000000000,"process":0,"type":"invoke","f":"write","key":"k3","value":7}
{"time":1010000000,"process":0,"type":"ok","f":"write","key":"k3","value":7}
{"time":1050000000,"process":0,"type":"invoke","f":"write","key":"k3","value":9}
{"time":1100000000,"process":0,"type":"ok","f":"write","key":"k3","value":9}
{"time":1150000000,"process":1,"type":"invoke","f":"read","key":"k3","value":null}
{"time":1204000000,"process":1,"type":"ok","f":"read","key":"k3","value":7}
"#;

#[test]
fn a_linearizable_history_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "h.jsonl", VALID);
    let (code, out, _) = faultline(&["check", &f]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("linearizable"), "{out}");
    let (code, out, _) = faultline(&["check", &f, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["valid"], serde_json::json!(true));
}

#[test]
fn a_stale_read_exits_1_and_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "h.jsonl", STALE);
    let (code, out, _) = faultline(&["check", &f]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("process 1 read k3 = 7 at 1.204 s (line 5), but process 0's write 9 had completed at 1.100 s (line 3), before the read began"),
        "{out}"
    );
    let (code, out, _) = faultline(&["check", &f, "--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["valid"], serde_json::json!(false));
    assert_eq!(v["failures"][0]["key"], "k3");
    let c = &v["failures"][0]["counterexample"];
    assert_eq!(c["kind"], "lost-write");
    let lines: Vec<u64> = c["witness"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![1, 3, 5]);
    assert_eq!(c["witness"][2]["type"], "read");
    assert_eq!(c["witness"][2]["value"], 7);
    assert!(!v["failures"][0]["counterexample"]["timeline"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn bad_input_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "bad.jsonl",
        &format!(
            "{}{{\"time\":9999999,\"process\":5,\"type\":\"ok\"\n",
            VALID
        ),
    );
    let (code, _, err) = faultline(&["check", &f]);
    assert_eq!(code, 2);
    assert!(err.contains("line 8: not valid JSON"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The same line without its newline is what a killed writer leaves:
    // said in one line and skipped; the rest is checked.
    let torn = write(
        &dir,
        "torn.jsonl",
        &format!("{}{{\"time\":9999999,\"process\":5,\"type\":\"ok\"", VALID),
    );
    let (code, _, err) = faultline(&["check", &torn]);
    assert_ne!(code, 2, "{err}");
    assert!(err.contains("line 8: a torn last line"), "{err}");
    let (code, _, err) = faultline(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot open '/nonexistent/history.jsonl'"),
        "{err}"
    );
    let (code, _, _) = faultline(&["check", &f, "--format", "xml"]);
    assert_eq!(code, 2);
}

#[test]
fn jepsen_edn_histories_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "h.edn",
        "{:process 0 :type :invoke :f :write :value 1}\n{:process 0 :type :ok :f :write :value 1}\n\
         {:process 1 :type :invoke :f :read :value nil}\n{:process 1 :type :ok :f :read :value 2}\n",
    );
    let (code, out, _) = faultline(&["check", &f, "--format", "edn"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("read of a value never written: process 1 read register = 2"),
        "{out}"
    );
    assert!(out.contains("but no operation wrote 2"), "{out}");
    assert!(out.contains("witness (1 operations): lines 3"), "{out}");
}

/// Hostile histories: deep nesting, integers beyond 64 bits, huge values,
/// Rust-debug spellings — each one short line, exit 2, never an abort.
#[test]
fn hostile_histories_get_one_short_line() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let cases: Vec<(String, &str, &str)> = vec![
        (
            write(&dir, "deep.edn", &format!("[{{:process 0 :type :invoke :f :write :value {deep}}}]")),
            "edn",
            "nested deeper than 128 levels",
        ),
        // Discards, tags and metadata-like prefixes share the bound.
        (
            write(&dir, "discards.edn", &format!("{}1", "#_".repeat(20_000))),
            "edn",
            "nested deeper than 128 levels",
        ),
        (
            write(&dir, "tags.edn", &format!("{}1", "#t ".repeat(20_000))),
            "edn",
            "nested deeper than 128 levels",
        ),
        (
            write(&dir, "mixed.edn", &format!("{}1", "#_[#t #{".repeat(5_000))),
            "edn",
            "nested deeper than 128 levels",
        ),
        (
            write(&dir, "deep.jsonl", &format!("{{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":{deep}}}\n")),
            "jsonl",
            "recursion limit exceeded",
        ),
        (
            write(&dir, "big.jsonl", "{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":100000000000000000000000}\n"),
            "jsonl",
            "value 100000000000000000000000 is not an integer that fits in 64 bits",
        ),
        (
            write(&dir, "big.edn", "[{:process 0 :type :invoke :f :write :value 100000000000000000000000}]"),
            "edn",
            "integer 100000000000000000000000 does not fit in 64 bits",
        ),
        (
            write(&dir, "str.edn", "[{:process 0 :type :invoke :f :write :value 1} {:process 0 :type :ok :f :write :value \"x\"}]"),
            "edn",
            "value \"x\" is not nil",
        ),
        (
            write(&dir, "huge.jsonl", &format!("{{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"cas\",\"key\":\"k\",\"value\":\"{}\"}}\n", "x".repeat(1_000_000))),
            "jsonl",
            "…",
        ),
        (
            write(&dir, "float.jsonl", "{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":1e23}\n"),
            "jsonl",
            "value 1e23 is not an integer",
        ),
    ];
    for (file, format, want) in cases {
        let (code, _, err) = faultline(&["check", &file, "--format", format]);
        assert_eq!(code, 2, "{file}: {err}");
        assert!(err.contains(want), "{file}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{file}: {err}");
        assert!(err.len() < 300, "{file}: a {}-byte message", err.len());
        for debug in ["Int(", "Float(", "Str(", "Some("] {
            assert!(!err.contains(debug), "{file}: Rust debug text in {err}");
        }
    }
}

/// A history that recorded nothing has proven nothing: exit 3, and it says so.
#[test]
fn an_empty_history_is_unknown_not_linearizable() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "empty.jsonl", "");
    let (code, out, _) = faultline(&["check", &f]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("no client operation"), "{out}");
    let (_, json, _) = faultline(&["check", &f, "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["valid"], "unknown");
}

/// Only this machine is ever contacted: an address elsewhere is refused
/// before anything is sent.
#[test]
fn kv_refuses_an_address_outside_loopback() {
    let (code, _, err) = faultline(&["kv", "--node", "8.8.8.8:80", "status"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("8.8.8.8:80 is not a loopback address"),
        "{err}"
    );
}
