//! The lock workload (`--workload lock`): each client process takes one
//! of the `--keys` locks (`k0`…) with a lease, holds it for a seeded time
//! — reading the register the lock protects (`k0.data`), writing it two to
//! four times, renewing the lease between writes — and gives it back.
//! With `--fenced` each write carries the lock's token and the store
//! refuses a token lower than the newest it has seen ([`faultline_sut::lock`]).
//!
//! A client pause (`--lock-pauses SHARE`): in that share of holds (seeded)
//! the holder freezes after its first write for 1.5 × the TTL — no
//! renewals, no requests, as a stop-the-world garbage collection or a
//! SIGSTOP would — and then carries on as if nothing happened: writes, then
//! releases. Its lease has expired meanwhile and another client may hold
//! the lock: what Jepsen's etcd 3.4.3 analysis showed leases cannot
//! prevent.
//!
//! Recorded: `acquire` (an ok one's value is the token) and `release`
//! (value: the token) under the holder's process, with the lock as the
//! key; the protected register's `read`s and `write`s (each value
//! `token << 32 | n`, unique) under a data process of the holder's slot.
//! An `info` retires its process, as always; a holder whose data process
//! was retired goes on under a fresh one.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use faultline_sut::lock::Held;
use faultline_sut::{KvClient, KvOp, Outcome};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::recorder::{Event, Process};
use crate::register::ProcessCtx;

/// The lock workload's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockShape {
    /// The lease's time to live.
    pub ttl: Duration,
    /// Writes are fenced by the lock's token.
    pub fenced: bool,
    /// The share of holds with a client pause of 1.5 × the TTL.
    pub pauses: f64,
}

impl LockShape {
    /// Check the bounds (`--lock-ttl`, `--lock-pauses`).
    pub fn validate(&self) -> Result<(), String> {
        if !(100..=600_000).contains(&self.ttl.as_millis()) {
            return Err(format!(
                "--lock-ttl must be between 100 ms and 10 minutes (got {} ms)",
                self.ttl.as_millis()
            ));
        }
        if !(0.0..=1.0).contains(&self.pauses) {
            return Err(format!(
                "--lock-pauses is a share of holds, between 0 and 1 (got {})",
                self.pauses
            ));
        }
        Ok(())
    }
}

/// The lock `k`'s name and its protected register.
pub fn names(k: usize) -> (String, String) {
    (format!("k{k}"), format!("k{k}.data"))
}

/// Who does what to which key, through which node.
#[derive(Clone, Copy)]
struct Call<'a> {
    process: u64,
    f: &'a str,
    key: &'a str,
    node: &'a str,
}

impl Call<'_> {
    fn event(&self, kind: &'static str, value: Value, error: Option<String>) -> Event {
        Event {
            process: Process::Client(self.process),
            kind,
            f: self.f.to_string(),
            key: Some(self.key.to_string()),
            value,
            node: Some(self.node.to_string()),
            error,
        }
    }
}

impl ProcessCtx {
    /// Record `call` as invoked with `value`, await `answer`, record how
    /// it ended (an ok one with `ok_value`); the outcome.
    async fn recorded<T>(
        &self,
        call: Call<'_>,
        value: Value,
        answer: impl std::future::Future<Output = Outcome<T>>,
        ok_value: impl FnOnce(&T) -> Value,
    ) -> Outcome<T> {
        self.recorder
            .record(&call.event("invoke", value.clone(), None));
        let o = answer.await;
        let (kind, v, e) = match &o {
            Outcome::Ok(t) => ("ok", ok_value(t), None),
            Outcome::Fail(e) => ("fail", value, Some(e.clone())),
            Outcome::Info(e) => ("info", value, Some(e.clone())),
        };
        self.recorder.record(&call.event(kind, v, e));
        let counted: Answer = o.as_ref().map(|_| None);
        crate::register::count(&self.counts, &counted);
        o
    }

    fn fresh(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }

