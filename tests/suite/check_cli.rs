//! `faultline check` as a user runs it: exit codes, messages, --json, EDN.

use crate::common;
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
    // A model for transactions, asked of registers: refused, not ignored.
    let (code, _, err) = faultline(&["check", &f, "--consistency", "serializable"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--consistency serializable is for list-append histories")
            && err.trim().lines().count() == 1,
        "{err}"
    );
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

fn mkfifo(p: &std::path::Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn campaign_json(dir: &str) -> String {
    format!(
        r#"{{"name":"c","settings":[{{"name":"s","description":"d"}}],"faults":["f"],"runs":[{{"dir":{dir},"setting":"s","fault":"f","repeat":1,"seed":1}}]}}"#
    )
}

/// `report` writes only inside the store: a run directory in
/// `campaign.json` that is not a plain name, or that is a link, is refused
/// in one line and nothing is written where it points.
#[test]
fn report_never_writes_outside_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let camp = store.join("c");
    std::fs::create_dir_all(&camp).unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let abs = dir.path().join("abs");
    for bad in [
        "\"../../escaped\"".to_string(),
        serde_json::to_string(abs.to_str().unwrap()).unwrap(),
        "\"..\"".to_string(),
    ] {
        std::fs::write(camp.join("campaign.json"), campaign_json(&bad)).unwrap();
        let (code, out, err) = common::faultline_in(
            dir.path(),
            &["report", camp.to_str().unwrap()],
            std::time::Duration::from_secs(60),
        );
        assert_eq!(code, 2, "{bad}: {out}{err}");
        assert!(err.contains("not a plain name"), "{bad}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(!dir.path().join("escaped").exists() && !abs.exists());
    // A run directory that is a link out of the store.
    std::fs::write(outside.join("history.jsonl"), "").unwrap();
    std::os::unix::fs::symlink(&outside, camp.join("r1")).unwrap();
    std::fs::write(camp.join("campaign.json"), campaign_json("\"r1\"")).unwrap();
    let (code, out, err) = common::faultline_in(
        dir.path(),
        &["report", camp.to_str().unwrap()],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("is a link"), "{err}");
    assert!(!outside.join("index.html").exists());
}

/// `report` and `compare` read store files as regular files with a bound:
/// a FIFO, a link to /dev/zero or a huge sparse file is one line, never a
/// hang or an allocation of its size.
#[test]
fn report_and_compare_refuse_fifos_devices_and_huge_files() {
    let dir = tempfile::tempdir().unwrap();
    let camp = dir.path().join("c");
    let run = camp.join("r1");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(camp.join("campaign.json"), campaign_json("\"r1\"")).unwrap();
    let limit = std::time::Duration::from_secs(60);
    let results = run.join("results.json");
    let history = run.join("history.jsonl");
    std::fs::write(&history, "").unwrap();
    type Make<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Make)> = vec![
        ("FIFO", Box::new(|| mkfifo(&results))),
        (
            "character device",
            Box::new(|| std::os::unix::fs::symlink("/dev/zero", &results).unwrap()),
        ),
        (
            "bytes, over the",
            Box::new(|| {
                std::fs::File::create(&results)
                    .unwrap()
                    .set_len(500_000_000)
                    .unwrap()
            }),
        ),
    ];
    for (what, make) in cases {
        let _ = std::fs::remove_file(&results);
        make();
        let (code, out, err) = common::faultline_in(
            dir.path(),
            &["compare", camp.to_str().unwrap(), camp.to_str().unwrap()],
            limit,
        );
        assert_eq!(code, 2, "{what}: {out}{err}");
        assert!(err.contains(what), "{what}: {err}");
    }
    // A history that never ends: refused as a device, not read into memory.
    let _ = std::fs::remove_file(&results);
    std::fs::remove_file(&history).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &history).unwrap();
    let (code, out, err) =
        common::faultline_in(dir.path(), &["report", run.to_str().unwrap()], limit);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("character device"), "{err}");
    std::fs::remove_file(&history).unwrap();
    mkfifo(&history);
    let (code, out, err) =
        common::faultline_in(dir.path(), &["report", run.to_str().unwrap()], limit);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("FIFO"), "{err}");
}

