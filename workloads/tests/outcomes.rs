//! The workload against stand-in nodes: a healthy one gives a linearizable
//! history of ok operations; one that answers too late, or hangs up after
//! receiving, gives `info`, never `fail`.

use std::time::{Duration, Instant};

use faultline_checker::{check_history, read_jsonl, Options, Verdict};
use faultline_workloads::fake::{serve, Behavior};
use faultline_workloads::recorder::Recorder;
use faultline_workloads::register::{RegisterConfig, RegisterWorkload};

async fn run(behavior: Behavior, secs: f64) -> (String, faultline_checker::History) {
    let addr = serve(behavior).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let rec = Recorder::create(&path, Instant::now()).unwrap();
    let config = RegisterConfig {
        keys: 3,
        concurrency: 4,
        rate: 400.0,
        timeout: Duration::from_millis(200),
        ..RegisterConfig::default()
    };
    let w = RegisterWorkload::new(config, vec![("n1".into(), addr)], rec.clone());
    w.run(Instant::now() + Duration::from_secs_f64(secs)).await;
    rec.finish().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let h = read_jsonl(text.as_bytes()).unwrap();
    (text, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_server_yields_a_linearizable_history() {
    let (_, h) = run(Behavior::Immediate, 1.0).await;
    assert!(h.ops.len() > 50, "only {} ops", h.ops.len());
    assert!(h
        .ops
        .iter()
        .all(|o| o.outcome != faultline_checker::history::Outcome::Info));
    assert_eq!(
        check_history(&h, &Options::default()).valid,
        Verdict::Linearizable
    );
    // Every write and cas value is unique per key.
    let mut seen = std::collections::HashSet::new();
    for o in &h.ops {
        if let Some(v) = o.writes() {
            assert!(
                seen.insert((o.key.clone(), v)),
                "value {v} written twice on {}",
                o.key
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_too_late_gives_info_not_fail() {
    let (text, h) = run(Behavior::Late(Duration::from_millis(400)), 1.0).await;
    assert!(!h.ops.is_empty());
    assert!(!text.contains("\"type\":\"fail\""), "{text}");
    assert!(
        h.ops
            .iter()
            .all(|o| o.outcome == faultline_checker::history::Outcome::Info),
        "every op timed out"
    );
    // Retired processes never invoke again (the parser enforces it).
    assert_ne!(
        check_history(&h, &Options::default()).valid,
        Verdict::NotLinearizable
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_up_after_receiving_gives_info_not_fail() {
    let (text, h) = run(Behavior::CloseAfterReceive, 0.5).await;
    assert!(!h.ops.is_empty());
    assert!(
        h.ops
            .iter()
            .all(|o| o.outcome == faultline_checker::history::Outcome::Info),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_following_an_address_book_finds_a_moved_node() {
    use faultline_node::client::AddressBook;
    // The list still has n1's old port, where nothing listens any more;
    // the book has where it went.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let old = gone.local_addr().unwrap();
    drop(gone);
    let moved = serve(Behavior::Immediate).await.unwrap();
    let book = AddressBook::new([("n1".to_string(), moved)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let rec = Recorder::create(&path, Instant::now()).unwrap();
    let config = RegisterConfig {
        keys: 2,
        concurrency: 2,
        rate: 200.0,
        timeout: Duration::from_millis(500),
        ..RegisterConfig::default()
    };
    let w = RegisterWorkload::new(config, vec![("n1".into(), old)], rec.clone()).following(book);
    w.run(Instant::now() + Duration::from_millis(500)).await;
    let missing = w.final_reads(Instant::now() + Duration::from_secs(5)).await;
    rec.finish().unwrap();
    assert!(missing.is_empty(), "{missing:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    let h = read_jsonl(text.as_bytes()).unwrap();
    assert!(h.ops.len() > 10, "only {} ops", h.ops.len());
    assert!(
        !text.contains(&old.to_string()),
        "went to the old address:\n{text}"
    );
    // Reads and writes all succeed (a cas may fail on its expected value).
    assert!(
        h.ops
            .iter()
            .filter(|o| o.kind != faultline_checker::history::OpKind::Cas)
            .all(|o| o.outcome == faultline_checker::history::Outcome::Ok),
        "{text}"
    );
}
