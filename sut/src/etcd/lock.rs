//! etcd's own lock (v3lock), through the JSON gateway, for the lock
//! workload:
//!
//! | step | etcd call |
//! |---|---|
//! | acquire | `POST /v3/lease/grant` (the TTL, whole seconds), then `POST /v3/lock/lock` with the lease (it waits until the lock is this client's); the token is the ownership key's `create_revision` (`POST /v3/kv/range`) |
//! | renew | `POST /v3/lease/keepalive` (one keep-alive; a TTL of 0 back: the lease is gone) |
//! | release | `POST /v3/lock/unlock` (deletes the ownership key), then `POST /v3/lease/revoke` |
//! | protected write | `POST /v3/kv/put` |
//! | fenced write | `POST /v3/kv/txn`: compare the ownership key's `create_revision` with the token, then put — a holder whose lease expired (its key deleted) is refused |
//!
//! Outcomes as for writes: a refused or unreachable call is `fail`; a
//! lock call that does not answer in time is `info` (the lease is revoked
//! on the way out, which gives back a lock it may have taken).

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use super::{b64, error_chain, int_of, said, unless_written, B64};
use crate::lock::{Handle, Held};
use crate::{Answer, Outcome};

/// A POST with its own time limit (a lock call waits for the holder).
async fn post(
    http: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    body: Value,
    limit: Duration,
) -> Result<(u16, Value), reqwest::Error> {
    let resp = http
        .post(format!("http://{addr}{path}"))
        .timeout(limit)
        .json(&body)
        .send()
        .await?;
    let code = resp.status().as_u16();
    // A keep-alive answers as a stream: its first message is enough.
    let text = resp.text().await.unwrap_or_default();
    let first = text.lines().next().unwrap_or("");
    Ok((code, serde_json::from_str(first).unwrap_or(Value::Null)))
}

/// Best effort: give the lease back (its keys, a lock among them, go with it).
async fn revoke(http: &reqwest::Client, addr: SocketAddr, lease: i64, limit: Duration) {
    let _ = post(
        http,
        addr,
        "/v3/lease/revoke",
        json!({"ID": lease.to_string()}),
        limit,
    )
    .await;
}

/// Acquire `lock` with a lease of `ttl` (rounded up to whole seconds),
/// waiting at most `wait`.
pub async fn acquire(
    http: &reqwest::Client,
    addr: SocketAddr,
    lock: &str,
    ttl: Duration,
    wait: Duration,
    op_timeout: Duration,
) -> Outcome<Held> {
    let secs = ttl.as_millis().div_ceil(1000).max(1) as u64;
    let lease = match post(
        http,
        addr,
        "/v3/lease/grant",
        json!({"TTL": secs.to_string()}),
        op_timeout,
    )
    .await
    {
        Ok((200, v)) => match v["ID"].as_str().and_then(|s| s.parse::<i64>().ok()) {
            Some(id) => id,
            None => return Outcome::Fail(format!("etcd: a lease grant without an ID: {v}")),
        },
        Ok((code, v)) => return Outcome::Fail(said(code, &v)),
        Err(e) => return Outcome::Fail(format!("etcd: {}", error_chain(&e))),
    };
    // While it waits for the holder, the lease is kept alive (as etcd's
    // own client does with its session), or it would expire in the queue.
    let lock_call = post(
        http,
        addr,
        "/v3/lock/lock",
        json!({"name": b64(lock), "lease": lease.to_string()}),
        wait,
    );
    let keep = async {
        loop {
            tokio::time::sleep(ttl / 3).await;
            let _ = post(
                http,
                addr,
                "/v3/lease/keepalive",
                json!({"ID": lease.to_string()}),
                op_timeout,
            )
            .await;
        }
    };
    let locked = tokio::select! {
        r = lock_call => r,
        () = keep => unreachable!("the keep-alive loop never ends"),
    };
    let key = match locked {
        Ok((200, v)) => match v["key"].as_str() {
            Some(k) => k.to_string(),
            None => {
                revoke(http, addr, lease, op_timeout).await;
                return Outcome::Info(format!("etcd: a lock answer without a key: {v}"));
            }
        },
        Ok((code, v)) => {
            revoke(http, addr, lease, op_timeout).await;
            // Refused outright (invalid argument): nothing was taken.
            return if v["code"].as_u64() == Some(3) {
                Outcome::Fail(said(code, &v))
            } else {
                Outcome::Info(said(code, &v))
            };
        }
        Err(e) if e.is_connect() => {
            revoke(http, addr, lease, op_timeout).await;
            return Outcome::Fail(format!("etcd: {}", error_chain(&e)));
        }
        Err(e) => {
            revoke(http, addr, lease, op_timeout).await;
            return Outcome::Info(if e.is_timeout() {
                format!("etcd: the lock was not granted within {wait:?}")
            } else {
                format!("etcd: {}", error_chain(&e))
            });
        }
    };
    // The token: the ownership key's create revision.
    let token = match post(http, addr, "/v3/kv/range", json!({"key": key}), op_timeout).await {
        Ok((200, v)) => int_of(&v["kvs"][0]["create_revision"]) as i64,
        _ => 0,
    };
    if token == 0 {
        // Held, but with no token to fence by: given back, its fate unknown
        // to the history.
        let _ = post(
            http,
            addr,
            "/v3/lock/unlock",
            json!({"key": key}),
            op_timeout,
        )
        .await;
        revoke(http, addr, lease, op_timeout).await;
        return Outcome::Info("etcd: the lock's key could not be read back for its token".into());
    }
    Outcome::Ok(Held {
        lock: lock.to_string(),
        token,
        handle: Handle::Etcd {
            lease,
            key: String::from_utf8_lossy(&B64.decode(&key).unwrap_or_default()).into_owned(),
        },
    })
}

