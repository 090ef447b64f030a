//! The register workload: read / write / cas on K keys from N concurrent
//! logical processes, every written value unique per key, every invocation
//! and completion recorded; then a final read of every key.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline_node::client::AddressBook;
use faultline_sut::{KvClient, KvOp, MicroOp, Target};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::append::{execute_txn, pick_txn, TxnShape};
use crate::recorder::{Event, Process, Recorder};

pub use faultline_rundir::spec::KeyDist;

/// The workload's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterConfig {
    /// Number of keys (`k0..k{K-1}`).
    pub keys: usize,
    /// Concurrent logical processes.
    pub concurrency: usize,
    /// Target operations per second over all processes (0: as fast as possible).
    pub rate: f64,
    /// Shares of read, write and cas.
    pub mix: (f64, f64, f64),
    /// Key distribution.
    pub key_dist: KeyDist,
    /// Each process picks a random node per operation instead of sticking
    /// to one (round-robin by process number).
    pub random_node: bool,
    /// Per-operation timeout.
    pub timeout: Duration,
    /// Seed of the operation stream.
    pub seed: u64,
    /// List-append transactions of this shape instead of register
    /// operations (`--workload append`); the mix's read share is then each
    /// micro-operation's chance of being a read, the rest appends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<TxnShape>,
    /// Locks with leases of this shape instead (`--workload lock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<crate::lock::LockShape>,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            keys: 5,
            concurrency: 10,
            rate: 200.0,
            mix: (0.5, 0.3, 0.2),
            key_dist: KeyDist::Uniform,
            random_node: false,
            timeout: Duration::from_secs(1),
            seed: 1,
            txn: None,
            lock: None,
        }
    }
}

impl RegisterConfig {
    /// The most keys a run may use: the workload keeps state per key.
    pub const MAX_KEYS: usize = 1_000_000;
    /// The most client processes of a run (each one a task with a
    /// connection to a node).
    pub const MAX_CONCURRENCY: usize = 1_000;
    /// The highest target rate, ops/s (far above what a cluster here serves).
    pub const MAX_RATE: f64 = 1_000_000.0;

    /// Check every field, bounds included.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=Self::MAX_KEYS).contains(&self.keys) {
            return Err(format!(
                "--keys must be between 1 and {} (got {})",
                Self::MAX_KEYS,
                self.keys
            ));
        }
        if !(1..=Self::MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(format!(
                "--concurrency must be between 1 and {} (got {})",
                Self::MAX_CONCURRENCY,
                self.concurrency
            ));
        }
        if self.timeout.is_zero() {
            return Err("--op-timeout must be at least 1 ms".into());
        }
        if self.rate < 0.0 || !self.rate.is_finite() || self.rate > Self::MAX_RATE {
            return Err(format!(
                "--rate {} must be between 0 (as fast as possible) and {}",
                self.rate,
                Self::MAX_RATE
            ));
        }
        let (r, w, c) = self.mix;
        if !(r + w + c).is_finite() || r < 0.0 || w < 0.0 || c < 0.0 || r + w + c <= 0.0 {
            return Err("the read/write/cas mix must be non-negative and not all zero".into());
        }
        if let Some(shape) = &self.txn {
            shape.validate(self.keys)?;
        }
        if let Some(shape) = &self.lock {
            shape.validate()?;
        }
        Ok(())
    }
}

/// Counts of outcomes so far (for progress displays).
#[derive(Debug, Default)]
pub struct Counts {
    /// ok completions.
    pub ok: AtomicU64,
    /// fail completions.
    pub fail: AtomicU64,
    /// info completions.
    pub info: AtomicU64,
}

