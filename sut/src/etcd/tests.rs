use super::*;

#[test]
fn operations_become_gateway_requests() {
    let (path, body) = request(&KvOp::Cas("k1".into(), 3, 4), ReadMode::Linearizable);
    assert_eq!(path, "/v3/kv/txn");
    assert_eq!(body["compare"][0]["value"], b64("3"));
    assert_eq!(body["success"][0]["requestPut"]["value"], b64("4"));
    let (_, read) = request(&KvOp::Read("k1".into()), ReadMode::Serializable);
    assert_eq!(read["serializable"], true);
    assert_eq!(read["key"], "azE=");
}

#[test]
fn answers_become_honest_outcomes() {
    let w = KvOp::Write("k".into(), 1);
    let r = KvOp::Read("k".into());
    let c = KvOp::Cas("k".into(), 1, 2);
    assert_eq!(classify(&w, Ok((200, json!({})))), Answer::Ok(None));
    assert_eq!(
        classify(&r, Ok((200, json!({"kvs": [{"value": b64("7")}]})))),
        Answer::Ok(Some(7))
    );
    assert_eq!(
        classify(&r, Ok((200, json!({"count": "0"})))),
        Answer::Ok(None)
    );
    assert!(matches!(
        classify(&c, Ok((200, json!({"succeeded": false})))),
        Answer::Fail(_)
    ));
    assert_eq!(
        classify(&c, Ok((200, json!({"succeeded": true})))),
        Answer::Ok(None)
    );
    let timeout = json!({"error": "etcdserver: request timed out", "code": 14});
    assert!(matches!(
        classify(&w, Ok((503, timeout.clone()))),
        Answer::Info(_)
    ));
    assert!(matches!(classify(&r, Ok((503, timeout))), Answer::Fail(_)));
    let invalid = json!({"error": "bad", "code": 3});
    assert!(matches!(classify(&c, Ok((400, invalid))), Answer::Fail(_)));
    assert!(matches!(
        classify(&r, Ok((200, json!({"kvs": [{"value": b64("x")}]})))),
        Answer::Fail(_)
    ));
}

#[test]
fn a_missing_etcd_is_named_with_the_package() {
    let e = locate(Some(Path::new("/nonexistent/etcd"))).unwrap_err();
    assert!(
        e.contains("--etcd-bin '/nonexistent/etcd': no such file"),
        "{e}"
    );
}