/// One keep-alive of the holder's lease.
pub async fn renew(
    http: &reqwest::Client,
    addr: SocketAddr,
    held: &Held,
    op_timeout: Duration,
) -> Result<(), String> {
    let Handle::Etcd { lease, .. } = &held.handle else {
        return Err("not an etcd lock".into());
    };
    match post(
        http,
        addr,
        "/v3/lease/keepalive",
        json!({"ID": lease.to_string()}),
        op_timeout,
    )
    .await
    {
        Ok((200, v)) if int_of(&v["result"]["TTL"]) > 0 => Ok(()),
        Ok((200, _)) => Err("etcd: the lease has expired".into()),
        Ok((code, v)) => Err(said(code, &v)),
        Err(e) => Err(format!("etcd: {}", error_chain(&e))),
    }
}

/// Unlock, then revoke the lease.
pub async fn release(
    http: &reqwest::Client,
    addr: SocketAddr,
    held: &Held,
    op_timeout: Duration,
) -> Answer {
    let Handle::Etcd { lease, key } = &held.handle else {
        return Answer::Fail("not an etcd lock".into());
    };
    let answer = match post(
        http,
        addr,
        "/v3/lock/unlock",
        json!({"key": b64(key)}),
        op_timeout,
    )
    .await
    {
        Ok((200, _)) => Answer::Ok(None),
        Ok((code, v)) if v["code"].as_u64() == Some(3) => Answer::Fail(said(code, &v)),
        Ok((code, v)) => Answer::Info(said(code, &v)),
        Err(e) if e.is_connect() => Answer::Fail(format!("etcd: {}", error_chain(&e))),
        Err(e) => Answer::Info(format!("etcd: {}", error_chain(&e))),
    };
    revoke(http, addr, *lease, op_timeout).await;
    answer
}

/// A write of the protected register, fenced or not.
pub async fn write(
    http: &reqwest::Client,
    addr: SocketAddr,
    key: &str,
    held: Option<&Held>,
    value: i64,
    op_timeout: Duration,
) -> Answer {
    let put = json!({"key": b64(key), "value": b64(&value.to_string())});
    let (path, body) = match held.map(|h| &h.handle) {
        Some(Handle::Etcd { key: own, .. }) => (
            "/v3/kv/txn",
            json!({
                "compare": [{"key": b64(own), "target": "CREATE", "result": "EQUAL", "create_revision": held.map_or(0, |h| h.token).to_string()}],
                "success": [{"requestPut": put}],
            }),
        ),
        _ => ("/v3/kv/put", put),
    };
    match unless_written(post(http, addr, path, body, op_timeout).await) {
        Ok(v) if path == "/v3/kv/put" || v["succeeded"].as_bool() == Some(true) => Answer::Ok(None),
        Ok(_) => Answer::Fail(
            "fenced: the lock's key is gone (its lease expired), so the write was refused".into(),
        ),
        Err(failed) => failed,
    }
}