/// The register workload against a set of nodes.
pub struct RegisterWorkload {
    pub(crate) config: RegisterConfig,
    nodes: Vec<(String, SocketAddr)>,
    /// Where the nodes are now, when they may move.
    book: Option<AddressBook>,
    pub(crate) recorder: Recorder,
    pub(crate) next_process: Arc<AtomicU64>,
    /// Per key: the last value handed out, so every write is unique.
    values: Arc<Vec<AtomicI64>>,
    /// Answer counts.
    pub counts: Arc<Counts>,
    /// The system the nodes run.
    pub(crate) target: Arc<dyn Target>,
    /// The clients' shared clock (the lock workload's leases).
    epoch: Instant,
}

#[derive(Clone)]
enum OpKind {
    Read,
    Write(i64),
    Cas(i64, i64),
    /// A list-append transaction.
    Txn(Vec<MicroOp>),
}

impl RegisterWorkload {
    /// A workload against `nodes` (id, client address), recording to `recorder`.
    pub fn new(
        config: RegisterConfig,
        nodes: Vec<(String, SocketAddr)>,
        recorder: Recorder,
    ) -> Self {
        let values = Arc::new((0..config.keys).map(|_| AtomicI64::new(0)).collect());
        RegisterWorkload {
            next_process: Arc::new(AtomicU64::new(config.concurrency as u64)),
            config,
            nodes,
            book: None,
            recorder,
            values,
            counts: Arc::default(),
            target: faultline_sut::faultline(std::path::PathBuf::from("faultline-node")),
            epoch: Instant::now(),
        }
    }

    /// Talk to the nodes as `target`'s clients (default: faultline's node).
    pub fn on(mut self, target: Arc<dyn Target>) -> Self {
        self.target = target;
        self
    }

    /// Look each node's address up in `book` before every operation (a node
    /// the nemesis moved to other ports is followed there); the addresses
    /// given to [`RegisterWorkload::new`] serve for nodes the book lacks.
    pub fn following(mut self, book: AddressBook) -> Self {
        self.book = Some(book);
        self
    }

    /// Where node `n` of the list takes client connections now.
    pub(crate) fn node(&self, n: usize) -> (String, SocketAddr) {
        locate(&self.nodes[n], self.book.as_ref())
    }