    /// One client slot of the lock workload, until `until`.
    pub(crate) async fn run_locks(mut self, slot: usize, shape: LockShape, until: Instant) {
        let epoch = self.epoch;
        let now = move || epoch.elapsed().as_millis() as u64;
        let mut holder = slot as u64;
        let mut data = self.fresh();
        let mut client: Option<Box<dyn KvClient>> = None;
        let ttl = shape.ttl;
        let op = self.config.timeout;
        while Instant::now() < until {
            let n = if self.config.random_node {
                self.rng.gen_range(0..self.nodes.len())
            } else {
                slot % self.nodes.len()
            };
            let (node, addr) = crate::register::locate(&self.nodes[n], self.book.as_ref());
            if client.as_ref().is_some_and(|c| c.addr() != addr) {
                client = None;
            }
            if client.is_none() {
                match self.target.connect(addr, op).await {
                    Ok(c) => client = Some(c),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            let c = client.as_deref().expect("connected above");
            let k = self.pick_key();
            let (lock, data_key) = names(k);
            let deadline = now() + (2 * ttl).max(op).as_millis() as u64;
            let got = self
                .recorded(
                    Call {
                        process: holder,
                        f: "acquire",
                        key: &lock,
                        node: &node,
                    },
                    Value::Null,
                    c.lock_acquire(&lock, ttl, &now, deadline),
                    |h: &Held| json!(h.token),
                )
                .await;
            let mut held = match got {
                Outcome::Ok(h) => h,
                Outcome::Fail(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                Outcome::Info(_) => {
                    holder = self.fresh();
                    client = None;
                    continue;
                }
            };
            // The hold: a read, then 2-4 writes, renewing between them.
            let writes = self.rng.gen_range(2..=4u32);
            let hold = ttl.mul_f64(self.rng.gen_range(0.2..0.5));
            let pause_after = (self.rng.gen::<f64>() < shape.pauses).then_some(1u32);
            let read_op = KvOp::Read(data_key.clone());
            let read = self
                .recorded(
                    Call {
                        process: data,
                        f: "read",
                        key: &data_key,
                        node: &node,
                    },
                    Value::Null,
                    c.call(&read_op),
                    |v: &Option<i64>| json!(v),
                )
                .await;
            if let Outcome::Info(_) = read {
                data = self.fresh();
            }
            for w in 1..=writes {
                let value = (held.token << 32) | w as i64;
                let plain = KvOp::Write(data_key.clone(), value);
                let answer = if shape.fenced {
                    c.fenced_write(&data_key, &held, value)
                } else {
                    c.call(&plain)
                };
                let o = self
                    .recorded(
                        Call {
                            process: data,
                            f: "write",
                            key: &data_key,
                            node: &node,
                        },
                        json!(value),
                        answer,
                        |_| json!(value),
                    )
                    .await;
                if let Outcome::Info(_) = o {
                    data = self.fresh();
                }
                if pause_after == Some(w) {
                    // The client pause: frozen, nothing renewed.
                    tokio::time::sleep(ttl.mul_f64(1.5)).await;
                    continue;
                }
                if w < writes {
                    tokio::time::sleep(hold / writes).await;
                    if c.lock_renew(&mut held, ttl, now()).await.is_err() {
                        // Lost (or unknown): stop writing, give it back.
                        break;
                    }
                }
            }
            // A release refused for a passing reason (no leader) is tried
            // again, as a careful client would, until it takes effect, the
            // lock is found taken by another, or the lease is long over.
            let give_up = Instant::now() + 2 * ttl;
            loop {
                let released = self
                    .recorded(
                        Call {
                            process: holder,
                            f: "release",
                            key: &lock,
                            node: &node,
                        },
                        json!(held.token),
                        c.lock_release(&held),
                        |_| json!(held.token),
                    )
                    .await;
                match released {
                    Outcome::Info(_) => {
                        holder = self.fresh();
                        client = None;
                        break;
                    }
                    Outcome::Fail(e)
                        if !e.starts_with("not the holder") && Instant::now() < give_up =>
                    {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    _ => break,
                }
            }
        }
    }
}

/// Make every lock ready and write each protected register's first value
/// (0, recorded, so reads of it are explained), through the first node,
/// retrying until `deadline`.
pub(crate) async fn prepare(
    w: &crate::register::RegisterWorkload,
    deadline: Instant,
) -> Result<(), String> {
    let (node, addr) = w.node(0);
    let mut last = String::new();
    for k in 0..w.config.keys {
        let (lock, data_key) = names(k);
        let mut done = false;
        while !done && Instant::now() < deadline {
            let c = match w.target.connect(addr, w.config.timeout).await {
                Ok(c) => c,
                Err(e) => {
                    last = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if let Err(e) = c.lock_prepare(&lock).await {
                last = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let process = w.next_process.fetch_add(1, Ordering::Relaxed);
            let call = Call {
                process,
                f: "write",
                key: &data_key,
                node: &node,
            };
            let ev = |kind, error| call.event(kind, json!(0), error);
            w.recorder.record(&ev("invoke", None));
            match c.call(&KvOp::Write(data_key.clone(), 0)).await {
                Outcome::Ok(_) => {
                    w.recorder.record(&ev("ok", None));
                    done = true;
                }
                Outcome::Fail(e) => {
                    w.recorder.record(&ev("fail", Some(e.clone())));
                    last = e;
                }
                Outcome::Info(e) => {
                    w.recorder.record(&ev("info", Some(e.clone())));
                    last = e;
                }
            }
        }
        if !done {
            return Err(format!("the lock {lock} could not be made ready: {last}"));
        }
    }
    Ok(())
}
