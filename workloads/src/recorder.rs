//! The history recorder: every event, from the workload and from the
//! nemesis, goes through one [`Recorder`], which stamps it with a monotonic
//! clock (nanoseconds since the run's start) and streams it to
//! `history.jsonl` in the format of docs/history-format.md.
//!
//! The stamp is taken under the same lock that orders events into the
//! writer's queue, so the file's `time` never goes backwards. A writer
//! thread flushes whenever its queue runs dry, so a bench that dies mid-run
//! leaves every event it recorded up to a few milliseconds before on disk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use serde_json::{Map, Value};

/// The process of an event: a client number, or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    /// A logical client.
    Client(u64),
    /// The fault injector.
    Nemesis,
}

/// One event to record (its `time` is added by the recorder).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Who.
    pub process: Process,
    /// `invoke`, `ok`, `fail` or `info`.
    pub kind: &'static str,
    /// The operation (`read`, `write`, `cas`, or a nemesis event name).
    pub f: String,
    /// The key, for client operations.
    pub key: Option<String>,
    /// The value.
    pub value: Value,
    /// The node the client talked to.
    pub node: Option<String>,
    /// Why a `fail` or `info` ended as it did.
    pub error: Option<String>,
}

impl Event {
    fn to_json(&self, time: u64) -> String {
        let mut m = Map::new();
        m.insert("time".into(), time.into());
        m.insert(
            "process".into(),
            match self.process {
                Process::Client(p) => p.into(),
                Process::Nemesis => "nemesis".into(),
            },
        );
        m.insert("type".into(), self.kind.into());
        m.insert("f".into(), self.f.clone().into());
        if let Some(k) = &self.key {
            m.insert("key".into(), k.clone().into());
        }
        m.insert("value".into(), self.value.clone());
        if let Some(n) = &self.node {
            m.insert("node".into(), n.clone().into());
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), e.clone().into());
        }
        Value::Object(m).to_string()
    }
}

struct Inner {
    tx: Option<mpsc::Sender<String>>,
    start: Instant,
    count: u64,
}

/// Records events to a history file. Cheap to clone; every clone writes to
/// the same file in one time order.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    writer: Arc<Mutex<Option<JoinHandle<std::io::Result<()>>>>>,
}

impl Recorder {
    /// Create (truncate) `path`; times count from `start`.
    pub fn create(path: &Path, start: Instant) -> std::io::Result<Recorder> {
        let file = File::create(path)?;
        let (tx, rx) = mpsc::channel::<String>();
        let writer = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || {
                let mut out = BufWriter::with_capacity(1 << 16, file);
                while let Ok(line) = rx.recv() {
                    out.write_all(line.as_bytes())?;
                    out.write_all(b"\n")?;
                    // Drain what is queued, then flush once.
                    while let Ok(line) = rx.try_recv() {
                        out.write_all(line.as_bytes())?;
                        out.write_all(b"\n")?;
                    }
                    out.flush()?;
                }
                out.flush()?;
                out.into_inner().map_err(|e| e.into_error())?.sync_all()
            })?;
        Ok(Recorder {
            inner: Arc::new(Mutex::new(Inner {
                tx: Some(tx),
                start,
                count: 0,
            })),
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }

    /// Record one event now; returns its time (ns since the start).
    pub fn record(&self, event: &Event) -> u64 {
        let mut inner = self.inner.lock().expect("recorder lock");
        let time = inner.start.elapsed().as_nanos() as u64;
        let line = event.to_json(time);
        if let Some(tx) = &inner.tx {
            let _ = tx.send(line);
        }
        inner.count += 1;
        time
    }

    /// Record a nemesis event (`type: info`).
    pub fn nemesis(&self, f: &str, value: Value) {
        self.record(&Event {
            process: Process::Nemesis,
            kind: "info",
            f: f.to_string(),
            key: None,
            value,
            node: None,
            error: None,
        });
    }

    /// Events recorded so far.
    pub fn count(&self) -> u64 {
        self.inner.lock().expect("recorder lock").count
    }

    /// Time since the start, ns.
    pub fn now(&self) -> u64 {
        self.inner
            .lock()
            .expect("recorder lock")
            .start
            .elapsed()
            .as_nanos() as u64
    }

    /// Stop recording: write out everything and fsync the file.
    pub fn finish(&self) -> std::io::Result<()> {
        self.inner.lock().expect("recorder lock").tx = None;
        if let Some(h) = self.writer.lock().expect("writer lock").take() {
            return h
                .join()
                .map_err(|_| std::io::Error::other("history writer panicked"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_written_in_time_order_from_many_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let rec = Recorder::create(&path, Instant::now()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let rec = rec.clone();
                s.spawn(move || {
                    for i in 0..500 {
                        rec.record(&Event {
                            process: Process::Client(t),
                            kind: if i % 2 == 0 { "invoke" } else { "ok" },
                            f: "read".into(),
                            key: Some("k".into()),
                            value: Value::Null,
                            node: Some("n1".into()),
                            error: None,
                        });
                    }
                });
            }
        });
        rec.nemesis("start-partition", serde_json::json!([["n1"], ["n2", "n3"]]));
        rec.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let times: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["time"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(times.len(), 2001);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(text
            .lines()
            .last()
            .unwrap()
            .contains("\"process\":\"nemesis\""));
    }
}