    /// Run the processes until `until`; returns when every process has
    /// finished its last operation.
    pub async fn run(&self, until: Instant) {
        if self.config.lock.is_some() {
            if let Err(e) = crate::lock::prepare(self, until).await {
                eprintln!("faultline: {e}");
                return;
            }
        }
        let mut tasks = Vec::new();
        for slot in 0..self.config.concurrency {
            let ctx = ProcessCtx {
                config: self.config.clone(),
                nodes: self.nodes.clone(),
                book: self.book.clone(),
                recorder: self.recorder.clone(),
                next_process: self.next_process.clone(),
                values: self.values.clone(),
                counts: self.counts.clone(),
                target: self.target.clone(),
                epoch: self.epoch,
                rng: ChaCha8Rng::seed_from_u64(
                    self.config
                        .seed
                        .wrapping_mul(1_000_003)
                        .wrapping_add(slot as u64),
                ),
            };
            tasks.push(tokio::spawn(ctx.run(slot, until)));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// The final phase: read every key through fresh processes, retrying on
    /// errors until each read is ok or `deadline` passes. Returns the keys
    /// that could not be read.
    pub async fn final_reads(&self, deadline: Instant) -> Vec<String> {
        let mut missing = Vec::new();
        let mut clients: Vec<Option<Box<dyn KvClient>>> =
            (0..self.nodes.len()).map(|_| None).collect();
        for k in 0..self.config.keys {
            let key = match self.config.lock {
                Some(_) => crate::lock::names(k).1,
                None => format!("k{k}"),
            };
            let mut attempt = 0usize;
            loop {
                if Instant::now() >= deadline {
                    missing.push(key.clone());
                    break;
                }
                let process = self.next_process.fetch_add(1, Ordering::Relaxed);
                let n = (k + attempt) % self.nodes.len();
                attempt += 1;
                let (node, addr) = self.node(n);
                let op = match self.config.txn {
                    Some(_) => OpKind::Txn(vec![MicroOp::Read { key: key.clone() }]),
                    None => OpKind::Read,
                };
                let outcome = execute(
                    &*self.target,
                    &self.recorder,
                    &mut clients[n],
                    addr,
                    &node,
                    process,
                    &key,
                    op,
                    self.config.timeout,
                )
                .await;
                count(&self.counts, &outcome);
                if let Answer::Ok(_) = outcome {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        missing
    }
}

pub(crate) fn count(c: &Counts, o: &Answer) {
    match o {
        Answer::Ok(_) => c.ok.fetch_add(1, Ordering::Relaxed),
        Answer::Fail(_) => c.fail.fetch_add(1, Ordering::Relaxed),
        Answer::Info(_) => c.info.fetch_add(1, Ordering::Relaxed),
    };
}

/// `entry`'s node and where it is now: in `book` if given and listed there.
pub(crate) fn locate(
    entry: &(String, SocketAddr),
    book: Option<&AddressBook>,
) -> (String, SocketAddr) {
    let (node, addr) = entry;
    let now = book.and_then(|b| b.get(node)).unwrap_or(*addr);
    (node.clone(), now)
}

/// A key of `k` by `dist`, from uniform draws in [0, 1).
fn draw_key(k: usize, dist: KeyDist, draw: &mut dyn FnMut() -> f64) -> usize {
    match dist {
        KeyDist::Uniform => ((draw() * k as f64) as usize).min(k - 1),
        KeyDist::Zipf => {
            // Inverse-CDF sampling of a Zipf(1) distribution over k keys.
            let h: f64 = (1..=k).map(|i| 1.0 / i as f64).sum();
            let mut x = draw() * h;
            for i in 1..=k {
                x -= 1.0 / i as f64;
                if x <= 0.0 {
                    return i - 1;
                }
            }
            k - 1
        }
    }
}

pub(crate) struct ProcessCtx {
    pub(crate) config: RegisterConfig,
    pub(crate) nodes: Vec<(String, SocketAddr)>,
    pub(crate) book: Option<AddressBook>,
    pub(crate) recorder: Recorder,
    pub(crate) next_process: Arc<AtomicU64>,
    values: Arc<Vec<AtomicI64>>,
    pub(crate) counts: Arc<Counts>,
    pub(crate) target: Arc<dyn Target>,
    /// The clients' shared clock.
    pub(crate) epoch: Instant,
    pub(crate) rng: ChaCha8Rng,
}

impl ProcessCtx {
    pub(crate) fn pick_key(&mut self) -> usize {
        let rng = &mut self.rng;
        draw_key(self.config.keys, self.config.key_dist, &mut || {
            rng.gen::<f64>()
        })
    }

    fn pick_op(&mut self, key: usize) -> OpKind {
        let (r, w, c) = self.config.mix;
        if let Some(shape) = self.config.txn {
            let (keys, dist) = (self.config.keys, self.config.key_dist);
            let mut first = Some(key);
            return OpKind::Txn(pick_txn(
                &mut self.rng,
                shape,
                r / (r + w + c),
                &self.values,
                |draw| first.take().unwrap_or_else(|| draw_key(keys, dist, draw)),
            ));
        }
        let x = self.rng.gen::<f64>() * (r + w + c);
        if x < r {
            OpKind::Read
        } else {
            let new = self.values[key].fetch_add(1, Ordering::Relaxed) + 1;
            if x < r + w {
                OpKind::Write(new)
            } else {
                // Expect the latest value handed out before ours: often the
                // register's value, so a fair share of cas succeed.
                OpKind::Cas((new - 1 - self.rng.gen_range(0..2)).max(1), new)
            }
        }
    }

    async fn run(mut self, slot: usize, until: Instant) {
        if let Some(shape) = self.config.lock {
            return self.run_locks(slot, shape, until).await;
        }
        let mut process = slot as u64;
        // A very low rate gives an interval longer than the run: the time
        // limit, not the next slot, ends the client.
        let interval = if self.config.rate > 0.0 {
            Some(
                Duration::try_from_secs_f64(self.config.concurrency as f64 / self.config.rate)
                    .unwrap_or(Duration::from_secs(u32::MAX as u64)),
            )
        } else {
            None
        };
        let mut clients: Vec<Option<Box<dyn KvClient>>> =
            (0..self.nodes.len()).map(|_| None).collect();
        // Spread the first operations over one interval.
        let mut next = Instant::now()
            .checked_add(interval.map_or(Duration::ZERO, |i| i.mul_f64(self.rng.gen::<f64>())))
            .unwrap_or(until);
        while Instant::now() < until {
            if let Some(i) = interval {
                let wake = next.min(until);
                if wake > Instant::now() {
                    tokio::time::sleep_until(wake.into()).await;
                }
                if Instant::now() >= until {
                    break;
                }
                next = next.checked_add(i).unwrap_or(until).max(Instant::now());
            }
            let n = if self.config.random_node {
                self.rng.gen_range(0..self.nodes.len())
            } else {
                slot % self.nodes.len()
            };
            let (node, addr) = locate(&self.nodes[n], self.book.as_ref());
            let key = self.pick_key();
            let op = self.pick_op(key);
            let outcome = execute(
                &*self.target,
                &self.recorder,
                &mut clients[n],
                addr,
                &node,
                process,
                &format!("k{key}"),
                op,
                self.config.timeout,
            )
            .await;
            count(&self.counts, &outcome);
            match outcome {
                Answer::Info(_) => {
                    // The operation may still be in flight: this process is
                    // retired and a fresh one takes its place.
                    process = self.next_process.fetch_add(1, Ordering::Relaxed);
                    clients[n] = None;
                }
                Answer::Fail(_) if interval.is_none() => {
                    // Unlimited rate: do not spin on a node that refuses.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ => {}
            }
        }
    }
}

/// Record the invoke, run the operation, record the completion.
#[allow(clippy::too_many_arguments)]
async fn execute(
    target: &dyn Target,
    recorder: &Recorder,
    client: &mut Option<Box<dyn KvClient>>,
    addr: SocketAddr,
    node: &str,
    process: u64,
    key: &str,
    op: OpKind,
    timeout: Duration,
) -> Answer {
    let (f, value, request) = match op {
        OpKind::Read => ("read", Value::Null, KvOp::Read(key.to_string())),
        OpKind::Write(v) => ("write", json!(v), KvOp::Write(key.to_string(), v)),
        OpKind::Cas(e, n) => ("cas", json!([e, n]), KvOp::Cas(key.to_string(), e, n)),
        OpKind::Txn(ops) => {
            return execute_txn(target, recorder, client, addr, node, process, &ops, timeout).await
        }
    };
    let event = |kind: &'static str, value: Value, error: Option<String>| Event {
        process: Process::Client(process),
        kind,
        f: f.to_string(),
        key: Some(key.to_string()),
        value,
        node: Some(node.to_string()),
        error,
    };
    recorder.record(&event("invoke", value.clone(), None));
    if client.as_ref().is_some_and(|c| c.addr() != addr) {
        // The node moved: its old connection leads nowhere.
        *client = None;
    }
    let outcome = match client {
        Some(c) => c.call(&request).await,
        None => match target.connect(addr, timeout).await {
            Ok(c) => {
                let o = c.call(&request).await;
                *client = Some(c);
                o
            }
            Err(e) => Answer::Fail(e),
        },
    };
    match &outcome {
        Answer::Ok(v) => {
            let value = if f == "read" { json!(v) } else { value };
            recorder.record(&event("ok", value, None));
        }
        Answer::Fail(e) => {
            recorder.record(&event("fail", value, Some(e.clone())));
        }
        Answer::Info(e) => {
            recorder.record(&event("info", value, Some(e.clone())));
        }
    }
    if matches!(outcome, Answer::Info(_)) {
        *client = None;
    }
    outcome
}