/// A history of operations none of which completed ok proves nothing:
/// undecided (exit 3), never linearizable.
#[test]
fn a_history_where_nothing_succeeded_is_undecided() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "info.jsonl",
        r#"{"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":1}
{"time":2,"process":0,"type":"info","f":"write","key":"k","value":1}
"#,
    );
    let (code, out, _) = faultline(&["check", &f]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("UNKNOWN"), "{out}");
}

/// A history of list-append transactions goes to the Elle-style checker:
/// a correct store's history is valid; a stale read planted into it is
/// named (G-single-realtime) and exits 1 under strict serializability,
/// 0 under serializability; a malformed micro-operation is one line, exit 2.
#[test]
fn list_append_histories_are_checked_against_the_model_asked() {
    use faultline_checker::elle::{gen, history};
    let dir = tempfile::tempdir().unwrap();
    let shape = gen::Shape {
        txns: 2_000,
        keys: 10,
        max_mops: 4,
        processes: 8,
        appends: 0.5,
        max_writes_per_key: 32,
    };
    let mut h = gen::correct(shape, 3);
    let mut text = Vec::new();
    history::write_jsonl(&h, &mut text).unwrap();
    let f = write(&dir, "append.jsonl", &String::from_utf8(text).unwrap());
    let (code, out, err) = faultline(&["check", &f]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("2001 transactions: strict-serializable"),
        "{out}"
    );

    gen::plant(&mut h, "G-single-realtime");
    let mut text = Vec::new();
    history::write_jsonl(&h, &mut text).unwrap();
    let f = write(&dir, "stale.jsonl", &String::from_utf8(text).unwrap());
    let (code, out, err) = faultline(&["check", &f]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("NOT strict-serializable: G-single-realtime ×1")
            && out.contains("without 1, which T"),
        "{out}"
    );
    let (code, out, _) = faultline(&["check", &f, "--consistency", "serializable"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = faultline(&["check", &f, "--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["anomalies"][0]["class"], "G-single-realtime", "{v}");
    assert_eq!(v["consistency"], "strict-serializable", "{v}");
    // The lines named are the planted transactions' own.
    let text = std::fs::read_to_string(&f).unwrap();
    let lines = v["anomalies"][0]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{v}");
    for l in lines {
        let at = l.as_u64().unwrap() as usize;
        let line = text.lines().nth(at - 1).unwrap();
        assert!(line.contains("planted-x"), "line {at}: {line}");
    }

    let bad = write(
        &dir,
        "bad.jsonl",
        "{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"put\",\"x\",1]]}\n",
    );
    let (code, _, err) = faultline(&["check", &bad]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("line 1: a micro-operation is \"append\" or \"r\"")
            && err.trim().lines().count() == 1,
        "{err}"
    );

    // A value appended to a key by two transactions: the order cannot be
    // read off the lists, so there is no verdict (as Elle refuses it).
    let line = |p: u32, t: u32, kind: &str, mop: &str| {
        format!("{{\"time\":{t},\"process\":{p},\"type\":\"{kind}\",\"f\":\"txn\",\"value\":[{mop}]}}\n")
    };
    let text = [
        line(0, 1, "invoke", "[\"append\",\"x\",1]"),
        line(1, 1, "invoke", "[\"append\",\"x\",1]"),
        line(0, 2, "ok", "[\"append\",\"x\",1]"),
        line(1, 2, "ok", "[\"append\",\"x\",1]"),
        line(2, 3, "invoke", "[\"r\",\"x\",null]"),
        line(2, 4, "ok", "[\"r\",\"x\",[1]]"),
    ]
    .concat();
    let twice = write(&dir, "twice.jsonl", &text);
    let (code, out, err) = faultline(&["check", &twice]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("value 1 appended to key x by two transactions (lines 3 and 4)")
            && err.trim().lines().count() == 1,
        "{err}"
    );
}
