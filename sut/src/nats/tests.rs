//! The answer table row by row, and leader discovery from `/jsz` answers
//! recorded from nats-server 2.9.10.

use super::*;

fn reply(payload: &str) -> Result<Reply, ReqError> {
    Ok(Reply {
        payload: payload.as_bytes().to_vec(),
        ..Reply::default()
    })
}

fn status_reply(code: u16, d: &str) -> Result<Reply, ReqError> {
    Ok(Reply {
        status: Some(code),
        description: d.into(),
        ..Reply::default()
    })
}

#[test]
fn publishes_map_to_ok_fail_and_info() {
    // An ack: the write is in the stream.
    assert_eq!(
        classify_ack(reply(r#"{"stream":"KV_faultline", "seq":7}"#)),
        Answer::Ok(None)
    );
    // A conditional publish whose expected sequence was not the last one.
    for code in WRONG_LAST_SEQUENCE {
        let a = classify_ack(reply(&format!(
            r#"{{"error":{{"code":400,"err_code":{code},"description":"wrong last sequence: 2"}},"stream":"KV_faultline","seq":0}}"#
        )));
        assert!(
            matches!(&a, Answer::Fail(m) if m.contains("cas mismatch")),
            "{a:?}"
        );
    }
    // No stream took it: nothing was stored.
    assert!(matches!(
        classify_ack(status_reply(503, "No Responders")),
        Answer::Fail(_)
    ));
    // Never sent: definite.
    assert!(matches!(
        classify_ack(Err(ReqError::NotSent("closed".into()))),
        Answer::Fail(_)
    ));
    // Sent without an answer: it may have been stored.
    assert!(matches!(
        classify_ack(Err(ReqError::Timeout)),
        Answer::Info(_)
    ));
    assert!(matches!(
        classify_ack(Err(ReqError::Lost("reset".into()))),
        Answer::Info(_)
    ));
    // Any other API error: unknown (JetStream may have proposed it).
    assert!(matches!(
        classify_ack(reply(
            r#"{"error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}}"#
        )),
        Answer::Info(_)
    ));
    assert!(matches!(classify_ack(reply("garbage")), Answer::Info(_)));
}

#[test]
fn leader_reads_give_the_value_and_its_sequence_or_fail() {
    let found = r#"{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"$KV.faultline.k0","seq":2,"data":"Nw==","time":"2026-12-06T06:56:01.131060254Z"}}"#;
    assert_eq!(classify_get(reply(found)), Ok(Some((7, 2))));
    let missing = r#"{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","error":{"code":404,"err_code":10037,"description":"no message found"}}"#;
    assert_eq!(classify_get(reply(missing)), Ok(None));
    let no_stream = r#"{"error":{"code":404,"err_code":10059,"description":"stream not found"}}"#;
    assert!(classify_get(reply(no_stream)).is_err());
    assert!(classify_get(status_reply(503, "No Responders")).is_err());
    assert!(classify_get(Err(ReqError::Timeout)).is_err());
    // Not a number: a failure that says so, never a value.
    let odd = r#"{"message":{"seq":3,"data":"eHl6"}}"#;
    assert!(classify_get(reply(odd))
        .unwrap_err()
        .contains("not a number"));
}

#[test]
fn direct_gets_read_the_payload_or_a_404() {
    assert_eq!(classify_direct(reply("12")), Ok(Some(12)));
    assert_eq!(
        classify_direct(status_reply(404, "Message Not Found")),
        Ok(None)
    );
    assert!(classify_direct(status_reply(408, "Request Timeout")).is_err());
    assert!(classify_direct(Err(ReqError::Timeout)).is_err());
}

/// `/jsz?accounts=true&streams=true` of n3, a follower, and of n1, the
/// stream's leader (2.9.10, trimmed to what is read).
fn jsz(leader: &str, replicas: &[(&str, u64)]) -> Value {
    let replicas: Vec<Value> = replicas
        .iter()
        .map(|(n, ns)| json!({"name": n, "current": true, "active": ns, "lag": 0, "peer": "x"}))
        .collect();
    json!({
        "meta_cluster": {"name": "faultline", "leader": "n2", "peer": "44jzkV9D", "cluster_size": 3},
        "account_details": [{
            "name": "$G",
            "stream_detail": [{
                "name": "KV_faultline",
                "cluster": {"name": "faultline", "leader": leader, "replicas": replicas},
                "state": {"messages": 2, "last_seq": 41}
            }]
        }]
    })
}

#[test]
fn the_streams_leader_is_read_from_each_members_jsz() {
    // n3 follows n1, which it heard from 48 ms ago.
    let s = status_from_jsz("n3", &jsz("n1", &[("n1", 48_041_243), ("n2", 0)]));
    assert_eq!(s.role, Role::Follower);
    assert_eq!(s.leader.as_deref(), Some("n1"));
    assert_eq!(s.leader_heard_ms, Some(48));
    assert_eq!(s.voters, ["n1", "n2", "n3"]);
    assert_eq!((s.term, s.commit_index, s.quorum_heard_ms), (0, 41, None));
    // n1 leads; one follower heard 5 ms ago makes its quorum.
    let s = status_from_jsz(
        "n1",
        &jsz("n1", &[("n2", 5_000_000), ("n3", 9_000_000_000)]),
    );
    assert_eq!(s.role, Role::Leader);
    assert_eq!(s.leader_heard_ms, Some(0));
    assert_eq!(s.quorum_heard_ms, Some(5));
    // Cut off from both: its quorum was last heard long ago.
    let s = status_from_jsz(
        "n1",
        &jsz("n1", &[("n2", 9_000_000_000), ("n3", 12_000_000_000)]),
    );
    assert_eq!(s.quorum_heard_ms, Some(9_000));
    // No leader yet, and no stream at all (before it is created).
    let s = status_from_jsz("n2", &jsz("", &[("n1", 0), ("n3", 0)]));
    assert_eq!((s.role, s.leader), (Role::Follower, None));
    let s = status_from_jsz("n2", &json!({"meta_cluster": {"leader": "n2"}}));
    assert_eq!(
        (s.role, s.leader, s.voters.len()),
        (Role::Follower, None, 0)
    );
}

#[test]
fn five_members_need_two_followers_for_a_quorum() {
    let s = status_from_jsz(
        "n1",
        &jsz(
            "n1",
            &[
                ("n2", 1_000_000),
                ("n3", 2_000_000),
                ("n4", 7_000_000_000),
                ("n5", 8_000_000_000),
            ],
        ),
    );
    assert_eq!(s.quorum_heard_ms, Some(2));
}

#[test]
fn a_member_is_started_with_jetstream_its_routes_and_its_ports() {
    let nats = Nats {
        bin: "/usr/bin/nats-server".into(),
        version: "2.9.10".into(),
        reads: ReadMode::Linearizable,
        names: Mutex::default(),
        http: reqwest::Client::new(),
    };
    let peers = vec![
        ("n2".to_string(), "10.0.0.2:7000".parse().unwrap()),
        ("n3".to_string(), "10.0.0.3:7000".parse().unwrap()),
    ];
    let cmd = nats.command(&Member {
        id: "n1",
        listen: "10.0.0.1:7000".parse().unwrap(),
        client: "10.0.0.1:7001".parse().unwrap(),
        peers: &peers,
        data_dir: Path::new("/run/nodes/n1"),
        settings: &[],
        voters: &[],
        join: false,
    });
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let line = args.join(" ");
    assert!(
        line.contains("--addr 10.0.0.1 --port 7001 --http_port 7002 --server_name n1 --jetstream --store_dir /run/nodes/n1"),
        "{line}"
    );
    assert!(line.contains("--cluster nats://10.0.0.1:7000 --cluster_name faultline"));
    assert!(line.ends_with(
        "--routes nats-route://10.0.0.1:7000,nats-route://10.0.0.2:7000,nats-route://10.0.0.3:7000"
    ));
    assert_eq!(
        monitor_addr("10.0.0.1:7001".parse().unwrap()),
        "10.0.0.1:7002".parse().unwrap()
    );
}

#[test]
fn the_stream_has_a_replica_per_member_and_direct_gets_only_when_asked() {
    let c = stream_config(3, ReadMode::Linearizable);
    assert_eq!(c["num_replicas"], 3);
    assert_eq!(c["max_msgs_per_subject"], 1);
    assert_eq!(c["storage"], "file");
    assert_eq!(c["allow_direct"], false);
    assert_eq!(stream_config(5, ReadMode::Direct)["allow_direct"], true);
    assert_eq!(subject("k3"), "$KV.faultline.k3");
}

#[test]
fn a_missing_nats_server_is_named_with_the_package() {
    let e = locate(Some(Path::new("/nonexistent/nats-server"))).unwrap_err();
    assert!(
        e.contains("--bin '/nonexistent/nats-server': no such file"),
        "{e}"
    );
}

/// `/jsz?accounts=true&streams=true` as nats-server 2.9.10 answered it on
/// 2026-12-06, on the stream's leader (n1) and on a follower (n2), a few
/// seconds after the stream was created with two messages.
#[test]
fn recorded_jsz_answers_name_the_leader_and_the_silences() {
    let leader: Value = serde_json::from_str(include_str!("recorded/jsz-n1.json")).unwrap();
    let follower: Value = serde_json::from_str(include_str!("recorded/jsz-n2.json")).unwrap();
    let s = status_from_jsz("n1", &leader);
    assert_eq!((s.role, s.leader.as_deref()), (Role::Leader, Some("n1")));
    assert_eq!(s.voters, ["n1", "n2", "n3"]);
    assert_eq!(s.quorum_heard_ms, Some(1039));
    assert_eq!(s.commit_index, 2);
    let s = status_from_jsz("n2", &follower);
    assert_eq!((s.role, s.leader.as_deref()), (Role::Follower, Some("n1")));
    assert_eq!(s.leader_heard_ms, Some(1166));
    assert_eq!(s.voters, ["n1", "n2", "n3"]);
    // The same answer read as another member's: n3 is no leader of it.
    assert_eq!(status_from_jsz("n3", &leader).role, Role::Follower);
}

/// A stand-in server that takes the handshake, then (on its first
/// connection) hangs up, and on the next acknowledges every publish.
async fn fake_server(listener: tokio::net::TcpListener) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    for conn in 0..2 {
        let Ok((s, _)) = listener.accept().await else {
            return;
        };
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"INFO {\"server_id\":\"fake\"}\r\n")
            .await
            .unwrap();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["PING"] => {
                    w.write_all(b"PONG\r\n").await.unwrap();
                    if conn == 0 {
                        break; // hang up after the handshake
                    }
                }
                ["PUB", _, reply, n] => {
                    let mut body = vec![0u8; n.parse::<usize>().unwrap() + 2];
                    r.read_exact(&mut body).await.unwrap();
                    let ack = br#"{"stream":"KV_faultline","seq":1}"#;
                    w.write_all(format!("MSG {reply} 1 {}\r\n", ack.len()).as_bytes())
                        .await
                        .unwrap();
                    w.write_all(ack).await.unwrap();
                    w.write_all(b"\r\n").await.unwrap();
                }
                _ => {}
            }
        }
    }
}

/// A connection the server closed while the client was idle is replaced
/// before the next request (nothing was sent on it), instead of failing
/// every request after it.
#[tokio::test]
async fn a_connection_closed_between_requests_is_replaced() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(fake_server(listener));
    let nats = Nats {
        bin: "/usr/bin/nats-server".into(),
        version: "2.9.10".into(),
        reads: ReadMode::Linearizable,
        names: Mutex::default(),
        http: reqwest::Client::new(),
    };
    let client = nats.connect(addr, Duration::from_secs(5)).await.unwrap();
    // Wait (bounded) until the client has seen the hang-up.
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let a = client.call(&KvOp::Write("k0".into(), 1)).await;
        if a == Answer::Ok(None) || Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(answer, Answer::Ok(None));
    server.abort();
}
