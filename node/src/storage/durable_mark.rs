//! The durable mark: the highest log index this node has made durable,
//! kept in the file `durable` (one record as in the log, its payload the
//! index), rewritten in place and fsynced by a thread of its own after the
//! log's writes (so the log's fsyncs never wait for it: written in line, it
//! cost a third of the node's writes/s), at most once per [`PAUSE`]. It
//! trails the log by at most that pause and one of its own fsyncs: entries acknowledged in the last moment before a
//! crash may not be covered yet, and a disk that loses only those is not
//! told apart from a torn append.
//!
//! Why: a log file that ends early looks the same whether a crash tore an
//! append that was never acknowledged (harmless) or the disk lost records
//! that were fsynced and perhaps acknowledged (outside Raft's fault model:
//! a node that lost entries could vote for a candidate that lacks committed
//! ones). The mark tells the two apart (Alagappan et al., "Protocol-Aware
//! Recovery for Consensus-Based Storage", FAST 2018, make the same
//! distinction). It is written after the log's fsync, so it never claims
//! more than the log held; it is lowered before a truncation, so a
//! legitimate truncation never looks like a loss.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use super::log_file::{encode_payload, parse_record};
use super::{io_err, regular, StorageError};

/// The writer's pause between two writes of the mark: the longest the mark
/// trails the log, beyond one fsync.
pub const PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// The file's name in the data directory.
pub const FILE: &str = "durable";

/// Read the mark of `dir`: `None` when there is none or it is damaged (said
/// in a warning): then a short log is judged by its records alone.
pub fn read(dir: &Path) -> Result<Option<u64>, StorageError> {
    let path = dir.join(FILE);
    let Some(data) = regular::read_small(&path, 64)? else {
        return Ok(None);
    };
    let value = parse_record(&data, 0)
        .ok()
        .filter(|&(_, e)| e == data.len())
        .and_then(|(s, e)| bincode::deserialize::<u64>(&data[s..e]).ok());
    if value.is_none() && !data.is_empty() {
        tracing::warn!(file = %path.display(), "the durable mark does not check out; judging the log by its records alone");
    }
    Ok(value)
}

/// The open mark: raised in the background, lowered at once.
pub struct DurableMark {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    /// What the mark should hold and holds. Lock order: `file`, then `want`.
    want: Mutex<Want>,
    wake: Condvar,
    /// The file; held while it is written, so a lowering never races a
    /// raise.
    file: Mutex<MarkFile>,
    /// A write that failed in the background, for the next persist.
    failed: Mutex<Option<StorageError>>,
}

struct Want {
    /// The value to write.
    target: u64,
    /// The value the file holds.
    written: u64,
    /// The writer should write `target` and stop.
    stop: bool,
}

struct MarkFile {
    path: PathBuf,
    file: File,
    /// What the file holds.
    value: u64,
    buf: Vec<u8>,
}

impl MarkFile {
    fn write(&mut self, value: u64) -> Result<(), StorageError> {
        if value == self.value {
            return Ok(());
        }
        self.buf.clear();
        encode_payload(
            &bincode::serialize(&value).expect("an index serializes"),
            &mut self.buf,
        );
        self.file
            .write_all_at(&self.buf, 0)
            .map_err(io_err("writing", &self.path))?;
        self.file
            .set_len(self.buf.len() as u64)
            .map_err(io_err("truncating", &self.path))?;
        self.file
            .sync_data()
            .map_err(io_err("syncing", &self.path))?;
        self.value = value;
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DurableMark {
    /// Open (creating) the mark of `dir`, which holds `value` once this
    /// returns.
    pub fn open(dir: &Path, value: u64) -> Result<DurableMark, StorageError> {
        let path = dir.join(FILE);
        let file = regular::open(&path, true, true)?.expect("created when missing");
        let mut mark = MarkFile {
            path,
            file,
            value: u64::MAX,
            buf: Vec::new(),
        };
        mark.write(value)?;
        let shared = Arc::new(Shared {
            want: Mutex::new(Want {
                target: value,
                written: value,
                stop: false,
            }),
            wake: Condvar::new(),
            file: Mutex::new(mark),
            failed: Mutex::new(None),
        });
        let s = shared.clone();
        let writer = std::thread::Builder::new()
            .name("durable-mark".into())
            .spawn(move || write_in_background(&s))
            .map_err(io_err("starting the durable mark's writer for", dir))?;
        Ok(DurableMark {
            shared,
            writer: Some(writer),
        })
    }

    /// The log is durable up to `value`: the mark follows in the background
    /// (one fsync behind at most; it never claims more than the log holds).
    /// A background write that failed is returned here.
    pub fn raise(&self, value: u64) -> Result<(), StorageError> {
        if let Some(e) = lock(&self.shared.failed).take() {
            return Err(e);
        }
        let mut want = lock(&self.shared.want);
        if want.target != value {
            want.target = value;
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Make the mark `value` now, durably: before a truncation, so that a
    /// crash after the cut does not look like a disk that lost entries.
    pub fn lower_now(&self, value: u64) -> Result<(), StorageError> {
        let mut file = lock(&self.shared.file);
        lock(&self.shared.want).target = value;
        file.write(value)?;
        lock(&self.shared.want).written = value;
        Ok(())
    }
}

/// The writer: whenever the wanted value differs from the file's, write it.
fn write_in_background(shared: &Shared) {
    loop {
        {
            let mut want = lock(&shared.want);
            while !want.stop && want.target == want.written {
                want = shared.wake.wait(want).unwrap_or_else(|e| e.into_inner());
            }
        }
        let mut file = lock(&shared.file);
        let (value, stop) = {
            let want = lock(&shared.want);
            (want.target, want.stop)
        };
        if let Err(e) = file.write(value) {
            tracing::error!("{e}");
            *lock(&shared.failed) = Some(e);
            return;
        }
        lock(&shared.want).written = value;
        drop(file);
        if stop {
            return;
        }
        // At most one fsync of the mark per pause: its fsyncs compete with
        // the log's for the disk (one after every log write cost a quarter
        // of the node's writes/s here).
        std::thread::sleep(PAUSE);
    }
}

impl Drop for DurableMark {
    /// Write the last wanted value and stop the writer.
    fn drop(&mut self) {
        lock(&self.shared.want).stop = true;
        self.shared.wake.notify_one();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}
